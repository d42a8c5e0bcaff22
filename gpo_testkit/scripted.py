"""A deterministic scripted ChatModel for unit tests (no network, no model weights)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence

from gpo_core.models.base import ChatRequest, Completion

__all__ = ["ScriptedChatModel", "prompt_text"]


def prompt_text(request: ChatRequest) -> str:
    """All message contents of a request joined by newlines."""
    return "\n".join(content for _, content in request.messages)


class ScriptedChatModel:
    """Answers requests from a script and records every request it gets.

    responder:
      * a callable ``ChatRequest -> str``;
      * a list of replies, used in call order and cycled (call i gets ``replies[i % len]``);
      * a dict ``{substring: reply}``: the first key (in insertion order) found in the
        request's text wins; put ``""`` last as a default. No match gives
        ``Completion(error="scripted: no reply ...")``.
    name / max_concurrency: as in the ChatModel protocol. prompt_tokens_fn: request ->
    prompt tokens (default: whitespace-separated words over all messages). Completion
    tokens are the words of the reply. fail_when: request -> error message or None; a
    message makes that call fail with ``Completion(error=message, attempts=attempts_on_error)``.
    latency_s: sleep per call (seconds), to emulate a slow endpoint.

    ``calls`` is the list of requests received (appended under a lock, in arrival order).
    """

    def __init__(self, responder: Callable[[ChatRequest], str] | Sequence[str] | Mapping[str, str],
                 name: str = "scripted", max_concurrency: int = 8,
                 prompt_tokens_fn: Callable[[ChatRequest], int] | None = None, *,
                 fail_when: Callable[[ChatRequest], str | None] | None = None,
                 latency_s: float = 0.0, attempts_on_error: int = 1):
        if isinstance(responder, str):
            raise TypeError("responder must be a callable, a list of replies or a dict, not a single str")
        if not callable(responder) and not isinstance(responder, Mapping) and len(responder) == 0:
            raise ValueError("responder list is empty")
        self._responder = responder
        self.name = name
        self.max_concurrency = int(max_concurrency)
        self._prompt_tokens_fn = prompt_tokens_fn
        self._fail_when = fail_when
        self._latency_s = float(latency_s)
        self._attempts_on_error = int(attempts_on_error)
        self._lock = threading.Lock()
        self.calls: list[ChatRequest] = []

    @property
    def call_count(self) -> int:
        return len(self.calls)

    def _reply(self, request: ChatRequest, index: int) -> str | None:
        r = self._responder
        if callable(r):
            return r(request)
        if isinstance(r, Mapping):
            text = prompt_text(request)
            for needle, reply in r.items():
                if needle in text:
                    return reply
            return None
        return r[index % len(r)]

    def complete(self, request: ChatRequest) -> Completion:
        """Record the request and return the scripted reply (never raises for a scripted failure)."""
        t0 = time.perf_counter()
        with self._lock:
            index = len(self.calls)
            self.calls.append(request)
        if self._latency_s > 0:
            time.sleep(self._latency_s)
        if self._fail_when is not None:
            message = self._fail_when(request)
            if message:
                return Completion(text="", attempts=self._attempts_on_error, error=message,
                                  latency_s=time.perf_counter() - t0)
        reply = self._reply(request, index)
        if reply is None:
            return Completion(text="", error="scripted: no reply matches this request",
                              latency_s=time.perf_counter() - t0)
        if self._prompt_tokens_fn is not None:
            prompt_tokens = int(self._prompt_tokens_fn(request))
        else:
            prompt_tokens = len(prompt_text(request).split())
        return Completion(text=reply, prompt_tokens=prompt_tokens, completion_tokens=len(reply.split()),
                          latency_s=time.perf_counter() - t0)

    def __repr__(self) -> str:
        return f"ScriptedChatModel(name={self.name!r}, calls={len(self.calls)})"
