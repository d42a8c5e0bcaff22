"""A persistent response cache (SQLite, stdlib ``sqlite3``) and a caching ChatModel wrapper.

Key: SHA-256 of the JSON of (model identity, messages, temperature, max_tokens,
sample_index, credential scope). Value: completion text, the token usage the call cost, and
the model name the server reported (column ``reported_model``, added to older cache files on
open).

Rules (issue 15):

- **Only a valid answer is cached** (:func:`~gpo_core.models.base.is_valid_answer`: no error
  and non-blank text). Errors never are, nor an empty or null reply; a blank row left by an
  older version is ignored on read and replaced.
- **A cached answer is served only to the credential that paid for it.** The credential
  scope is an HMAC-SHA256 of the model's API key and the secrets in its base URL, keyed by a
  random salt stored in the cache file (table ``meta``), asked of the model itself
  (``credential_digest(salt)``): the key never reaches this module or the file, and the
  scope cannot be matched against a key without the file's salt. Models without a
  credential (the embedded model, a keyless local server) share the scope "". So a session
  whose key the server refuses gets the refusal, not another session's answers.
- **A local fault is not a model failure.** If the cache cannot be read or written (disk
  full, I/O error) during a run, the call is answered by the model and the answer used; the
  fault becomes a warning on the completion (:attr:`Completion.warnings`), shown with the
  step. A cache file that cannot be opened at all (not a database, unreadable) raises
  :class:`CacheFileError`: one line naming the file and the fix (move it away, or run
  without the cache: ``--no-cache``).
- No API key, and no URL credential, reaches the file: the model identity (column
  ``model``) is :meth:`~gpo_core.settings.ModelSettings.cache_namespace`, whose base URL is
  redacted (:func:`gpo_core.models.redact.redact_url`).

Writes commit one by one in WAL mode with ``synchronous=NORMAL`` (no fsync per commit):
about 20-60 microseconds per write on a local disk, so the cache adds well under 1 ms per call.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from gpo_core.errors import GPOError
from gpo_core.models.base import ChatModel, ChatRequest, Completion, is_valid_answer, with_warning

__all__ = ["CacheEntry", "CacheFileError", "CachedChatModel", "ResponseCache", "cache_key", "default_cache_dir",
           "default_cache_path"]

CACHE_FILE_NAME = "responses.sqlite"
#: How to run without the cache, named in every cache error.
NO_CACHE_HINT = ("or run without the cache (--no-cache; in the app: untick 'Reuse cached responses' on the Models "
                 "page)")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    text TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    created REAL NOT NULL,
    reported_model TEXT
)
"""
_META = "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)"


class CacheFileError(GPOError):
    """The response cache file cannot be opened or used. The message is one line naming
    the file, what is wrong, and the fix (move the file away, or run without the cache)."""


def default_cache_dir() -> Path:
    """Folder for the response cache: ``$GPO_HOME/cache`` if ``GPO_HOME`` is set, else
    ``platformdirs.user_data_dir("gpo-studio")/cache``. Not created here."""
    home = os.environ.get("GPO_HOME")
    if home:
        return Path(home).expanduser() / "cache"
    import platformdirs

    return Path(platformdirs.user_data_dir("gpo-studio")) / "cache"


def default_cache_path() -> Path:
    """``default_cache_dir() / "responses.sqlite"``."""
    return default_cache_dir() / CACHE_FILE_NAME


