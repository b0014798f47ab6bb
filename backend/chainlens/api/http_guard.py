"""Budgets on HTTP connections before they are requests: uvicorn's HTTP/1.1 protocol,
with a cap on the connections one address holds open and a deadline on each request's
headers.

uvicorn counts every open connection against ``limit_concurrency`` (512) from the moment
it is accepted, and sets no deadline on a connection that has not sent a whole request:
600 raw connections from one address that sent nothing, or half a header, held all 512
for as long as they liked, and ``/api/v1/health`` answered 503 to everyone else. Past
``http_max_per_client`` connections an address's next one is answered 429; a request
begun and not through its headers within ``http_header_timeout_s`` is answered 408 (both
name the limit and its value, as every refusal does); a connection that sent nothing in
that time is closed without a word, as an idle keep-alive one is.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections import Counter
from typing import Any

import orjson
from uvicorn.protocols.http.h11_impl import H11Protocol

from ..errors import ChainlensError, limit_text
from ..settings import Settings


def _canned(status: str, code: str, message: str) -> bytes:
    """A whole HTTP response written before any request was read, then the connection closes."""
    body = orjson.dumps({"error": ChainlensError(message, code=code).to_dict()})
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode() + body


def _trusted(address: str, proxies: str) -> bool:
    """A trusted proxy (``forwarded_allow_ips``): every client behind it shares its address."""
    if not proxies:
        return False
    for entry in proxies.split(","):
        entry = entry.strip()
        if entry == "*":
            return True
        try:
            if ipaddress.ip_address(address) in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def guarded_protocol(settings: Settings) -> type[H11Protocol]:
    """uvicorn's HTTP/1.1 protocol class for this server, with its connection budgets."""
    per_client = settings.http_max_per_client
    timeout = settings.http_header_timeout_s
    open_from: Counter[str] = Counter()

    class GuardedProtocol(H11Protocol):
        _address: str | None = None  # counted against its address while set
        _header_timer: asyncio.TimerHandle | None = None
        _cycle_before: Any = None
        _begun = False  # bytes of the next request have arrived

        # (uvicorn's own signature narrows asyncio.Protocol's BaseTransport, as this does)
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            address = self.client[0] if self.client else ""
            if not _trusted(address, settings.forwarded_allow_ips):
                if open_from[address] >= per_client:
                    self._refuse(
                        "429 Too Many Requests",
                        "rate_limited",
                        limit_text(
                            "http_max_per_client",
                            per_client,
                            f"exceeded: this address has {open_from[address]} connections open",
                        ),
                    )
                    return
                open_from[address] += 1
                self._address = address
            self._await_headers()

        def _refuse(self, status: str, code: str, message: str) -> None:
            self.transport.write(_canned(status, code, message))
            self.transport.close()

        def _await_headers(self) -> None:
            """The next request's headers are due within the timeout (unless a pipelined
            one is already in flight: its response completing starts the clock again)."""
            self._cycle_before = self.cycle
            self._begun = False
            self._stop_timer()
            if self.cycle is None or self.cycle.response_complete:
                self._header_timer = self.loop.call_later(timeout, self._headers_late)

        def _stop_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_late(self) -> None:
            self._header_timer = None
            if not self._begun:
                self.transport.close()
            elif not self.transport.is_closing():
                self._refuse(
                    "408 Request Timeout",
                    "request_timeout",
                    limit_text(
                        "http_header_timeout_s",
                        f"{timeout:g}",
                        "exceeded: the request's headers did not arrive in time",
                    ),
                )

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.cycle is not self._cycle_before:  # a request's headers were read
                self._stop_timer()
            else:
                self._begun = True

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._await_headers()

        def handle_websocket_upgrade(self, event: Any) -> None:
            """The stream's own budget (``StreamBudget``) takes over the connection."""
            self._stop_timer()
            self._release()
            super().handle_websocket_upgrade(event)

        def _release(self) -> None:
            if self._address is not None:
                open_from[self._address] -= 1
                if not open_from[self._address]:
                    del open_from[self._address]
                self._address = None

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_timer()
            self._release()
            super().connection_lost(exc)

    return GuardedProtocol
