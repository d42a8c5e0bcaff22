"""Credentials inside a base URL: redact them wherever a URL is written or shown.

A base URL may carry credentials: ``http://user:pass@host/v1`` (URL userinfo) or
``https://host/v1?api-key=SECRET`` (a query parameter whose name says key, token, secret,
password, auth or signature). The live client needs the full URL; everything that is
written (run.json settings, cache rows, exports, logs) or shown (error messages, the app,
the CLI) gets :func:`redact_url` instead, where each secret becomes :data:`MARK`.

A URL read back from a run file may therefore have lost its credentials;
:func:`needs_credentials_again` says so, and building a model from it asks for the URL
again (see :mod:`gpo_core.models.provider`).

Library: :mod:`urllib.parse` (RFC 3986 split, ``parse_qsl``/``urlencode``).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

__all__ = ["MARK", "needs_credentials_again", "redact_url", "scrub_url_secrets", "url_secrets"]

#: What a secret is replaced with.
MARK = "***"

#: Query parameter names whose values are secrets ("api-key", "key", "token", "sig"...).
_SECRET_PARAM = re.compile(r"(key|token|secret|passw|pwd|auth|sig|credential|session|cookie|code)",
                           re.IGNORECASE)


def _secret_params(query: str) -> list[tuple[str, str]]:
    return [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if _SECRET_PARAM.search(k)]


def url_secrets(url: str | None) -> list[str]:
    """The secret parts of ``url``: its userinfo (``user:pass``) and the values of its secret
    query parameters, in order; [] when it holds none (or is None / not a URL)."""
    if not url:
        return []
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    out: list[str] = []
    if "@" in parts.netloc:
        out.append(parts.netloc.rpartition("@")[0])
    out += [v for _, v in _secret_params(parts.query) if v]
    return out


def redact_url(url: str | None) -> str | None:
    """``url`` with its credentials replaced by :data:`MARK`: the whole userinfo
    (``http://***@host/v1``) and the value of every secret query parameter
    (``?api-key=***``; other parameters such as ``api-version`` stay). None stays None; a
    URL without credentials comes back unchanged. A string that does not parse as a URL
    comes back with anything before an ``@`` masked."""
    if not url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return re.sub(r"//[^/@]*@", f"//{MARK}@", url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MARK}@{netloc.rpartition('@')[2]}"
    query = parts.query
    if _secret_params(query):
        pairs = parse_qsl(query, keep_blank_values=True)
        query = "&".join(f"{quote(k, safe='-_.~')}={MARK if _SECRET_PARAM.search(k) else quote(v, safe='-_.~')}"
                         for k, v in pairs)
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def needs_credentials_again(url: str | None) -> bool:
    """True when ``url`` is a redacted URL (read from a run file): its userinfo or a secret
    query value is :data:`MARK`, so the credentials must be given again."""
    if not url:
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return MARK in url
    if "@" in parts.netloc and MARK in parts.netloc.rpartition("@")[0]:
        return True
    return any(v == MARK for _, v in _secret_params(parts.query))


def scrub_url_secrets(text: str, url: str | None) -> str:
    """``text`` with every secret of ``url`` (see :func:`url_secrets`, also percent-decoded
    and each half of ``user:pass``) replaced by :data:`MARK`; for messages that may quote
    the URL (an HTTP library's error)."""
    secrets: set[str] = set()
    for s in url_secrets(url):
        secrets.add(s)
        secrets.update(p for p in s.split(":") if p)
    from urllib.parse import unquote

    secrets |= {unquote(s) for s in secrets}
    for s in sorted((s for s in secrets if len(s) >= 3), key=len, reverse=True):
        text = text.replace(s, MARK)
    return text
