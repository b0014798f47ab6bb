"""A run's stream events, sent a batch at a time.

Each event waits at most ``WAIT_S`` (or until ``MAX_EVENTS`` wait) so that the tensors
it carries are summarised together, in one batch: per-event summaries cost ~0.2 ms each,
a 10,000-node run 4 s. The worker sends each batch as one frame (``sandbox/worker.py``),
the server relays it (``api/routes/stream.py``, as one message with ``?batch=1``), and the
page reads it (``frontend/src/stream.ts``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .schema import Event

#: Where a batch goes: the worker's socket, or a caller of ``chainlens.run``.
Emit = Callable[[list[Event]], None]


class Outbox:
    WAIT_S = 0.03
    MAX_EVENTS = 512

    def __init__(self, emit: Emit | None, before_send: Callable[[], None]) -> None:
        """``emit`` None: nobody streams, nothing is sent. ``before_send`` finishes what
        the batch's events refer to (the summaries they are waiting for)."""
        self.emit = emit
        self.before_send = before_send
        self._events: list[Event] = []
        self._since = 0.0

    def send(self, event: Event) -> None:
        """Queues an event; they leave in order, a batch at a time."""
        if not self._events:
            self._since = time.perf_counter()
        self._events.append(event)
        if len(self._events) >= self.MAX_EVENTS or time.perf_counter() - self._since >= self.WAIT_S:
            self.flush()

    def flush_if_stale(self) -> None:
        """Between statements: events that waited their time leave (a slow program's
        stream keeps moving)."""
        if self._events and time.perf_counter() - self._since >= self.WAIT_S:
            self.flush()

    def flush(self) -> None:
        """Everything queued leaves now."""
        if not self._events or self.emit is None:
            return
        self.before_send()
        events, self._events = self._events, []
        self.emit(events)
