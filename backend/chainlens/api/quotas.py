"""How much one client may ask for: runs per minute, and runs at once.

``ClientLimiter`` counts in this process; ``RedisLimiter`` counts in Redis, so that the
limits hold across every replica behind a load balancer (the rate with the ``limits``
library's moving window, the runs at once with a counter per client).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict, deque
from typing import Any, Protocol

import redis

from ..errors import RateLimited, limit_text
from ..store import redis_calls

log = logging.getLogger("chainlens")


class Limiter(Protocol):
    def admit(self, client: str) -> None:
        """Count a request from ``client`` in, or raise RateLimited."""

    def release(self, client: str) -> None:
        """The request ``admit`` let in has finished."""


def _rate_limited(per_minute: int) -> RateLimited:
    return RateLimited(
        limit_text(
            "rate_limit_per_minute", per_minute, "reached for this client; retry in a few seconds"
        )
    )


def _too_many_at_once(concurrent: int) -> RateLimited:
    return RateLimited(
        limit_text("max_concurrent_per_client", concurrent, "reached: wait for a run to finish")
    )


class ClientLimiter:
    """Per-client request rate (sliding minute) and concurrent runs, in this process."""

    def __init__(self, per_minute: int, concurrent: int) -> None:
        self.per_minute = per_minute
        self.concurrent = concurrent
        self._times: dict[str, deque[float]] = defaultdict(deque)
        self._active: dict[str, int] = defaultdict(int)

    def admit(self, client: str) -> None:
        now = time.monotonic()
        times = self._times[client]
        while times and now - times[0] > 60.0:
            times.popleft()
        if len(times) >= self.per_minute:
            raise _rate_limited(self.per_minute)
        if self._active[client] >= self.concurrent:
            raise _too_many_at_once(self.concurrent)
        times.append(now)
        self._active[client] += 1

    def release(self, client: str) -> None:
        self._active[client] -= 1
        if self._active[client] <= 0:
            del self._active[client]
            if not self._times.get(client):
                self._times.pop(client, None)


class RedisLimiter:
    """The same limits, counted in Redis for every replica."""

    #: A replica that died mid-run leaves its count: the counter expires this long after
    #: the client's last request.
    ACTIVE_TTL_S = 300

    def __init__(self, client: redis.Redis, per_minute: int, concurrent: int) -> None:
        from limits import RateLimitItemPerMinute
        from limits.storage import RedisStorage
        from limits.strategies import MovingWindowRateLimiter

        self.redis = client
        self.per_minute = per_minute
        self.concurrent = concurrent
        self.rate = RateLimitItemPerMinute(per_minute)
        storage = RedisStorage(
            "redis://", connection_pool=client.connection_pool, key_prefix="chainlens:rate"
        )
        self.window = MovingWindowRateLimiter(storage)

    def _active(self, client: str) -> str:
        return f"chainlens:active:{client}"

    def admit(self, client: str) -> None:
        key = self._active(client)
        with redis_calls():
            pipe: Any = self.redis.pipeline()
            pipe.incr(key).expire(key, self.ACTIVE_TTL_S)
            active = pipe.execute()[0]
            if active > self.concurrent:
                self.redis.decr(key)
                raise _too_many_at_once(self.concurrent)
            if not self.window.hit(self.rate, client):
                self.redis.decr(key)
                raise _rate_limited(self.per_minute)

    def release(self, client: str) -> None:
        try:
            self.redis.decr(self._active(client))
        except (redis.ConnectionError, redis.TimeoutError):  # its counter expires instead
            log.warning("could not release a run of %s in Redis", client)
