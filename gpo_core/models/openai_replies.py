"""Reading the ``openai`` SDK's replies and errors: the reply's text, usage and model name
(a malformed reply is an error worth a retry), which failed attempts are worth another try,
the server's ``Retry-After`` wait, its error message and code, and the HTTP library under
the SDK. Used by :class:`gpo_core.models.openai_chat.OpenAIChatModel`.

Retried: timeouts, connection errors, HTTP 408/409/429 (not 429 ``insufficient_quota``),
HTTP 5xx, and malformed replies (body not JSON, no ``choices``, content null, empty, blank
or not text: an HTTP 200 without an answer is a failed call, never an answer).
"""

from __future__ import annotations

import email.utils
import importlib
import json
import math
import time
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import openai

#: HTTP statuses below 500 worth another attempt.
RETRY_STATUS = frozenset({408, 409, 429})


class MalformedReplyError(Exception):
    """The server answered HTTP 200 with a body that is not a usable chat completion."""


def http_library() -> ModuleType:
    """The HTTP library the installed ``openai`` SDK is built on (``httpx``, or ``httpx2`` in
    SDK 3.x): the module whose ``Client`` ``openai.DefaultHttpxClient`` extends."""
    for cls in openai.DefaultHttpxClient.__mro__:
        root = cls.__module__.split(".")[0]
        if cls.__name__ == "Client" and root.startswith("httpx"):
            return importlib.import_module(root)
    return importlib.import_module("httpx")


def error_code(exc: openai.APIStatusError) -> str | None:
    """The error's ``code`` (or ``type``) from the server's JSON body, e.g. "insufficient_quota"."""
    body = exc.body
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            code = err.get("code") or err.get("type")
            return str(code) if code is not None else None
    return None


def is_retryable(exc: BaseException) -> bool:
    """Whether a failed attempt is worth another try."""
    if isinstance(exc, (openai.APIConnectionError, openai.APIResponseValidationError, MalformedReplyError,
                        json.JSONDecodeError)):
        # APITimeoutError is an APIConnectionError; the SDK lets json.JSONDecodeError out
        # when a 200 body does not parse.
        return True
    if isinstance(exc, openai.APIStatusError):
        code = exc.status_code
        if code == 429 and error_code(exc) == "insufficient_quota":
            return False
        return code in RETRY_STATUS or code >= 500
    return False


def retry_after_seconds(headers: Any) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP date).

    headers: a mapping with case-insensitive ``get`` (``httpx.Headers``). Returns None when
    absent or unparsable, else a value >= 0. Source: the OpenAI API's rate-limit headers.
    """
    if headers is None:
        return None
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def server_message(exc: openai.APIStatusError) -> str:
    """The server's own message of an HTTP error (not yet scrubbed of the key)."""
    body = exc.body
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(err, str):
            return err
    return str(getattr(exc, "message", "") or exc)


class EmptyReplyError(MalformedReplyError):
    """The server answered HTTP 200 with no text (content "", blank or null). A failed call,
    retried like any malformed reply; never an answer, never cached."""


@dataclass
class Reply:
    """What :func:`read_reply` takes from a ChatCompletion.

    text: the reply text (non-blank; at most ``max_chars`` characters). prompt_tokens /
    completion_tokens: usage in tokens (0 when absent or not a number). model: the name the
    server reported (None when absent or not text). warnings: harmless oddities, e.g. a usage
    field that is not a number (ignored) or a reply cut to ``max_chars``."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str | None = None
    warnings: list[str] = field(default_factory=list)


def _count(value: Any, name: str, warnings: list[str]) -> int:
    """A usage count: a non-negative finite number (rounded), else 0 with a warning."""
    if value is None:
        return 0
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
        return int(round(value))
    shown = repr(value)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    warnings.append(f"usage field '{name}' is not a number ({shown}): ignored, counted as 0 tokens")
    return 0


def read_reply(resp: Any, max_chars: int | None = None) -> Reply:
    """The :class:`Reply` of a ChatCompletion.

    Raises MalformedReplyError (a failed call, retried) when the reply has no choices or
    another shape, or when ``choices[0].message.content`` is not text (a list of parts, a
    number, an object); EmptyReplyError when it is null, "" or blank (the finish reason is
    named when the server gave one). A usage field that is not a number is ignored with a
    warning; a text longer than ``max_chars`` characters is cut to it with a warning."""
    try:
        choices = resp.choices
        if not choices or not isinstance(choices, list):
            raise MalformedReplyError("the reply has no choices")
        choice = choices[0]
        message = choice.message
        content = message.content if message is not None else None
        finish = getattr(choice, "finish_reason", None)
        usage = getattr(resp, "usage", None)
    except AttributeError as exc:
        raise MalformedReplyError(f"unexpected reply shape ({type(resp).__name__})") from exc
    if content is not None and not isinstance(content, str):
        raise MalformedReplyError(f"content is {type(content).__name__}, not text")
    if content is None or not content.strip():
        what = "null" if content is None else "empty" if content == "" else "blank"
        why = f", finish_reason {finish!r}" if isinstance(finish, str) and finish else ""
        raise EmptyReplyError(f"empty reply: content is {what}{why}")
    warnings: list[str] = []
    pt = ct = 0
    if usage is not None:
        if isinstance(usage, (str, int, float, list)):
            warnings.append(f"usage is {type(usage).__name__}, not an object: ignored, counted as 0 tokens")
        else:
            pt = _count(getattr(usage, "prompt_tokens", None), "prompt_tokens", warnings)
            ct = _count(getattr(usage, "completion_tokens", None), "completion_tokens", warnings)
    if max_chars is not None and len(content) > max_chars:
        warnings.append(f"reply of {len(content):,} characters cut to {max_chars:,} (far beyond max_tokens)")
        content = content[:max_chars]
    reported = getattr(resp, "model", None)
    return Reply(content, pt, ct, (reported.strip() or None) if isinstance(reported, str) else None, warnings)
