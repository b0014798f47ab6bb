"""The stream: ``WS /api/v1/stream``, a run's events as the engine makes them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping

import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from ...errors import ChainlensError, ProgramRejected, RequestTooLarge, limit_text
from ...settings import Settings
from ..connections import StreamBudget
from ..requests import SchemaError, parse_run_request
from ..responses import client_address

#: The stream's query: ``batch`` a yes or no, ``done`` what it carries (the whole Run, the
#: contract's; or the Run less what the stream carried).
_YES, _NO = frozenset({"1", "true", "on", "yes"}), frozenset({"0", "false", "off", "no"})
DONE_AS = ("run", "delta")


def _options(query: Mapping[str, str]) -> tuple[bool, bool]:
    """(batch, delta) from the stream's query, or why not: a query the framework refused
    closed the handshake with a bare 403, which says nothing of what was wrong."""
    batch = query.get("batch", "0").lower()
    done = query.get("done", "run")
    if batch not in _YES | _NO:
        raise ChainlensError(
            f"batch: must be 1 or 0 (true or false), not {batch[:40]!r}", code="invalid_request"
        )
    if done not in DONE_AS:
        raise ChainlensError(
            f"done: must be 'run' or 'delta', not {done[:40]!r}", code="invalid_request"
        )
    return batch in _YES, done == "delta"


def router(settings: Settings, streams: StreamBudget) -> APIRouter:
    routes = APIRouter()

    @routes.websocket("/api/v1/stream")
    async def stream(ws: WebSocket) -> None:
        """One message per event; with ``?batch=1``, events that are ready together come
        as one ``{"type": "batch", "events": [...]}`` message (the page uses this: a
        10,000-node run is 20,000 events); with ``?done=delta``, ``done`` carries the Run
        less what the events carried (``chainlens.delta``; the page uses this too). At
        most ws_max_per_client streams from one address and ws_max_open overall: past
        them a stream is closed at once with 1013 and the limit named; its program must
        come within ws_idle_timeout_s (else 1008)."""
        with streams.hold(client_address(ws.client)) as refused:
            try:
                await ws.accept()
                if refused:
                    await _close(ws, 1013, refused)
                    return
                try:
                    batch, delta = _options(ws.query_params)
                except ChainlensError as e:
                    await ws.send_text(
                        orjson.dumps({"type": "error", "error": e.to_dict()}).decode()
                    )
                    await _close(ws, 1008, e.message)
                    return
                await _serve(ws, batch, delta, settings)
            except (WebSocketDisconnect, OSError):  # the client left early: nothing to report
                return

    return routes


async def _serve(ws: WebSocket, batch: bool, delta: bool, settings: Settings) -> None:
    try:
        message = await asyncio.wait_for(ws.receive(), settings.ws_idle_timeout_s)
    except TimeoutError:
        await _close(
            ws,
            1008,
            limit_text(
                "ws_idle_timeout_s", settings.ws_idle_timeout_s, "exceeded: no program was sent"
            ),
        )
        return
    if message.get("type") == "websocket.disconnect":
        return
    raw = message.get("text") or message.get("bytes") or b""
    try:
        if len(raw) > settings.ws_max_message_bytes:
            raise RequestTooLarge(
                limit_text(
                    "ws_max_message_bytes",
                    settings.ws_max_message_bytes,
                    "exceeded by the first message",
                )
            )
        req = parse_run_request(raw)

        async def send(text: str) -> None:
            await asyncio.wait_for(ws.send_text(text), settings.ws_send_timeout_s)

        async for events in ws.app.state.service.stream(req, client_address(ws.client), delta):
            if batch:
                await send((b'{"type":"batch","events":[' + b",".join(events) + b"]}").decode())
            else:
                for event in events:
                    await send(event.decode())
    except TimeoutError:  # a client that does not read: the stream is dropped, not its deadline
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                _close(
                    ws,
                    1008,
                    "the client did not read the stream for "
                    f"ws_send_timeout_s={settings.ws_send_timeout_s} s",
                ),
                1,
            )
        return
    except ChainlensError as e:
        body = e.body() if isinstance(e, ProgramRejected) else {"error": e.to_dict()}
        await ws.send_text(orjson.dumps({"type": "error", **body}).decode())
    except SchemaError as e:
        await ws.send_text(
            orjson.dumps(
                {
                    "type": "error",
                    "error": ChainlensError(
                        "; ".join(
                            f"{'.'.join(map(str, err['loc'][1:]))}: {err['msg']}"
                            for err in e.errors
                        ),
                        code="invalid_request",
                    ).to_dict(),
                }
            ).decode()
        )
    await _close(ws, 1000)


async def _close(ws: WebSocket, code: int, reason: str | None = None) -> None:
    try:
        await ws.close(code, reason)
    except RuntimeError:
        pass
