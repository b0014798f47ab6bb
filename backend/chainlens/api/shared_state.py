"""Where the server keeps what outlives a request: the run store (runs, their programs,
the run cache's index) and the per-client limits. In this process (the SQLite file or
memory, and counters) for one server; in Redis when ``redis_url`` is set, so that any
replica serves any run, check or numpy code, and a client's limits hold across them.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from ..settings import Settings, data_dir
from ..store import MemoryStore, RedisStore, RunStore, SqliteStore, redis_calls
from .quotas import ClientLimiter, Limiter, RedisLimiter

#: How long a replica waits on Redis before answering 503 (loopback answers in < 1 ms).
REDIS_TIMEOUT_S = 2.0


@dataclass
class SharedState:
    store: RunStore
    limiter: Limiter
    redis: redis.Redis | None = None

    def ready(self) -> str | None:
        """Why this server cannot serve now (its shared store not answering), or None."""
        if self.redis is None:
            return None
        try:
            with redis_calls():
                self.redis.ping()
        except Exception as e:  # noqa: BLE001 - the reason is the answer
            return str(e)
        return None


def shared_state_for(settings: Settings) -> SharedState:
    per_minute, concurrent = settings.rate_limit_per_minute, settings.max_concurrent_per_client
    if settings.redis_url:
        client = redis.Redis.from_url(
            settings.redis_url,
            socket_timeout=REDIS_TIMEOUT_S,
            socket_connect_timeout=REDIS_TIMEOUT_S,
            health_check_interval=10,
        )
        return SharedState(
            RedisStore(client, settings.store_ttl_s),
            RedisLimiter(client, per_minute, concurrent),
            client,
        )
    limiter = ClientLimiter(per_minute, concurrent)
    if settings.store == "memory":
        return SharedState(MemoryStore(settings.store_max_bytes, settings.store_ttl_s), limiter)
    path = data_dir(settings) / "runs.sqlite3"
    # (a directory it cannot use is said before the server starts: cli._unusable_data_dir)
    return SharedState(SqliteStore(path, settings.store_max_bytes, settings.store_ttl_s), limiter)
