"""Attacks on the service's capacity, over real sockets: no client can hold a worker past
its deadline, exhaust the connections others need, or step around a limit."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import threading
import time

import httpx
import pytest
from websockets.sync.client import connect

from server import children, serve, serve_process

#: Streams node events faster than a client that never reads can take them, then loops:
#: its worker blocks on its socket, off the CPU.
FLOOD_THEN_LOOP = "\n".join(
    [
        "import torch",
        "x = torch.ones(64, requires_grad=True)",
        "for i in range(15000):",
        "    x = x * 1.0",
        "print('flooded')",
        "while True:",
        "    pass",
    ]
)
CHAIN = "import torch\nx = torch.ones(3, requires_grad=True)\nz = (3 * (x + 2) ** 2).mean()\nz.backward()\n"


def never_reading_stream(
    base: str, source: str, source_address: str = "127.0.0.1"
) -> socket.socket:
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
    """One worker slot, no long-run slot: a stream from 127.0.0.2 that never reads takes
    it. A run from 127.0.0.1 is answered once that run's deadline has passed (3 s wall
    clock, +1 s), not when the reader gives up (it never does)."""
    wall = 3.0
    with serve(
        workers=1,
        long_run_slots=0,
        wall_timeout_s=wall,
        ws_send_timeout_s=30,
        run_cache="false",
        max_loop_iterations=10**15,
        max_statements=10**15,
        cpu_limit_s=3600,
    ) as base:
        post(base, CHAIN)  # warm
        t0 = time.monotonic()
        held = [never_reading_stream(base, FLOOD_THEN_LOOP, "127.0.0.2")]
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


CM = "class CM:\n    def __enter__(self):\n        return self\n    def __exit__(self, *a):\n        return True\n"

#: Limits a program tried to step around: by swallowing the engine's error in a handler, a
#: ``finally`` or an ``__exit__``, or by work no counter priced. Each must end the run with
#: that limit's own error, and nothing after it may run ("ran on" is never printed).
STEPPED_AROUND: list[tuple[str, str]] = [
    (
        "import torch\nfor i in range(5):\n    try:\n        x = torch.ones(10**9)\n    finally:\n        raise ValueError('swallowed')\nprint('ran on')",
        "max_tensor_elements",
    ),
    (
        "def g(n):\n    return 0 if n == 0 else 1 + g(n - 1)\nfor i in range(10):\n    try:\n        g(300)\n    finally:\n        raise ValueError('x')\nprint('ran on', g(300))",
        "max_recursion_depth",
    ),
    (
        "def g(n):\n    return 0 if n == 0 else 1 + g(n - 1)\nfor i in range(10):\n    try:\n        g(300)\n    except Exception:\n        pass\nprint('ran on', g(45))",
        "max_recursion_depth",
    ),
    (
        "import torch\ntry:\n    x = torch.ones(10**9)\nexcept Exception:\n    print('ran on')",
        "max_tensor_elements",
    ),
    (
        "import torch\ntry:\n    x = torch.ones(10**9)\nexcept (Exception, ValueError) as e:\n    print('ran on', e)",
        "max_tensor_elements",
    ),
    (
        "import torch\ntry:\n    x = torch.ones(10**9)\nexcept:\n    print('ran on')",
        "max_tensor_elements",
    ),
    (
        "import torch\ntry:\n    x = torch.ones(10**9)\nexcept RuntimeError:\n    print('ran on')",
        "max_tensor_elements",
    ),
    (CM + "with CM():\n    l = [0] * (10**9)\nprint('ran on')", "max_sequence_length"),
    (
        "import torch\ndef f():\n    try:\n        return torch.ones(10**9)\n    finally:\n        return 1\nprint('ran on', f())",
        "max_tensor_elements",
    ),
    (
        "import torch\nfor i in range(3):\n    try:\n        x = torch.ones(10**9)\n    finally:\n        continue\nprint('ran on')",
        "max_tensor_elements",
    ),
    (
        "import torch\nfor i in range(3):\n    try:\n        x = torch.ones(10**9)\n    finally:\n        break\nprint('ran on')",
        "max_tensor_elements",
    ),
    (
        "while True:\n    try:\n        x = 1\n    except Exception:\n        pass\nprint('ran on')",
        "max_statements",
    ),
    ("try:\n    x = 10 ** 10 ** 10\nexcept Exception:\n    pass\nprint('ran on')", "max_int_bits"),
    (
        "try:\n    x = 'a' * 10 ** 9\nexcept Exception:\n    pass\nprint('ran on')",
        "max_sequence_length",
    ),
    (
        "import torch\ndef gen():\n    try:\n        yield torch.ones(10**9)\n    except Exception:\n        yield 1\nprint('ran on', list(gen()))",
        "max_tensor_elements",
    ),
    (
        "import torch\ntry:\n    try:\n        x = torch.ones(10**9)\n    finally:\n        raise KeyError('k')\nexcept KeyError:\n    print('ran on')",
        "max_tensor_elements",
    ),
    (
        "def g(n):\n    try:\n        return g(n + 1)\n    finally:\n        raise ValueError('v')\ntry:\n    g(0)\nexcept ValueError:\n    print('ran on')",
        "max_recursion_depth",
    ),
    (
        "import torch\nclass Safe:\n    def __enter__(self):\n        return self\n    def __exit__(self, kind, e, tb):\n        print('ran on')\n        return True\nwith Safe():\n    x = torch.ones(10**9)",
        "max_tensor_elements",
    ),
    ("x = 'a'.center(10**9)\nprint('ran on')", "max_sequence_length"),
    ("x = 'a'.ljust(10**9)\nprint('ran on')", "max_sequence_length"),
    ("x = 'a'.rjust(10**9)\nprint('ran on')", "max_sequence_length"),
    ("x = '7'.zfill(10**9)\nprint('ran on')", "max_sequence_length"),
    ("x = 'a'.center(10**9).upper()\nprint('ran on')", "max_sequence_length"),
    ("x = '%*d' % (1500000000, 1)\nprint('ran on')", "max_sequence_length"),
    ("x = '%.1000000000f' % 1.0\nprint('ran on')", "max_sequence_length"),
    ("x = '%-*s|' % (10**9, 'a')\nprint('ran on')", "max_sequence_length"),
    ("x = ('a' * 1000000).replace('a', 'bb' * 1000)\nprint('ran on')", "max_sequence_length"),
    ("x = ('a' * 100000).replace('', 'b' * 100)\nprint('ran on')", "max_sequence_length"),
    ("x = ','.join(['a' * 100000] * 10000)\nprint('ran on')", "max_sequence_length"),
    (
        "import numpy as np\nimport torch\nn = np.int64(10**5)\nx = torch.ones(n, n)\nprint('ran on')",
        "max_tensor_elements",
    ),
    (
        "import numpy as np\nimport torch\nx = torch.zeros((np.int64(4000), np.int32(4000)))\nprint('ran on')",
        "max_tensor_elements",
    ),
    (
        "import numpy as np\nimport torch\nx = torch.randn(np.int64(10**4), 2000)\nprint('ran on')",
        "max_tensor_elements",
    ),
    (
        "import torch\nimport torch.nn as nn\nl = nn.Linear(2000, 2000)\nx = torch.ones(2000, 2000)\nfor i in range(300):\n    y = l(x)\nprint('ran on')",
        "max_flops_per_op",
    ),
    (
        "import torch\nimport torch.nn as nn\nl = nn.Linear(1000, 1000)\nx = torch.ones(1000, 1000)\nfor i in range(300):\n    y = l(x)\nprint('ran on')",
        "max_flops",
    ),
    (
        "import torch\nimport torch.nn as nn\nl = nn.LSTM(500, 500)\ny = l(torch.ones(2000, 8, 500))\nprint('ran on')",
        "max_flops_per_op",
    ),
    (
        "import torch\nimport torch.nn as nn\nnet = nn.Sequential(nn.Linear(2000, 2000), nn.ReLU())\ny = net(torch.ones(2000, 2000))\nprint('ran on')",
        "max_flops_per_op",
    ),
    (
        "import torch\nimport torch.nn as nn\nc = nn.Conv2d(128, 128, 3)\ny = c(torch.ones(8, 128, 64, 64))\nprint('ran on')",
        "max_flops_per_op",
    ),
    (
        "import torch\nxs = [torch.ones(3000, 3000) for i in range(3)]\nfor i in range(100):\n    y = sum(xs)\nprint('ran on')",
        "max_flops",
    ),
    (
        "import torch\nxs = [torch.ones(3000, 3000) for i in range(3)]\ny = sum(xs, torch.zeros(3000, 3000))\nfor i in range(100):\n    y = sum([y, y, y])\nprint('ran on')",
        "max_flops",
    ),
]

#: Work a program asks for at once, priced before it is made: each ends with its limit.
PRICED: list[tuple[str, str]] = [
    ("x = list(range(10**9))", "max_sequence_length"),
    ("import itertools\nx = list(itertools.repeat(1, 10**8))", "max_loop_iterations"),
    ("from itertools import repeat\nx = list(repeat(1, 10**8))", "max_loop_iterations"),
    ("x = sorted(range(10**9))", "max_sequence_length"),
    ("import itertools\nx = list(itertools.product(range(1000), repeat=4))", "max_loop_iterations"),
    ("import math\nx = math.factorial(10**6)", "max_int_bits"),
    ("x = str(10 ** 4000)", "max_int_bits"),
    ("x = 'x'.join(map(str, range(10**7)))", "max_sequence_length"),
    ("import numpy as np\nx = np.outer(np.ones(10**5), np.ones(10**5))", "max_tensor_elements"),
    (
        "import torch\nx = torch.cartesian_prod(torch.arange(1000), torch.arange(1000), torch.arange(100))",
        "max_tensor_elements",
    ),
    (
        "import torch\nimport torch.nn.functional as F\nx = F.pad(torch.ones(1, 1), (0, 10**8))",
        "max_tensor_elements",
    ),
    (
        "import torch\nx = torch.kron(torch.ones(100, 100), torch.ones(100, 100))",
        "max_tensor_elements",
    ),
    ("import torch.nn as nn\ne = nn.Embedding(10**7, 100)", "max_layer_parameters"),
    ("x = {i: i for i in range(10**7)}", "max_loop_iterations"),
    ("x = 'ab' * 600000 + 'cd' * 600000", "max_sequence_length"),
    ("x = '{:>{w}}'.format(1, w=10**9)", "max_sequence_length"),
    ("x = f'{1:>{10**9}}'", "max_sequence_length"),
    ("x = list('a' * 900000) * 2", "max_sequence_length"),
    (
        "import torch\nx = torch.ones(3000, 3000)\ny = [x.clone() for i in range(10)]",
        "max_live_elements",
    ),
    ("import numpy as np\nx = np.ones(4000)[:, None] * np.ones(4000)", "max_tensor_elements"),
    ("import torch\nx = torch.ones(4000, 1) * torch.ones(4000)", "max_tensor_elements"),
    ("import torch\nx = torch.ones(5000).expand(5000, 5000).contiguous()", "max_tensor_elements"),
    ("import torch\nx = torch.ones(2, 2).repeat(3000, 3000)", "max_tensor_elements"),
    ("import torch\nx = torch.ones(10**6).repeat_interleave(100)", "max_tensor_elements"),
    (
        "import numpy as np\nx = np.ones(10**6)\ny = np.concatenate([x] * 100)",
        "max_tensor_elements",
    ),
    ("import torch\nx = torch.ones(10**6)\ny = torch.cat([x] * 100)", "max_tensor_elements"),
    ("import torch\nx = torch.zeros(10**4, 10**4, dtype=torch.bool)", "max_tensor_elements"),
    ("import torch\nx = torch.empty(10**9)", "max_tensor_elements"),
    ("import torch\nx = torch.full((10**5, 10**5), 1.0)", "max_tensor_elements"),
    ("import torch\nx = torch.arange(0, 10**9, 1)", "max_tensor_elements"),
    ("import torch\nx = torch.linspace(0, 1, 10**9)", "max_tensor_elements"),
    ("import numpy as np\nx = np.arange(10**9)", "max_tensor_elements"),
    ("import numpy as np\nx = np.linspace(0, 1, 10**9)", "max_tensor_elements"),
    ("import numpy as np\nx = np.eye(10**5)", "max_tensor_elements"),
    ("import torch\nx = torch.eye(10**5)", "max_tensor_elements"),
    (
        "import torch\nx = torch.ones(1000, 1000)\nfor i in range(10**4):\n    x = x @ x",
        "max_flops",
    ),
]

#: Calls whose result used to be priced below what they make (found by walking every
#: allow-list entry: tests/test_estimates_allowlist.py): refused before the work, "would".
PRICED_FIRST: list[tuple[str, str]] = [
    ("import numpy as np\nx = np.random.uniform(0, 1, 10**9)", "max_tensor_elements"),
    ("import numpy as np\nx = np.random.randint(0, 10, 10**9)", "max_tensor_elements"),
    ("import numpy as np\nx = np.random.normal(0, 1, 10**9)", "max_tensor_elements"),
    ("import numpy as np\nx = np.random.choice(10, 10**9)", "max_tensor_elements"),
    ("import numpy as np\nx = np.random.permutation(10**9)", "max_tensor_elements"),
    (
        "import numpy as np\nrng = np.random.default_rng(0)\nx = rng.random(10**9)",
        "max_tensor_elements",
    ),
    (
        "import numpy as np\nrng = np.random.default_rng(0)\nx = rng.integers(0, 9, size=(10**5, 10**5))",
        "max_tensor_elements",
    ),
    (
        "import numpy as np\nrng = np.random.default_rng(0)\nx = rng.standard_normal(10**9)",
        "max_tensor_elements",
    ),
    ("import numpy as np\nx = np.linspace(0, 1, num=10**9)", "max_tensor_elements"),
    ("import numpy as np\nx = np.eye(10, M=10**9)", "max_tensor_elements"),
    ("import numpy as np\nx = np.diag(np.ones(10), k=10**5)", "max_tensor_elements"),
    ("import torch\nx = torch.tensor([[0.0] * 10**5] * 10**5)", "max_tensor_elements"),
    ("import numpy as np\nx = np.array([[0.0] * 10**5] * 10**5)", "max_tensor_elements"),
    ("import torch\nx = torch.ones(1).new_tensor([[1.0] * 10**4] * 10**4)", "max_tensor_elements"),
    (
        "import torch\nimport torch.nn.functional as F\nx = F.bilinear(torch.ones(10**4, 10), torch.ones(10**4, 10), torch.ones(2000, 10, 10))",
        "max_tensor_elements",
    ),
    (
        "import torch\nimport torch.nn as nn\nnet = nn.Sequential(nn.Linear(10, 100000), nn.Linear(100000, 1))\ny = net(torch.ones(200, 10))",
        "max_tensor_elements",
    ),
    (
        "import torch\nimport torch.nn as nn\nnet = nn.Sequential(nn.Sequential(nn.Linear(10, 100000)), nn.ReLU())\ny = net(torch.ones(200, 10))",
        "max_tensor_elements",
    ),
    (
        "import torch\nimport torch.nn as nn\ncell = nn.GRUCell(10, 1000)\ny = cell(torch.ones(20000, 10))",
        "max_tensor_elements",
    ),
    ("import torch.nn as nn\nn_ = nn.LayerNorm(10**8)", "max_layer_parameters"),
    ("import torch.nn as nn\nn_ = nn.BatchNorm1d(10**8)", "max_layer_parameters"),
    ("import torch.nn as nn\nn_ = nn.PReLU(10**8)", "max_layer_parameters"),
    ("import torch.nn as nn\nn_ = nn.LSTM(1, 600, num_layers=3)", "max_layer_parameters"),
    ("x = f'{1.0:.1000000000f}'", "max_sequence_length"),
    ("x = '{:.{p}f}'.format(1.0, p=10**9)", "max_sequence_length"),
    ("x = '{0:>800000}{0:>800000}'.format(1)", "max_sequence_length"),
    (
        "import torch\ntorch.set_printoptions(profile='full')\nprint(torch.rand(10**6))",
        "max_sequence_length",
    ),
    (
        "import torch\ntorch.set_printoptions(threshold=10**9, precision=100)\ns = str(torch.rand(10**5))",
        "max_sequence_length",
    ),
    (
        "import torch\ntorch.set_printoptions(profile='full')\ns = f'{torch.rand(10**6)}'",
        "max_sequence_length",
    ),
    ("import torch\nx = torch.rand(10**6)\ns = str([x] * 100000)", "max_sequence_length"),
    ("x = round(5, -10**8)", "max_int_bits"),
    ("x = [*range(10**8)]", "max_sequence_length"),
    ("def f(*a):\n    return len(a)\nx = f(*range(10**8))", "max_sequence_length"),
]

#: Calls that would make a huge result and that the language does not offer at all.
NOT_OFFERED = [
    (
        "import numpy as np\nx = np.repeat(np.ones(10), 10**8)",
        "'numpy.repeat' is not available in chainlens",
    ),
    (
        "import numpy as np\nx = np.tile(np.ones(10), 10**8)",
        "'numpy.tile' is not available in chainlens",
    ),
    (
        "import numpy as np\nx = np.kron(np.ones((100, 100)), np.ones((100, 100)))",
        "'numpy.kron' is not available in chainlens",
    ),
    (
        "import torch\nx = torch.combinations(torch.arange(5000), 2)",
        "'torch.combinations' is not available in chainlens",
    ),
    (
        "import torch\nx = torch.ones(10**6).unfold(0, 1000, 1)",
        "'Tensor.unfold' is not available in chainlens",
    ),
]


@pytest.fixture(scope="module")
def stingy():
    """A server whose work limit a few seconds of arithmetic reach (2e9 operations)."""
    with serve(
        wall_timeout_s=15,
        max_flops=2e9,
        rate_limit_per_minute=10**6,
        max_concurrent_per_client=64,
        run_cache="false",
    ) as base:
        yield base


@pytest.mark.parametrize(
    "source,limit",
    STEPPED_AROUND + PRICED,
    ids=[f"{i}-{lim}" for i, (_, lim) in enumerate(STEPPED_AROUND + PRICED)],
)
def test_a_limit_cannot_be_stepped_around(stingy, source: str, limit: str) -> None:
    r = post(stingy, source)
    assert r.status_code == 200, r.text
    run = r.json()
    err = run["error"]
    assert err is not None and err["code"] == "limit_exceeded", err
    assert err["message"].startswith(f"limit {limit}="), err["message"]
    assert "ran on" not in run["stdout"], run["stdout"]


def test_an_idle_flood_leaves_health_and_runs_to_everyone_else() -> None:
    """520 WebSocket handshakes from 127.0.0.2 that send nothing: at most
    ws_max_per_client of them stay open (the rest are closed with 1013, the limit named);
    health and a run from 127.0.0.1 answer meanwhile; none of them logs a traceback."""
    from websockets.exceptions import ConnectionClosed

    with serve_process(ws_max_per_client=8, ws_idle_timeout_s=30, run_cache="false") as (
        base,
        proc,
    ):
        host, port = base.removeprefix("http://").split(":")
        opened, refused = [], []
        for _ in range(520):
            sock = socket.socket()
            sock.bind(("127.0.0.2", 0))
            sock.connect((host, int(port)))
            ws = connect(
                f"ws://{host}:{port}/api/v1/stream", sock=sock, open_timeout=10
            ).__enter__()
            try:
                ws.recv(timeout=0.05)
            except TimeoutError:
                opened.append(ws)  # still open, waiting for its program
            except ConnectionClosed as e:
                refused.append((e.rcvd.code, e.rcvd.reason))
                ws.close()
        assert len(opened) == 8 and len(refused) == 512, (len(opened), len(refused))
        assert set(refused) == {
            (1013, "limit ws_max_per_client=8 exceeded: this address has 8 streams open")
        }
        assert httpx.get(base + "/api/v1/health", timeout=5).status_code == 200
        assert post(base, CHAIN).json()["status"] == "ok"
        for ws in opened:
            ws.close()
        for _ in range(50):  # and clients that leave before their first message
            sock = socket.socket()
            sock.bind(("127.0.0.3", 0))
            sock.connect((host, int(port)))
            connect(
                f"ws://{host}:{port}/api/v1/stream", sock=sock, open_timeout=10
            ).__enter__().close()
            s2 = socket.create_connection((host, int(port)))
            s2.sendall(
                b"GET /api/v1/stream HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            s2.close()
        assert httpx.get(base + "/api/v1/health", timeout=5).status_code == 200
        proc.terminate()
        log = proc.communicate(timeout=20)[0].decode()
    assert "Traceback" not in log and "Exception in ASGI application" not in log, log[-3000:]


def raw_connections(base: str, address: str, count: int, first_bytes: bytes) -> list[socket.socket]:
    host, port = base.removeprefix("http://").split(":")
    out = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind((address, 0))
        sock.connect((host, int(port)))
        if first_bytes:
            sock.sendall(first_bytes)
        out.append(sock)
    return out


def answer(sock: socket.socket) -> bytes:
    """What the server wrote before closing (b"" for nothing); the socket is closed."""
    sock.settimeout(10)
    data = b""
    with contextlib.suppress(ConnectionError):
        while chunk := sock.recv(4096):
            data += chunk
    sock.close()
    return data


def test_a_raw_connection_flood_leaves_health_and_runs_to_everyone_else() -> None:
    """600 TCP connections from 127.0.0.2: half send nothing, half half a request's
    headers. Past http_max_per_client (64) each is answered 429 at once, the limit named;
    health and a run from 127.0.0.1 answer meanwhile; at http_header_timeout_s the
    half-headers are answered 408 (the limit named) and the silent ones closed without a
    word. A keep-alive client that pauses between requests is not cut off mid-request."""
    with serve(http_header_timeout_s=2, run_cache="false") as base:
        partial = b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n"
        silent = raw_connections(base, "127.0.0.2", 32, b"")
        begun = raw_connections(base, "127.0.0.2", 32, partial)
        over = raw_connections(base, "127.0.0.2", 268, b"") + raw_connections(
            base, "127.0.0.2", 268, partial
        )
        assert httpx.get(base + "/api/v1/health", timeout=5).status_code == 200
        assert post(base, CHAIN).json()["status"] == "ok"
        refusals = {answer(s) for s in over}
        assert len(refusals) == 1, refusals
        head, body = refusals.pop().split(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 429 ") and json.loads(body)["error"] == {
            "code": "rate_limited",
            "line": None,
            "col": None,
            "message": "limit http_max_per_client=64 exceeded: this address has 64 connections open",
        }
        assert {answer(s) for s in silent} == {b""}
        late = {answer(s) for s in begun}
        assert len(late) == 1, late
        head, body = late.pop().split(b"\r\n\r\n")
        assert (
            head.startswith(b"HTTP/1.1 408 ")
            and json.loads(body)["error"]["message"]
            == "limit http_header_timeout_s=2 exceeded: the request's headers did not arrive in time"
        )
        with httpx.Client(base_url=base, timeout=30) as client:
            for pause in (0.0, 1.0, 3.0):
                time.sleep(pause)
                assert client.post("/api/v1/runs", json={"source": CHAIN}).json()["status"] == "ok"


def test_a_trusted_proxy_is_not_capped_as_one_client() -> None:
    """Behind a proxy every connection comes from its address: a trusted proxy's are not
    held to http_max_per_client (its clients are told apart by X-Forwarded-For)."""
    with serve(http_max_per_client=4, forwarded_allow_ips="127.0.0.2", run_cache="false") as base:
        held = raw_connections(base, "127.0.0.2", 10, b"")
        with httpx.Client(
            base_url=base, transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=10
        ) as proxy:
            assert proxy.get("/api/v1/health").status_code == 200
        others = raw_connections(base, "127.0.0.3", 5, b"")
        assert answer(others[-1]).startswith(b"HTTP/1.1 429 ")
        for s in held + others[:-1]:
            s.close()


CPU_BOMB = "import torch\nx = torch.ones(600, 600)\nwhile True:\n    y = x @ x"
MEMORY_BOMB = "import torch\nkeep = []\nwhile True:\n    keep.append(torch.ones(10**6))"


def attack(base: str, address: str, source: str, stop: threading.Event, outcomes: list) -> None:
    """Submit ``source`` from ``address`` again and again until ``stop``."""
    with httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=120) as c:
        i = 0
        while not stop.is_set():
            r = c.post(base + "/api/v1/runs", json={"source": f"{source}\n# {i}"})
            outcomes.append(r.json()["error"]["code"] if r.status_code == 200 else r.status_code)
            i += 1


def test_four_attackers_on_four_addresses_do_not_starve_an_honest_user() -> None:
    """Two CPU bombs and two memory bombs, from 127.0.0.2–5, two requests in flight each,
    over and over; meanwhile every run from 127.0.0.1 is answered, each far sooner than an
    attacker's run may last (its wall clock, 8 s): no honest run waits behind a bomb."""
    wall = 8.0
    with serve(
        workers=2, wall_timeout_s=wall, run_cache="false", rate_limit_per_minute=10**6
    ) as base:
        post(base, CHAIN)
        stop = threading.Event()
        outcomes: list = []
        threads = [
            threading.Thread(target=attack, args=(base, f"127.0.0.{k}", bomb, stop, outcomes))
            for k, bomb in ((2, CPU_BOMB), (3, CPU_BOMB), (4, MEMORY_BOMB), (5, MEMORY_BOMB))
            for _ in range(2)
        ]
        for t in threads:
            t.start()
        time.sleep(2.0)  # the bombs are running
        waits = []
        for i in range(20):
            t0 = time.monotonic()
            r = post(base, CHAIN + f"# {i}\n")
            waits.append(time.monotonic() - t0)
            assert r.status_code == 200 and r.json()["status"] == "ok", r.text
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert max(waits) < wall / 4, waits
    assert outcomes and set(outcomes) <= {"timeout", "limit_exceeded"}, outcomes  # the bombs ran


