"""Reading the ``openai`` SDK's replies and errors: the reply's text, usage and model name
(a malformed reply is an error worth a retry), which failed attempts are worth another try,
the server's ``Retry-After`` wait, its error message and code, and the HTTP library under
the SDK. Used by :class:`gpo_core.models.openai_chat.OpenAIChatModel`.

Retried: timeouts, connection errors, HTTP 408/409/429 (not 429 ``insufficient_quota``),
HTTP 5xx, and malformed replies (body not JSON, no ``choices``).
"""

from __future__ import annotations

import email.utils
import importlib
import json
import time
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


def read_reply(resp: Any) -> tuple[str, int, int, str | None]:
    """``(text, prompt_tokens, completion_tokens, model)`` from a ChatCompletion, ``model``
    being the name the server reported (``resp.model``; None when absent or not text).
    Raises MalformedReplyError."""
    try:
        choices = resp.choices
        if not choices:
            raise MalformedReplyError("the reply has no choices")
        message = choices[0].message
        content = message.content if message is not None else None
        usage = resp.usage
    except AttributeError as exc:
        raise MalformedReplyError(f"unexpected reply shape ({type(resp).__name__})") from exc
    if content is not None and not isinstance(content, str):
        raise MalformedReplyError(f"content is {type(content).__name__}, not text")
    pt = ct = 0
    if usage is not None:
        pt = int(getattr(usage, "prompt_tokens", 0) or 0)
        ct = int(getattr(usage, "completion_tokens", 0) or 0)
    reported = getattr(resp, "model", None)
    return content or "", pt, ct, (reported.strip() or None) if isinstance(reported, str) else None
