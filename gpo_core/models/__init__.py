"""Chat models: the protocol (:mod:`.base`) and its implementations.

Light names are imported eagerly; the heavier backends (``openai`` SDK, llama-cpp-python)
load on first attribute access, so ``import gpo_core.models`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gpo_core.models.base import ChatModel, ChatRequest, Completion, TokenUsage
from gpo_core.models.cache import CachedChatModel, ResponseCache, cache_key, default_cache_dir, default_cache_path

__all__ = [
    "CachedChatModel", "ChatModel", "ChatRequest", "Completion", "LocalLlamaChatModel",
    "OpenAIChatModel", "ResponseCache", "TokenUsage", "ModelProvider", "build_chat_model",
    "cache_key", "check_connection", "default_cache_dir", "default_cache_path", "default_gguf_path",
]

if TYPE_CHECKING:  # the lazy names, for type checkers
    from gpo_core.models.local_llama import LocalLlamaChatModel, default_gguf_path
    from gpo_core.models.openai_chat import OpenAIChatModel, check_connection
    from gpo_core.models.provider import ModelProvider, build_chat_model

_LAZY = {
    "ModelProvider": "gpo_core.models.provider",
    "build_chat_model": "gpo_core.models.provider",
    "OpenAIChatModel": "gpo_core.models.openai_chat",
    "check_connection": "gpo_core.models.openai_chat",
    "LocalLlamaChatModel": "gpo_core.models.local_llama",
    "default_gguf_path": "gpo_core.models.local_llama",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gpo_core.models' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
