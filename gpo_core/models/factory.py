"""Model settings (:class:`ModelSpec`) and building a ChatModel from them.

A spec holds no API key: keys are passed to :func:`build_chat_model` separately and are
never serialized with :meth:`ModelSpec.to_dict`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from gpo_core.errors import ConfigError
from gpo_core.models.base import ChatModel
from gpo_core.models.cache import CachedChatModel, ResponseCache

__all__ = ["BACKENDS", "ModelSpec", "build_chat_model"]

#: ``local``: the embedded SmolLM2 model (or another GGUF file); ``openai``: api.openai.com
#: (or ``OPENAI_BASE_URL``); ``compatible``: any OpenAI-compatible server at ``base_url``.
BACKENDS: tuple[str, ...] = ("local", "openai", "compatible")
LOCAL_DEFAULT_MODEL = "SmolLM2-135M-Instruct.Q4_1"


@dataclass
class ModelSpec:
    """Settings of one model role (task model or optimizer model).

    backend: one of :data:`BACKENDS`. model: model name (for ``local``: ``""`` or
    ``"SmolLM2-135M-Instruct.Q4_1"`` for the embedded model, or a path to a ``.gguf`` file).
    base_url: endpoint for ``compatible`` (required) or ``openai`` (optional override),
    e.g. ``"http://localhost:8000/v1"``. temperature: sampling temperature in [0, 2].
    max_tokens: completion cap in tokens (>= 1). concurrency: calls in flight at once
    (>= 1; the embedded model always runs 1). timeout_s: per-attempt timeout in seconds (> 0).
    """

    backend: str = "local"
    model: str = LOCAL_DEFAULT_MODEL
    base_url: str | None = None
    temperature: float = 0.0
    max_tokens: int = 256
    concurrency: int = 8
    timeout_s: float = 30.0

    def validate(self, label: str | None = None) -> "ModelSpec":
        """Check every field; returns self. Raises ConfigError naming the setting
        (prefixed ``"<label>."`` when a label such as ``"task_model"`` is given)."""

        def bad(name: str, reason: str) -> ConfigError:
            return ConfigError(f"{label}.{name}" if label else name, reason)

        if self.backend not in BACKENDS:
            raise bad("backend", f"must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if not isinstance(self.model, str):
            raise bad("model", f"must be text, got {type(self.model).__name__}")
        if self.backend != "local" and not self.model.strip():
            raise bad("model", "the model name is empty")
        if self.backend == "local" and self.model.strip() not in ("", LOCAL_DEFAULT_MODEL):
            if not self.model.endswith(".gguf"):
                raise bad("model", f"a local model is {LOCAL_DEFAULT_MODEL!r} or a path to a .gguf file, got {self.model!r}")
            if not Path(self.model).expanduser().is_file():
                raise bad("model", f"GGUF file not found: {self.model}")
        if self.backend == "compatible" and not self.base_url:
            raise bad("base_url", "an OpenAI-compatible backend needs a base URL such as http://localhost:8000/v1")
        if self.base_url is not None:
            if not isinstance(self.base_url, str) or not self.base_url.startswith(("http://", "https://")):
                raise bad("base_url", f"must start with http:// or https://, got {self.base_url!r}")
        if not _is_number(self.temperature) or not 0.0 <= float(self.temperature) <= 2.0:
            raise bad("temperature", f"must be a number in [0, 2], got {self.temperature!r}")
        if not _is_int(self.max_tokens) or self.max_tokens < 1:
            raise bad("max_tokens", f"must be a whole number >= 1, got {self.max_tokens!r}")
        if not _is_int(self.concurrency) or self.concurrency < 1:
            raise bad("concurrency", f"must be a whole number >= 1, got {self.concurrency!r}")
        if not _is_number(self.timeout_s) or float(self.timeout_s) <= 0:
            raise bad("timeout_s", f"must be a number of seconds > 0, got {self.timeout_s!r}")
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict of the fields (never contains an API key)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], label: str | None = None) -> "ModelSpec":
        """Build and validate a spec from :meth:`to_dict` output.

        Raises ConfigError for an unknown key (an ``api_key`` entry is refused outright so
        that keys never travel in run files), a missing ``backend``, or an invalid value.
        """

        def name(key: str) -> str:
            return f"{label}.{key}" if label else key

        if not isinstance(data, Mapping):
            raise ConfigError(label or "model", f"expected a mapping, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        for key in data:
            if key == "api_key":
                raise ConfigError(name("api_key"), "API keys are not stored in model settings; pass them separately")
            if key not in known:
                raise ConfigError(name(str(key)), f"unknown setting; expected {', '.join(sorted(known))}")
        if "backend" not in data:
            raise ConfigError(name("backend"), "missing")
        kwargs = dict(data)
        for key, conv in (("temperature", float), ("timeout_s", float), ("max_tokens", int), ("concurrency", int)):
            if key in kwargs and isinstance(kwargs[key], str):
                try:
                    kwargs[key] = conv(kwargs[key])
                except ValueError:
                    raise ConfigError(name(key), f"not a number: {kwargs[key]!r}") from None
        return cls(**kwargs).validate(label)

    def cache_namespace(self) -> str:
        """Model identity for cache keys: the endpoint and model name."""
        if self.backend == "local":
            return "local:" + (self.model or LOCAL_DEFAULT_MODEL)
        return f"{self.backend}|{self.base_url or ''}|{self.model}"


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def build_chat_model(spec: ModelSpec, *, api_key: str | None = None, cache: ResponseCache | None = None,
                     seed: int = 0) -> ChatModel:
    """A ChatModel for ``spec`` (validated first), wrapped in :class:`CachedChatModel` when a
    cache is given.

    api_key: for ``openai`` / ``compatible`` (default ``OPENAI_API_KEY``); kept only in the
    SDK client. seed: base seed of the embedded model's sampling and of retry jitter.
    Raises ConfigError for invalid settings (including a missing key for ``openai``).
    The embedded model is not loaded here (it loads on first call).
    """
    spec.validate()
    model: ChatModel
    if spec.backend == "local":
        from gpo_core.models.local_llama import LocalLlamaChatModel

        path = None if spec.model.strip() in ("", LOCAL_DEFAULT_MODEL) else Path(spec.model).expanduser()
        model = LocalLlamaChatModel(path, seed=seed)
    else:
        from gpo_core.models.openai_chat import OpenAIChatModel

        model = OpenAIChatModel(
            spec.model,
            api_key=api_key,
            base_url=spec.base_url,
            timeout_s=float(spec.timeout_s),
            max_concurrency=int(spec.concurrency),
            seed=seed,
            max_tokens_param="max_completion_tokens" if spec.backend == "openai" and not spec.base_url else "max_tokens",
        )
    if cache is not None:
        model = CachedChatModel(model, cache, namespace=spec.cache_namespace())
    return model
