"""A persistent response cache (SQLite, stdlib ``sqlite3``) and a caching ChatModel wrapper.

Key: SHA-256 of the JSON of (model name, messages, temperature, max_tokens, sample_index).
Value: completion text, the token usage the call cost, and the model name the server
reported (column ``reported_model``, added to older cache files on open). Only successful
completions are stored; errors never are. Requests carry no API key, so none can reach the
cache file.

Writes commit one by one in WAL mode with ``synchronous=NORMAL`` (no fsync per commit):
about 20-60 microseconds per write on a local disk, so the cache adds well under 1 ms per call.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from gpo_core.models.base import ChatModel, ChatRequest, Completion

__all__ = ["CacheEntry", "CachedChatModel", "ResponseCache", "cache_key", "default_cache_dir", "default_cache_path"]

CACHE_FILE_NAME = "responses.sqlite"

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


def cache_key(model_name: str, request: ChatRequest) -> str:
    """Hex SHA-256 of the JSON of (model name, messages, temperature, max_tokens, sample_index)."""
    payload = json.dumps(
        [model_name, [list(m) for m in request.messages], float(request.temperature),
         int(request.max_tokens), int(request.sample_index)],
        ensure_ascii=False, separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CacheEntry:
    """A stored completion: text, the token usage the backend reported when it was made
    (tokens), and the model name the backend reported (None when it named none)."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    model: str | None = None


class ResponseCache:
    """A thread-safe SQLite store of completions keyed by :func:`cache_key`.

    path: the SQLite file (parent folders are created). One connection shared by all
    threads behind a lock (``check_same_thread=False``), WAL journal, ``synchronous=NORMAL``.
    Raises ``sqlite3.DatabaseError`` if the file exists but is not an SQLite database.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = sqlite3.connect(str(self.path), check_same_thread=False,
                                                                isolation_level=None)
        db = self._db()
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(_SCHEMA)
        columns = {row[1] for row in db.execute("PRAGMA table_info(responses)")}
        if "reported_model" not in columns:  # a cache file written before the column existed
            db.execute("ALTER TABLE responses ADD COLUMN reported_model TEXT")
        self.hits = 0
        self.misses = 0

    def _db(self) -> sqlite3.Connection:
        """The open connection; sqlite3.ProgrammingError once :meth:`close` was called."""
        if self._conn is None:
            raise sqlite3.ProgrammingError(f"{self.path}: the response cache is closed")
        return self._conn

    def get(self, key: str) -> CacheEntry | None:
        """The entry stored under ``key``, or None."""
        with self._lock:
            row = self._db().execute(
                "SELECT text, prompt_tokens, completion_tokens, reported_model FROM responses WHERE key = ?", (key,)
            ).fetchone()
            if row is None:
                self.misses += 1
                return None
            self.hits += 1
        return CacheEntry(row[0], int(row[1]), int(row[2]), row[3])

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


class CachedChatModel:
    """A ChatModel that answers repeated requests from a :class:`ResponseCache`.

    inner: the model that answers misses. cache: the store. namespace: the model identity
    in cache keys (default ``inner.name``; pass e.g. ``"http://host/v1|llama3"`` so two
    servers with the same model name do not share entries). report_cached_tokens: on a hit,
    report the tokens the call cost when it was made (True, the default) or 0 (False).
    :class:`~gpo_core.models.base.TokenUsage` counts a hit's tokens as ``cached_tokens``,
    never as tokens spent.

    A hit returns ``Completion(cached=True, attempts=0, latency_s=lookup time)`` with the
    stored text, tokens and reported model name; a miss calls ``inner`` and stores the
    result only if it succeeded. ``name`` and ``max_concurrency`` are the inner model's.
    """

    def __init__(self, inner: ChatModel, cache: ResponseCache, *, namespace: str | None = None,
                 report_cached_tokens: bool = True):
        self.inner = inner
        self.cache = cache
        self.name = inner.name
        self.max_concurrency = inner.max_concurrency
        self.namespace = namespace or inner.name
        self.report_cached_tokens = report_cached_tokens

    def complete(self, request: ChatRequest) -> Completion:
        """Cached answer if present, else the inner model's (stored when it succeeded)."""
        t0 = time.perf_counter()
        key = cache_key(self.namespace, request)
        entry = self.cache.get(key)
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
        if result.error is None:
            self.cache.put(key, self.namespace,
                           CacheEntry(result.text, result.prompt_tokens, result.completion_tokens, result.model))
        return result

    def __repr__(self) -> str:
        return f"CachedChatModel({self.inner!r}, {self.cache!r})"