def test_a_client_cannot_name_its_own_address_unless_a_proxy_is_trusted() -> None:
    """X-Forwarded-For from a client is ignored by default (its per-address budget is its
    own socket's); with CHAINLENS_FORWARDED_ALLOW_IPS naming the proxy, the header names
    the client."""

    def as_client(base: str, address: str, source: str) -> httpx.Response:
        return httpx.post(
            base + "/api/v1/runs",
            json={"source": source},
            headers={"X-Forwarded-For": address},
            timeout=60,
        )

    def spend_the_budget_then_ask_as_another(**settings: object) -> httpx.Response:
        """Two runs (the whole budget) naming one address, then one naming another."""
        with serve(rate_limit_per_minute=2, run_cache="false", **settings) as base:
            for i in range(2):
                assert as_client(base, "203.0.113.9", f"x = {i}").status_code == 200
            return as_client(base, "198.51.100.7", "x = 9")

    r = spend_the_budget_then_ask_as_another()
    assert r.status_code == 429 and "rate_limit_per_minute=2" in r.json()["error"]["message"]
    r = spend_the_budget_then_ask_as_another(forwarded_allow_ips="127.0.0.1")
    assert r.status_code == 200, r.text  # another client behind the trusted proxy


@pytest.mark.parametrize(
    "source,limit", PRICED_FIRST, ids=[f"{i}-{lim}" for i, (_, lim) in enumerate(PRICED_FIRST)]
)
def test_a_call_is_priced_before_it_makes_anything(stingy, source: str, limit: str) -> None:
    err = post(stingy, source).json()["error"]
    assert err is not None and err["code"] == "limit_exceeded", err
    assert err["message"].startswith(f"limit {limit}=") and " would " in err["message"], err


@pytest.mark.parametrize("source,message", NOT_OFFERED)
def test_a_call_not_offered_is_refused_before_it_runs(stingy, source: str, message: str) -> None:
    r = post(stingy, source)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == {**r.json()["error"], "code": "forbidden", "message": message}


def test_the_attack_suite_has_60_cases() -> None:
    """Issue 25's count: cases over real sockets, each with its exact outcome."""
    socket_cases = 8  # never-reader x2, stopped spare x2, idle and raw floods, four attackers,
    # a trusted proxy (+ the client address test)
    assert (
        len(STEPPED_AROUND) + len(PRICED) + len(PRICED_FIRST) + len(NOT_OFFERED) + socket_cases
        >= 60
    )