def cache_key(model_name: str, request: ChatRequest, scope: str = "") -> str:
    """Hex SHA-256 of the JSON of (model identity, messages, temperature, max_tokens,
    sample_index), when not "", the credential ``scope`` (see the module docstring), and the
    reply grammar and the instructions to avoid when the request has them."""
    parts: list = [model_name, [list(m) for m in request.messages], float(request.temperature),
                   int(request.max_tokens), int(request.sample_index)]
    if scope:
        parts.append(scope)
    if request.grammar:
        parts.append({"grammar": request.grammar})
    if request.avoid:
        parts.append({"avoid": list(request.avoid)})
    payload = json.dumps(parts, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def credential_scope(salt: bytes, *secrets_: str | None) -> str:
    """The cache scope of a credential: hex HMAC-SHA256 (first 32 digits) of the non-empty
    ``secrets_`` keyed by ``salt``; "" when there is none (a shared, keyless scope)."""
    parts = [s for s in secrets_ if s]
    if not parts:
        return ""
    return hmac.new(salt, "\n".join(parts).encode("utf-8"), hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True)
class CacheEntry:
    """A stored completion: text, the token usage the backend reported when it was made
    (tokens), and the model name the backend reported (None when it named none)."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    model: str | None = None


def _file_error(path: Path, exc: BaseException) -> CacheFileError:
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "not a database" in reason or "malformed" in reason or "encrypted" in reason:
        what = f"is damaged or not a cache file ({reason}): move or delete it (a new one is made)"
    elif "readonly" in reason or "read-only" in reason or isinstance(exc, PermissionError):
        what = f"cannot be written ({reason}): make it writable or point --cache-dir elsewhere"
    elif "full" in reason:
        what = f"cannot be written: the disk is full ({reason}): free space"
    else:
        what = f"cannot be opened ({reason}): check the file and its folder"
    return CacheFileError(f"response cache {path} {what}, {NO_CACHE_HINT}")


class ResponseCache:
    """A thread-safe SQLite store of completions keyed by :func:`cache_key`.

    path: the SQLite file (parent folders are created). One connection shared by all
    threads behind a lock (``check_same_thread=False``), WAL journal, ``synchronous=NORMAL``.
    salt: the file's random 16-byte salt for credential scopes (made on first open).
    Raises :class:`CacheFileError` (one line: the file and the fix) when the file is not an
    SQLite cache, cannot be read, or cannot be created. :meth:`get` / :meth:`put` raise
    ``sqlite3.Error`` on a fault during use (:class:`CachedChatModel` turns it into a warning).
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self.hits = 0
        self.misses = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
            db = self._conn
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(_SCHEMA)
            db.execute(_META)
            columns = {row[1] for row in db.execute("PRAGMA table_info(responses)")}
            if "reported_model" not in columns:  # a cache file written before the column existed
                db.execute("ALTER TABLE responses ADD COLUMN reported_model TEXT")
            if not {"key", "text", "prompt_tokens", "completion_tokens"} <= columns:
                raise sqlite3.DatabaseError("file is not a response cache (its table has other columns)")
            row = db.execute("SELECT value FROM meta WHERE name = 'salt'").fetchone()
            if row is None:
                db.execute("INSERT OR IGNORE INTO meta (name, value) VALUES ('salt', ?)", (secrets.token_hex(16),))
                row = db.execute("SELECT value FROM meta WHERE name = 'salt'").fetchone()
            self.salt = bytes.fromhex(str(row[0]))
        except (sqlite3.Error, OSError, ValueError, TypeError) as exc:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            raise _file_error(self.path, exc) from None

    def _db(self) -> sqlite3.Connection:
        """The open connection; sqlite3.ProgrammingError once :meth:`close` was called."""
        if self._conn is None:
            raise sqlite3.ProgrammingError(f"{self.path}: the response cache is closed")
        return self._conn

    def get(self, key: str) -> CacheEntry | None:
        """The entry stored under ``key``, or None (also for a row with blank text or
        unusable token counts, left by an older version: not an answer)."""
        with self._lock:
            row = self._db().execute(
                "SELECT text, prompt_tokens, completion_tokens, reported_model FROM responses WHERE key = ?", (key,)
            ).fetchone()
            if row is None or not (isinstance(row[0], str) and row[0].strip() != ""
                                   and isinstance(row[1], int) and isinstance(row[2], int)):
                self.misses += 1
                return None
            self.hits += 1
        return CacheEntry(row[0], int(row[1]), int(row[2]), row[3] if isinstance(row[3], str) else None)

    def put(self, key: str, model_name: str, entry: CacheEntry) -> None:
        """Store (or replace) ``entry`` under ``key``; committed at once."""
        with self._lock:
            self._db().execute(
                "INSERT OR REPLACE INTO responses (key, model, text, prompt_tokens, completion_tokens, created,"
                " reported_model) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key, model_name, entry.text, int(entry.prompt_tokens), int(entry.completion_tokens), time.time(),
                 entry.model),
            )

    def __len__(self) -> int:
        with self._lock:
            return int(self._db().execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def clear(self) -> None:
        """Delete every entry."""
        with self._lock:
            self._db().execute("DELETE FROM responses")

    def close(self) -> None:
        """Checkpoint the WAL and close the connection. Idempotent."""
        with self._lock:
            if self._conn is None:
                return
            try:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass
            self._conn.close()
            self._conn = None

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.path)!r})"


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class CachedChatModel:
    """A ChatModel that answers repeated requests from a :class:`ResponseCache`.

    inner: the model that answers misses. cache: the store. namespace: the model identity
    in cache keys (default ``inner.name``; pass e.g. ``"compatible|http://host/v1|llama3"`` so
    two servers with the same model name do not share entries; it is stored in the file, so
    it must hold no credential). scope: the credential scope (default: from
    ``inner.credential_digest(cache.salt)`` when the inner model has one, else "": shared).
    report_cached_tokens: on a hit, report the tokens the call cost when it was made (True,
    the default) or 0 (False). :class:`~gpo_core.models.base.TokenUsage` counts a hit's
    tokens as ``cached_tokens``, never as tokens spent.

    A hit returns ``Completion(cached=True, attempts=0, latency_s=lookup time)`` with the
    stored text, tokens and reported model name; a miss calls ``inner`` and stores the
    result only if it is a valid answer. A cache that fails to read or write is a warning on
    the completion, never an error (see the module docstring). ``name`` and
    ``max_concurrency`` are the inner model's.
    """

    def __init__(self, inner: ChatModel, cache: ResponseCache, *, namespace: str | None = None,
                 report_cached_tokens: bool = True, scope: str | None = None):
        self.inner = inner
        self.cache = cache
        self.name = inner.name
        self.max_concurrency = inner.max_concurrency
        self.namespace = namespace or inner.name
        self.report_cached_tokens = report_cached_tokens
        if scope is None:
            digest = getattr(inner, "credential_digest", None)
            found = digest(cache.salt) if callable(digest) else None
            scope = found if isinstance(found, str) else ""
        self.scope: str = scope

    def complete(self, request: ChatRequest) -> Completion:
        """Cached answer if present, else the inner model's (stored when it is a valid
        answer). Never raises for a cache fault: it becomes a warning."""
        t0 = time.perf_counter()
        key = cache_key(self.namespace, request, self.scope)
        warnings: list[str] = []
        try:
            entry = self.cache.get(key)
        except sqlite3.Error as exc:
            entry = None
            warnings.append(f"response cache {self.cache.path} could not be read ({_short(exc)}): "
                            "answered by the model")
        if entry is not None:
            report = self.report_cached_tokens
            return Completion(
                text=entry.text,
                prompt_tokens=entry.prompt_tokens if report else 0,
                completion_tokens=entry.completion_tokens if report else 0,
                attempts=0,
                latency_s=time.perf_counter() - t0,
                cached=True,
                model=entry.model,
            )
        result = self.inner.complete(request)
        if warnings:
            result = dataclasses.replace(result, warnings=(*result.warnings, *warnings))
        if is_valid_answer(result):
            try:
                self.cache.put(key, self.namespace,
                               CacheEntry(result.text, result.prompt_tokens, result.completion_tokens, result.model))
            except sqlite3.Error as exc:
                result = with_warning(result, f"response cache {self.cache.path} could not be written ({_short(exc)}): "
                                     "the answer is used but not cached")
        return result

    def __repr__(self) -> str:
        return f"CachedChatModel({self.inner!r}, {self.cache!r})"
