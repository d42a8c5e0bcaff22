"""OpenAI (or any OpenAI-compatible server) as a :class:`~gpo_core.models.base.ChatModel`.

Library: the ``openai`` SDK (``client.chat.completions.create``) with the SDK's own retries
disabled (``max_retries=0``) and retries done by ``tenacity`` so that every HTTP attempt is
counted in :attr:`Completion.attempts`.

Retried: timeouts, connection errors, HTTP 408/409/429 (honouring ``retry-after-ms`` /
``Retry-After``, capped by ``max_retry_wait_s``), HTTP 5xx, and malformed replies (body not
JSON, no ``choices``) and HTTP 200 replies without an answer (content null, empty, blank,
a list or another non-text value): those are failed calls, never answers, so nothing can
cache or score them. Not retried: HTTP 400/401/403/404/422 and 429 ``insufficient_quota``;
they give ``Completion(error=...)`` at once. A usage field that is not a number is ignored
with a warning (:attr:`Completion.warnings`), and a reply far longer than ``max_tokens``
allows is cut to :data:`CHARS_PER_TOKEN` characters a token, with a warning.

The API key lives only inside the ``openai.OpenAI`` client object: it is never kept in
another attribute, shown by ``repr``, or put in an error message. Credentials inside the
base URL (``user:pass@``, ``?api-key=``) reach only the client too: :attr:`base_url`, every
message and ``repr`` show the URL redacted (:func:`gpo_core.models.redact.redact_url`).
The response cache scopes its entries by :meth:`OpenAIChatModel.credential_digest`.

Reading the SDK's replies and errors (which failures are retried, ``Retry-After``, the
server's message) lives in :mod:`gpo_core.models.openai_replies`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import openai
from tenacity import RetryCallState, Retrying, retry_if_exception

from gpo_core.errors import ConfigError
from gpo_core.models.base import ChatModel, ChatRequest, Completion
from gpo_core.models.openai_replies import (
    EmptyReplyError,
    MalformedReplyError,
    error_code,
    http_library,
    read_reply,
    retry_after_seconds,
    server_message,
)
from gpo_core.models.openai_replies import is_retryable as _is_retryable  # tests import it from here
from gpo_core.models.redact import needs_credentials_again, redact_url, scrub_url_secrets, url_secrets

__all__ = ["OpenAIChatModel", "check_connection", "retry_after_seconds", "http_library", "NO_KEY_PLACEHOLDER"]

#: Sent as the API key to OpenAI-compatible servers that need none (most local servers).
NO_KEY_PLACEHOLDER = "not-needed"

_MAX_MESSAGE_CHARS = 200
#: A reply longer than this many characters per requested token (and at least
#: :data:`MIN_REPLY_CHARS`) is cut: a server cannot make one call hold megabytes.
CHARS_PER_TOKEN = 16
MIN_REPLY_CHARS = 4096


class OpenAIChatModel:
    """A chat model served by OpenAI or an OpenAI-compatible endpoint.

    model: model name sent to the server (also :attr:`name`). api_key: the key; default the
    ``OPENAI_API_KEY`` environment variable; with neither, a ``base_url`` endpoint gets the
    placeholder ``"not-needed"`` and the OpenAI endpoint raises :class:`ConfigError`.
    base_url: e.g. ``"http://localhost:8000/v1"``; None means ``OPENAI_BASE_URL`` or OpenAI.
    timeout_s: per-attempt timeout (seconds). max_attempts: HTTP attempts per call (>= 1).
    max_retry_wait_s: cap on any single wait between attempts, including a server's
    ``Retry-After`` (seconds). max_total_s: retrying stops once the elapsed time plus the
    next wait reaches this many seconds, so a call lasts at most about
    ``max_total_s + timeout_s``.
    max_concurrency: calls the engine may run at once; sizes the HTTP connection pool.
    backoff_s: first backoff wait (doubles per attempt, with jitter in [50%, 100%]).
    seed: seeds the jitter's ``random.Random`` (one per instance). send_seed: send
    ``seed=request.sample_index`` so samples differ but are reproducible where the server
    supports it. max_tokens_param: ``"max_tokens"`` or ``"max_completion_tokens"``.

    Raises ConfigError for invalid settings. :meth:`complete` never raises for a failing call;
    it returns the model name the server reports in its reply (``model``, which may differ
    from the one asked for) as :attr:`Completion.model`.
    """

    def __init__(self, model: str, *, api_key: str | None = None, base_url: str | None = None,
                 timeout_s: float = 30.0, max_attempts: int = 4, max_retry_wait_s: float = 20.0,
                 max_concurrency: int = 16, max_total_s: float = 120.0, backoff_s: float = 0.5,
                 seed: int = 0, send_seed: bool = True, max_tokens_param: str = "max_tokens"):
        if not model or not str(model).strip():
            raise ConfigError("model", "the model name is empty")
        if max_attempts < 1:
            raise ConfigError("max_attempts", f"must be >= 1, got {max_attempts}")
        if max_concurrency < 1:
            raise ConfigError("max_concurrency", f"must be >= 1, got {max_concurrency}")
        if timeout_s <= 0:
            raise ConfigError("timeout_s", f"must be > 0 seconds, got {timeout_s}")
        if max_tokens_param not in ("max_tokens", "max_completion_tokens"):
            raise ConfigError("max_tokens_param",
                              f"must be 'max_tokens' or 'max_completion_tokens', got {max_tokens_param!r}")
        if needs_credentials_again(base_url):
            raise ConfigError("base_url", f"{base_url} lost its credentials, which are never saved: give the "
                                          "base URL with its credentials again")
        key = api_key or os.environ.get("OPENAI_API_KEY") or None
        if key is None:
            if base_url is None and not os.environ.get("OPENAI_BASE_URL"):
                raise ConfigError("api_key", "no API key: enter one or set the OPENAI_API_KEY environment variable")
            key = NO_KEY_PLACEHOLDER
        self.name = str(model)
        self.model = str(model)
        self.max_concurrency = int(max_concurrency)
        self.timeout_s = float(timeout_s)
        self.max_attempts = int(max_attempts)
        self.max_retry_wait_s = float(max_retry_wait_s)
        self.max_total_s = float(max_total_s)
        self.backoff_s = float(backoff_s)
        self._send_seed = bool(send_seed)
        self._max_tokens_param = max_tokens_param
        self._rng = random.Random(seed)
        http_client = openai.DefaultHttpxClient(
            limits=http_library().Limits(max_connections=self.max_concurrency + 4,
                                max_keepalive_connections=self.max_concurrency + 4),
        )
        # query parameters of the base URL (an api-key or api-version a proxy wants) travel
        # with every request: the SDK would glue them into the path
        base_url, query = split_query(base_url)
        self._client = openai.OpenAI(api_key=key, base_url=base_url, timeout=self.timeout_s,
                                     max_retries=0, http_client=http_client, default_query=query or None)
        self._url_secrets = url_secrets(_with_query(base_url, query) or os.environ.get("OPENAI_BASE_URL"))
        self._query = query
        del key, api_key
        self._create = self._client.chat.completions.create
        #: The endpoint as shown and written: credentials redacted.
        self.base_url = redact_url(_with_query(str(self._client.base_url).rstrip("/"), query)) or ""

    def credential_digest(self, salt: bytes) -> str | None:
        """HMAC-SHA256 (hex, 32 digits) keyed by ``salt`` of the credential this model calls
        with: its API key (not the keyless placeholder) and the secrets of its base URL. None
        when it has neither (a keyless server: a shared cache scope). The response cache
        scopes its entries by it; the key itself never leaves the client."""
        key = self._client.api_key
        parts = [p for p in ([key] if key and key != NO_KEY_PLACEHOLDER else []) + self._url_secrets if p]
        if not parts:
            return None
        return hmac.new(salt, "\n".join(parts).encode("utf-8"), hashlib.sha256).hexdigest()[:32]

    # ------------------------------------------------------------------ protocol

    def complete(self, request: ChatRequest) -> Completion:
        """Answer one request; errors come back as ``Completion(error=...)``, never raised."""
        t0 = time.perf_counter()
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": r, "content": c} for r, c in request.messages],
            "temperature": request.temperature,
            self._max_tokens_param: request.max_tokens,
        }
        if self._send_seed:
            kwargs["seed"] = request.sample_index
        attempts = 0
        create = self._create
        max_chars = max(MIN_REPLY_CHARS, CHARS_PER_TOKEN * int(request.max_tokens))
        try:
            for attempt in Retrying(stop=self._stop, wait=self._wait, retry=retry_if_exception(_is_retryable),
                                    reraise=True):
                with attempt:
                    attempts += 1
                    reply = read_reply(create(**kwargs), max_chars)
        except Exception as exc:  # noqa: BLE001 - a per-call failure becomes Completion.error
            reason = self._describe(exc)
            if attempts > 1:
                reason = f"{reason} (gave up after {attempts} attempts)"
            return Completion(text="", attempts=attempts, error=reason, latency_s=time.perf_counter() - t0,
                              retryable=_is_retryable(exc))
        return Completion(text=reply.text, prompt_tokens=reply.prompt_tokens, completion_tokens=reply.completion_tokens,
                          attempts=attempts, latency_s=time.perf_counter() - t0, model=reply.model,
                          warnings=tuple(self._scrub(w) for w in reply.warnings))

    # ------------------------------------------------------------------ retry policy

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        hint = None
        if isinstance(exc, openai.APIStatusError):
            hint = retry_after_seconds(exc.response.headers)
        if hint is None:
            base = min(self.max_retry_wait_s, self.backoff_s * (2 ** (state.attempt_number - 1)))
            wait = base * (0.5 + 0.5 * self._rng.random())
        else:
            wait = min(hint, self.max_retry_wait_s)
        return wait

    def _stop(self, state: RetryCallState) -> bool:
        if state.attempt_number >= self.max_attempts:
            return True
        elapsed = time.monotonic() - state.start_time
        upcoming = getattr(state, "upcoming_sleep", 0.0) or 0.0
        # the next attempt may itself take up to timeout_s; stop if it cannot finish in budget
        return elapsed + upcoming >= self.max_total_s

    # ------------------------------------------------------------------ messages

    def _scrub(self, text: str) -> str:
        key = self._client.api_key
        if key and len(key) >= 8 and key in text:
            text = text.replace(key, "***")
        if self._url_secrets:
            full = str(self._client.base_url)
            text = scrub_url_secrets(text.replace(full.rstrip("/"), self.base_url), full)
            for secret in self._url_secrets:
                text = text.replace(secret, "***")
        text = " ".join(text.split())
        return text if len(text) <= _MAX_MESSAGE_CHARS else text[: _MAX_MESSAGE_CHARS - 3] + "..."

    def _describe(self, exc: BaseException) -> str:
        """A one-line, key-free reason for a failed call."""
        if isinstance(exc, openai.APITimeoutError):
            return f"request timed out after {self.timeout_s:g} s ({self.base_url})"
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__ or exc
            detail = self._scrub(f"{type(cause).__name__}: {cause}")
            if "Connect" in type(cause).__name__:
                return f"cannot connect to {self.base_url}: {detail}"
            return f"connection to {self.base_url} failed: {detail}"
        if isinstance(exc, openai.APIStatusError):
            code = exc.status_code
            server_msg = self._scrub(server_message(exc))
            if code == 401:
                return f"authentication failed (HTTP 401) at {self.base_url}: check the API key"
            if code == 403:
                return f"permission denied (HTTP 403) for model '{self.model}': {server_msg}"
            if code == 404:
                return (f"unknown model '{self.model}' (HTTP 404 from {self.base_url}; "
                        f"check the model name and base URL): {server_msg}")
            if code == 429:
                if error_code(exc) == "insufficient_quota":
                    return f"quota exceeded (HTTP 429 insufficient_quota): check the plan and billing: {server_msg}"
                return f"rate limited (HTTP 429): {server_msg}"
            if code >= 500:
                return f"server error (HTTP {code}) at {self.base_url}: {server_msg}"
            return f"bad request (HTTP {code}) for model '{self.model}': {server_msg}"
        if isinstance(exc, EmptyReplyError):
            return f"{self._scrub(str(exc))} from {self.base_url} (HTTP 200 without an answer)"
        if isinstance(exc, (MalformedReplyError, json.JSONDecodeError, openai.APIResponseValidationError)):
            return f"malformed reply from {self.base_url}: {self._scrub(str(exc))}"
        return f"unexpected error calling {self.base_url}: {self._scrub(type(exc).__name__ + ': ' + str(exc))}"

    # ------------------------------------------------------------------ misc

    def probe(self, timeout_s: float = 10.0) -> tuple[bool, str, float]:
        """One tiny call, no retry, with a short timeout: ``(ok, message, seconds)``."""
        t0 = time.perf_counter()
        try:
            kwargs: dict[str, Any] = {"model": self.model, "timeout": timeout_s, self._max_tokens_param: 5,
                                      "messages": [{"role": "user", "content": "Reply with the word OK."}]}
            resp = self._create(**kwargs)
            read_reply(resp)
        except Exception as exc:  # noqa: BLE001
            return False, self._describe(exc), time.perf_counter() - t0
        seconds = time.perf_counter() - t0
        return True, f"connected: model '{self.model}' at {self.base_url} answered in {seconds:.2f} s", seconds

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def __enter__(self) -> OpenAIChatModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"OpenAIChatModel(model={self.model!r}, base_url={self.base_url!r}, "
                f"max_concurrency={self.max_concurrency}, timeout_s={self.timeout_s:g})")

    def __getstate__(self) -> Any:
        raise TypeError("OpenAIChatModel cannot be pickled (it holds a live client and key)")


def split_query(url: str | None) -> tuple[str | None, dict[str, str]]:
    """``url`` without its query string, and the query's parameters (``{}`` when none)."""
    if not url or "?" not in url:
        return url, {}
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", parts.fragment)), dict(
        parse_qsl(parts.query, keep_blank_values=True))


def _with_query(url: str | None, query: dict[str, str]) -> str | None:
    return f"{url}?{urlencode(query)}" if url and query else url


def check_connection(model: ChatModel, timeout_s: float = 10.0) -> tuple[bool, str, float]:
    """Test a model with one tiny call: ``(ok, message, seconds)`` (the app's "test connection").

    For :class:`OpenAIChatModel`: a single attempt with ``timeout_s`` (seconds), no retry.
    For any other ChatModel: one ``complete`` of a 5-token request. Never raises.
    """
    if isinstance(model, OpenAIChatModel):
        return model.probe(timeout_s)
    t0 = time.perf_counter()
    try:
        c = model.complete(ChatRequest.user("Reply with the word OK.", max_tokens=5))
    except Exception as exc:  # noqa: BLE001
        return False, f"{type(exc).__name__}: {exc}", time.perf_counter() - t0
    seconds = time.perf_counter() - t0
    if c.error:
        return False, c.error, seconds
    return True, f"connected: model '{model.name}' answered in {seconds:.2f} s", seconds
