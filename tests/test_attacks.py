"""Attacks on the service's capacity, over real sockets: no client can hold a worker past
its deadline, exhaust the connections others need, or step around a limit."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import time

import httpx
import pytest
from websockets.sync.client import connect

from server import children, serve, serve_process

#: Streams node events faster than a client that never reads can take them, then loops:
#: its worker blocks on its socket, off the CPU.
FLOOD_THEN_LOOP = "\n".join([
    "import torch",
    "x = torch.ones(64, requires_grad=True)",
    "for i in range(15000):",
    "    x = x * 1.0",
    "print('flooded')",
    "while True:",
    "    pass",
])
CHAIN = "import torch\nx = torch.ones(3, requires_grad=True)\nz = (3 * (x + 2) ** 2).mean()\nz.backward()\n"


def never_reading_stream(base: str, source: str, source_address: str = "127.0.0.1") -> socket.socket:
    """A WebSocket whose client sends its program and never reads: a small receive buffer,
    so the server's writes stop at once."""
    host, port = base.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.bind((source_address, 0))
    sock.connect((host, int(port)))
    # (websockets' own reader stops taking frames once 16 wait unread: then nothing reads)
    ws = connect(f"ws://{host}:{port}/api/v1/stream", sock=sock, open_timeout=10).__enter__()
    ws.send(json.dumps({"source": source}))
    KEPT.append(ws)
    return sock


#: Connections kept open, unread, until the test process ends.
KEPT: list[object] = []


def post(base: str, source: str) -> httpx.Response:
    return httpx.post(base + "/api/v1/runs", json={"source": source}, timeout=120)


def test_a_client_that_never_reads_holds_no_worker_past_its_deadline() -> None:
    """One worker (a normal slot and a long-run slot): two streams that never read take
    both. A run from someone else is answered once the first deadline has passed (3 s
    wall clock, +1 s), not when the readers give up."""
    wall = 3.0
    with serve(workers=1, wall_timeout_s=wall, ws_send_timeout_s=30, run_cache="false") as base:
        post(base, CHAIN)  # warm
        t0 = time.monotonic()
        held = [never_reading_stream(base, FLOOD_THEN_LOOP + f"\n# {i}") for i in range(2)]
        time.sleep(0.5)
        r = post(base, CHAIN)
        waited = time.monotonic() - t0
        assert r.status_code == 200 and r.json()["status"] == "ok", r.text
        assert waited <= wall + 1.0 + 1.0, waited  # deadline + 1 s, + the run and the start
        for s in held:
            s.close()


def test_a_stream_client_that_never_reads_is_disconnected() -> None:
    """Past ws_send_timeout_s without reading, the server drops the stream: the held
    socket sees its end (after the WebSocket's own closing handshake times out)."""
    with serve(workers=1, wall_timeout_s=2, ws_send_timeout_s=2, run_cache="false") as base:
        sock = never_reading_stream(base, FLOOD_THEN_LOOP)
        time.sleep(2 + 2 + 2)
        sock.setblocking(False)
        received = 0
        closed = False
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:  # read what the server sent before it gave up
            try:
                chunk = sock.recv(1 << 20)
            except BlockingIOError:
                time.sleep(0.05)
                continue
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            received += len(chunk)
        assert closed, f"still open after {received} bytes"
        sock.close()


@pytest.mark.parametrize("isolation", ["fork", "pool"])
def test_a_stopped_spare_is_replaced_within_a_second(isolation: str) -> None:
    """Every waiting worker SIGSTOPped (spares, and in pool mode the idle worker the pool
    keeps): the next run is answered in about a second, not after the 180 s start timeout."""
    with serve_process(isolation=isolation, run_cache="false") as (base, proc):
        assert post(base, CHAIN).json()["status"] == "ok"
        template = children(proc.pid)[0]
        stopped = children(template)
        assert stopped
        for pid in stopped:
            os.kill(pid, signal.SIGSTOP)
        t0 = time.monotonic()
        r = post(base, CHAIN + "# again\n")
        took = time.monotonic() - t0
        assert r.status_code == 200 and r.json()["status"] == "ok", r.text
        assert took < 1.0 + 2.0, took  # the grace, then a fresh spare's run
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
