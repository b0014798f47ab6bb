"""Who may run now: a fair share of the workers per client address.

A run starts in a *normal* slot. Past ``long_run_after_s`` it moves to a *long* slot (its
worker drops to SCHED_IDLE), leaving the normal slot to short runs, as long as a long slot is
free and its address holds fewer than ``long_per_client`` of them. One normal slot is
kept for addresses with no run in progress: four attackers on four addresses, each with
a bomb running, cannot take the slot an honest newcomer's 30 ms run needs (measured
before: a benign run's p99 went from 29 ms to 20 s under two CPU and two memory bombs).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable


class Slots:
    def __init__(self, normal: int, long: int, long_per_client: int) -> None:
        self.normal_free = normal
        self.long_free = long
        self.long_per_client = long_per_client
        #: Runs in progress (in either kind of slot) and long slots held, per address.
        self.running: Counter[str] = Counter()
        self.long_held: Counter[str] = Counter()
        self._waiting: list[tuple[str, asyncio.Future[None]]] = []
        #: Called when someone has to wait: the pool moves a run out of a normal slot now.
        self.on_wait: Callable[[], None] | None = None

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def _may_start(self, client: str) -> bool:
        """A normal slot is free, and it is not the last one, kept for an address with no
        run in progress."""
        return self.normal_free > 1 or (self.normal_free == 1 and self.running[client] == 0)

    async def acquire(self, client: str) -> None:
        """Waits for a normal slot, first come first served among those who may take it (a
        waiter is only ever one who may not take the free slots: the others were woken)."""
        if self._may_start(client):
            self._start(client)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((client, future))
        if self.on_wait is not None:
            self.on_wait()
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():  # granted as it was cancelled
                self.release(client, promoted=False)
            else:
                self._waiting.remove((client, future))
            raise

    def _start(self, client: str) -> None:
        self.normal_free -= 1
        self.running[client] += 1

    def promote(self, client: str) -> bool:
        """A run that has gone on long moves to a long slot, when one is free and its address
        has not used its share; its normal slot goes to whoever waits."""
        if self.long_free == 0 or self.long_held[client] >= self.long_per_client:
            return False
        self.long_free -= 1
        self.long_held[client] += 1
        self.normal_free += 1
        self._wake()
        return True

    def release(self, client: str, promoted: bool) -> None:
        if promoted:
            self.long_free += 1
            self.long_held[client] -= 1
            if not self.long_held[client]:
                del self.long_held[client]
        else:
            self.normal_free += 1
        self.running[client] -= 1
        if not self.running[client]:
            del self.running[client]
        self._wake()

    def _wake(self) -> None:
        for entry in list(self._waiting):
            client, future = entry
            if future.done():
                continue
            if self._may_start(client):
                self._waiting.remove(entry)
                self._start(client)
                future.set_result(None)
