"""A deterministic, dependency-free embedder for tests: hashed bag of words.

Texts sharing words get a higher cosine similarity, which is enough to test retrieval
by relevance without loading a neural model.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np


class HashingEmbedder:
    """Bag-of-words vectors hashed into ``dim`` buckets, L2-normalized. Counts calls."""

    name = "hashing-bow"

    def __init__(self, dim: int = 256):
        self.dim = dim
        self.calls = 0
        self.texts_embedded = 0

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        self.texts_embedded += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for w in re.findall(r"\w+", text.lower()):
                h = int.from_bytes(hashlib.blake2b(w.encode(), digest_size=4).digest(), "little")
                out[i, h % self.dim] += 1.0
            n = np.linalg.norm(out[i])
            if n:
                out[i] /= n
        return out
