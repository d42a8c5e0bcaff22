"""A deterministic, dependency-free embedder for tests (the demo mode's hashed bag of words)."""

from gpo_core.models.demo import HashingEmbedder

__all__ = ["HashingEmbedder"]
