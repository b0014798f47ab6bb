"""How many streams may be open at once: overall, and from one address. A stream holds a
connection for as long as its run (and its reader) take; without a cap, 520 idle
WebSocket handshakes from one address used up the server's connections, and health
checks and runs from everyone else were answered 503."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator

from ..errors import limit_text


class StreamBudget:
    """Open WebSocket streams, counted per client address."""

    def __init__(self, per_client: int, total: int) -> None:
        self.per_client = per_client
        self.total = total
        self._open: Counter[str] = Counter()

    @contextlib.contextmanager
    def hold(self, client: str) -> Iterator[str | None]:
        """One stream from ``client`` while the block runs; the block gets None, or (when
        a cap is reached) why the stream is refused, naming the limit and its value."""
        if self._open[client] >= self.per_client:
            yield (
                limit_text(
                    "ws_max_per_client",
                    self.per_client,
                    f"exceeded: this address has {self._open[client]} streams open",
                )
            )
            return
        if sum(self._open.values()) >= self.total:
            yield limit_text(
                "ws_max_open", self.total, "exceeded: the server has that many streams open"
            )
            return
        self._open[client] += 1
        try:
            yield None
        finally:
            self._open[client] -= 1
            if not self._open[client]:
                del self._open[client]
