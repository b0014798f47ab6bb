"""Finished runs, kept for ``GET /api/v1/runs/{id}``: bounded in bytes and in time.

Routes speak only ``RunStore``. Three stores answer it:

- ``SqliteStore`` (the default): one SQLite file in the data directory, so a restarted
  server still serves its runs, share links and checks; least recently used first out
  once the bodies pass ``store_max_bytes``.
- ``RedisStore`` (``CHAINLENS_REDIS_URL``): shared by every replica, so any of them
  serves any run; Redis bounds it (``maxmemory`` with ``allkeys-lru``) and each key
  carries the time to live.
- ``MemoryStore``: in the process, gone with it (``CHAINLENS_STORE=memory``).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import redis

from .errors import ServiceBusy


class RunStore(Protocol):
    def put(self, key: str, body: bytes) -> None: ...

    def get(self, key: str) -> bytes | None: ...


class StoreUnavailable(ServiceBusy):
    """The shared store did not answer (Redis down or unreachable): a 503, retried."""


class MemoryStore:
    """An LRU of bodies with a time to live, bounded in bytes."""

    def __init__(self, max_bytes: int, ttl_s: float) -> None:
        self.max_bytes = max_bytes
        self.ttl_s = ttl_s
        self.size = 0
        self._items: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def put(self, key: str, body: bytes) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self.size -= len(old[1])
        self._items[key] = (time.monotonic() + self.ttl_s, body)
        self.size += len(body)
        while self.size > self.max_bytes and len(self._items) > 1:
            _, (_, dropped) = self._items.popitem(last=False)
            self.size -= len(dropped)

    def get(self, key: str) -> bytes | None:
        hit = self._items.get(key)
        if hit is None:
            return None
        expires, body = hit
        if time.monotonic() > expires:
            del self._items[key]
            self.size -= len(body)
            return None
        self._items.move_to_end(key)
        return body


class SqliteStore:
    """Bodies in one SQLite file (write-ahead log): they outlive the process.

    Times are wall-clock (they must mean the same after a restart). A read marks the
    entry used at most once a minute, so that reading a popular run does not write on
    every request; eviction removes the least recently used until the bodies fit."""

    def __init__(self, path: Path, max_bytes: int, ttl_s: float, touch_s: float = 60.0) -> None:
        """``touch_s``: a read refreshes an entry's last use when it is older than this."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.ttl_s = ttl_s
        self.touch_s = touch_s
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS runs (key TEXT PRIMARY KEY, body BLOB NOT NULL, "
            "size INTEGER NOT NULL, expires REAL NOT NULL, used REAL NOT NULL)"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS runs_used ON runs (used)")
        with self._lock:
            self._db.execute("DELETE FROM runs WHERE expires < ?", (time.time(),))
            self.size = self._db.execute("SELECT COALESCE(SUM(size), 0) FROM runs").fetchone()[0]

    def put(self, key: str, body: bytes) -> None:
        now = time.time()
        with self._lock:
            old = self._db.execute("SELECT size FROM runs WHERE key = ?", (key,)).fetchone()
            self._db.execute(
                "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?)",
                (key, body, len(body), now + self.ttl_s, now),
            )
            self.size += len(body) - (old[0] if old else 0)
            if self.size > self.max_bytes:
                self._evict(now, keep=key)

    def _evict(self, now: float, keep: str) -> None:
        """The expired, then the least recently used, until the bodies fit."""
        self._db.execute("DELETE FROM runs WHERE expires < ?", (now,))
        self.size = self._db.execute("SELECT COALESCE(SUM(size), 0) FROM runs").fetchone()[0]
        while self.size > self.max_bytes:
            oldest = self._db.execute(
                "SELECT key, size FROM runs WHERE key != ? ORDER BY used LIMIT 64", (keep,)
            ).fetchall()
            if not oldest:
                return
            for key, size in oldest:
                self._db.execute("DELETE FROM runs WHERE key = ?", (key,))
                self.size -= size
                if self.size <= self.max_bytes:
                    return

    def get(self, key: str) -> bytes | None:
        now = time.time()
        with self._lock:
            row = self._db.execute(
                "SELECT body, expires, used, size FROM runs WHERE key = ?", (key,)
            ).fetchone()
            if row is None:
                return None
            body, expires, used, size = row
            if expires < now:
                self._db.execute("DELETE FROM runs WHERE key = ?", (key,))
                self.size -= size
                return None
            if now - used > self.touch_s:
                self._db.execute("UPDATE runs SET used = ? WHERE key = ?", (now, key))
            return body  # (a BLOB comes back as bytes)

    def close(self) -> None:
        with self._lock:
            self._db.close()


class RedisStore:
    """Bodies in Redis, shared by every replica. Redis itself bounds the memory
    (``maxmemory`` with ``allkeys-lru``: least recently used out first); each key
    expires after the time to live. Redis down is a 503 that says so, never a 500."""

    PREFIX = "chainlens:run:"

    def __init__(self, client: Any, ttl_s: float) -> None:
        """``client``: a ``redis.Redis`` (shared with the limits)."""
        self.redis = client
        self.ttl_ms = int(ttl_s * 1000)

    def put(self, key: str, body: bytes) -> None:
        with redis_calls():
            self.redis.set(self.PREFIX + key, body, px=self.ttl_ms)

    def get(self, key: str) -> bytes | None:
        with redis_calls():
            return self.redis.get(self.PREFIX + key)


@contextlib.contextmanager
def redis_calls() -> Iterator[None]:
    """Redis's connection and timeout errors, as the 503 a client can retry."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as e:
        raise StoreUnavailable(
            "the shared store (Redis) is not answering; retry in a few seconds"
        ) from e
