"""Finished runs, kept for ``GET /api/v1/runs/{id}``: bounded in count and in time.

Routes speak only ``RunStore``; a shared store (Redis) can replace ``MemoryStore``
by implementing the same two methods.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Protocol


class RunStore(Protocol):
    def put(self, run_id: str, body: bytes) -> None: ...

    def get(self, run_id: str) -> bytes | None: ...


class MemoryStore:
    """An LRU of Run JSON bodies with a time-to-live."""

    def __init__(self, max_items: int, ttl_s: float) -> None:
        self.max_items = max_items
        self.ttl_s = ttl_s
        self._items: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def put(self, run_id: str, body: bytes) -> None:
        self._items[run_id] = (time.monotonic() + self.ttl_s, body)
        self._items.move_to_end(run_id)
        while len(self._items) > self.max_items:
            self._items.popitem(last=False)

    def get(self, run_id: str) -> bytes | None:
        hit = self._items.get(run_id)
        if hit is None:
            return None
        expires, body = hit
        if time.monotonic() > expires:
            del self._items[run_id]
            return None
        return body
