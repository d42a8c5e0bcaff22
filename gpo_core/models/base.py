"""The chat-model seam: one protocol for the task model (scorer) and the optimizer model.

Implementations: :mod:`gpo_core.models.openai_chat` (OpenAI or any OpenAI-compatible
server through the ``openai`` SDK), :mod:`gpo_core.models.local_llama` (embedded
SmolLM2-135M-Instruct via llama-cpp-python), :mod:`gpo_core.models.cache` (a persistent
SQLite cache wrapping either) and :mod:`gpo_testkit.scripted` (scripted fake for tests).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class ChatRequest:
    """One chat-completion request.

    messages: tuple of ``(role, content)`` pairs, role in {"system", "user", "assistant"}.
    temperature: sampling temperature (>= 0). max_tokens: completion cap in tokens.
    sample_index: which of N samples of the same request this is; part of the cache key so
    the N candidates of one step differ while a repeated run hits the cache. grammar: an
    optional GBNF grammar the reply must match; embedded llama.cpp models apply it, remote
    models never get one (the optimizer sets it only for embedded optimizer models); part of
    the cache key when set. avoid: with a grammar, instructions the reply must not be (each
    as :func:`avoid_key` writes it: whitespace collapsed, lower case, no trailing full stop):
    an embedded model may not close its tags on one of them and writes on instead
    (the optimizer passes the prompts already tried, so a small model that would copy the
    current prompt edits it); part of the cache key when set.
    """

    messages: tuple[tuple[str, str], ...]
    temperature: float = 0.0
    max_tokens: int = 256
    sample_index: int = 0
    grammar: str | None = None
    avoid: tuple[str, ...] = ()

    @staticmethod
    def user(text: str, **kwargs) -> ChatRequest:
        """A single user-message request."""
        return ChatRequest(messages=(("user", text),), **kwargs)


def avoid_key(text: str) -> str:
    """``text`` as :attr:`ChatRequest.avoid` compares instructions: whitespace collapsed, lower
    case, trailing full stops, "!" and "?" and spaces dropped ("Label the ticket." and "label
    the ticket" are the same prompt to avoid: a model told to avoid the first wrote the
    second, issue 14)."""
    return " ".join(text.split()).lower().rstrip(" .!?")


@dataclass
class Completion:
    """The outcome of one request; never raises for a per-call failure.

    text: completion text ("" on error). prompt_tokens / completion_tokens: usage in tokens
    as reported by the backend (0 when unknown; for a cache hit, what the call cost when it
    was made). attempts: HTTP attempts made
    (1 = no retry; 0 = served from cache). error: None, or a one-line reason when every
    attempt failed. latency_s: wall time of the call in seconds. cached: served from cache
    (the token counts are then those the call cost when it was made). model: the model name
    the backend reported in its reply (None when it reports none). retryable: for a failed
    call, False when sending it again cannot help (e.g. HTTP 401/404: a wrong key or model
    name); True otherwise (timeouts, 5xx, and failures of unknown kind).
    """

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    attempts: int = 1
    error: str | None = None
    latency_s: float = 0.0
    cached: bool = False
    model: str | None = None
    retryable: bool = True
    warnings: tuple[str, ...] = ()

    @property
    def retries(self) -> int:
        """Attempts beyond the first (0 when the first attempt succeeded or cached)."""
        return max(0, self.attempts - 1)

    @property
    def ok(self) -> bool:
        return self.error is None


def is_valid_answer(c: Completion) -> bool:
    """A completion that answered: no error and a non-blank text. Only these are cached
    (:mod:`gpo_core.models.cache`); an HTTP 200 whose content is null, a list, empty or not
    text is a failed call (:mod:`gpo_core.models.openai_replies`), never an answer."""
    return c.error is None and isinstance(c.text, str) and bool(c.text.strip())


def with_warning(c: Completion, warning: str) -> Completion:
    """A copy of ``c`` with ``warning`` added to its :attr:`Completion.warnings`."""
    return dataclasses.replace(c, warnings=(*c.warnings, warning))


def summarize_warnings(completions: Iterable[Completion]) -> list[str]:
    """The distinct warnings of ``completions``, each once, in first-seen order, prefixed with
    how many calls had it when more than one ("8 calls: response cache write failed ...")."""
    counts: Counter[str] = Counter()
    for c in completions:
        counts.update(c.warnings)
    return [w if n == 1 else f"{n} calls: {w}" for w, n in counts.items()]


@runtime_checkable
class ChatModel(Protocol):
    """Anything that answers chat requests.

    ``name`` identifies the model in cache keys and run files (e.g. ``"gpt-4o-mini"`` or
    ``"local:SmolLM2-135M-Instruct.Q4_1"``). ``max_concurrency`` is the most calls the
    implementation can usefully run at once (1 for the embedded model).
    ``complete`` must be thread-safe and must return a :class:`Completion` with ``error``
    set rather than raise on a failing call.

    Optional: ``credential_digest(salt: bytes) -> str | None``: a keyed hash (HMAC with
    ``salt``) of the credential the model calls with (API key, secrets in its base URL), or
    None for a model without one. The response cache scopes its entries by it
    (:class:`~gpo_core.models.cache.CachedChatModel`), so one key's answers are never served
    to another key; the credential itself never leaves the model.
    """

    name: str
    max_concurrency: int

    def complete(self, request: ChatRequest) -> Completion: ...


@dataclass
class TokenUsage:
    """Token and call counters, summed over calls (per step, per candidate or per run).

    prompt_tokens / completion_tokens: tokens SPENT, i.e. of calls a backend answered (cache
    hits excluded). calls: every call, answered or cached or failed. cached_calls: calls
    served from the response cache. cached_tokens: what those cached calls cost (prompt +
    completion tokens) when they were first made; not spent again. retries: HTTP attempts
    beyond the first. failed_calls: calls that ended with an error after their retries.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    cached_calls: int = 0
    retries: int = 0
    failed_calls: int = 0
    cached_tokens: int = 0

    def add(self, c: Completion) -> None:
        """Count one completion (a cache hit counts in ``cached_*`` only)."""
        if c.cached:
            self.cached_calls += 1
            self.cached_tokens += c.prompt_tokens + c.completion_tokens
        else:
            self.prompt_tokens += c.prompt_tokens
            self.completion_tokens += c.completion_tokens
        self.calls += 1
        self.retries += c.retries
        self.failed_calls += int(c.error is not None)

    def merge(self, other: TokenUsage) -> TokenUsage:
        """A new TokenUsage holding the field-wise sum."""
        return TokenUsage(**{k: getattr(self, k) + getattr(other, k) for k in self.__dataclass_fields__})

    @property
    def total_tokens(self) -> int:
        """Tokens spent (prompt + completion), cache hits excluded."""
        return self.prompt_tokens + self.completion_tokens

    @property
    def cost_tokens(self) -> int:
        """What the calls cost when they were made: spent tokens plus cached calls' tokens."""
        return self.total_tokens + self.cached_tokens
