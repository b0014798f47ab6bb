"""How a run that loses its worker is told, and what no longer loses one.

Each cause of a lost worker reads its own honest message: a crash names its signal, a
failure names its exception, only the CPU limit says "limit". Causes a program could
reach are prevented before they happen (a graph too deep to free, text UTF-8 cannot
encode). And a checkout that only its owner can read still serves checks and numpy
code: a worker drops to user nobody, so it must need no file of the checkout after that.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest

from chainlens.examples.catalog import example
from chainlens.sandbox.pool import WorkerPool
from chainlens.settings import Settings
from chainlens.text import wire_text

from oracle import run_plain
from server import children, serve, serve_process

REPO = Path(__file__).resolve().parent.parent


def post(base: str, source: str, timeout: float = 60) -> httpx.Response:
    return httpx.post(
        base + "/api/v1/runs",
        content=json.dumps({"source": source}),
        headers={"content-type": "application/json"},
        timeout=timeout,
    )


def test_a_checkout_only_its_owner_can_read_serves_checks_and_numpy_code(monkeypatch) -> None:
    private = Path(tempfile.mkdtemp(prefix="chainlens-private-"))  # mode 0700
    try:
        assert private.stat().st_mode & 0o777 == 0o700
        package = private / "checkout" / "backend"
        shutil.copytree(
            REPO / "backend", package, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
        )
        monkeypatch.setenv("PYTHONPATH", str(package))
        where = subprocess.run(
            [sys.executable, "-c", "import chainlens; print(chainlens.__file__)"],
            capture_output=True,
            text=True,
            check=True,
            cwd=private,
        )
        assert where.stdout.startswith(str(package)), where.stdout
        source = example("two_layer_nn").source
        with serve(cwd=str(private)) as base:
            run = post(base, source).json()
            assert run["status"] == "ok", run["error"]
            weight = next(n["id"] for n in run["nodes"] if "model.2.weight" in n["names"])
            check = httpx.post(
                f"{base}/api/v1/runs/{run['id']}/check",
                json={"node": weight, "pass": 2, "elements": 2},
                timeout=120,
            )
            assert check.status_code == 200, check.text
            assert check.json()["ok"] and check.json()["checked"][0]["matches_run"] is True
            code = httpx.get(
                f"{base}/api/v1/runs/{run['id']}/manual.py", params={"pass": 2}, timeout=120
            )
            assert code.status_code == 200, code.text
            assert "backward pass 3" in code.text
    finally:
        shutil.rmtree(private, ignore_errors=True)


@pytest.fixture(scope="module")
def server():
    """Only the CPU limit stops an endless loop here."""
    with serve_process(
        cpu_limit_s=5, wall_timeout_s=30, max_loop_iterations=10**15, max_statements=10**15
    ) as (base, proc):
        yield base, proc


SLOW = "x = 0\nwhile True:\n    x = (x + 1) % 7\n"


def _kill_busy_worker(base: str, proc: subprocess.Popen, sig: int) -> httpx.Response:
    """Post an endless program, then send ``sig`` to every worker (the busy one too)."""
    (template,) = children(proc.pid)
    result: dict = {}
    t = threading.Thread(target=lambda: result.update(r=post(base, SLOW)))
    t.start()
    time.sleep(0.8)
    killed = children(template)
    for pid in killed:
        os.kill(pid, sig)
    t.join()
    # the next run must not be handed a spare that is still dying
    deadline = time.monotonic() + 30
    while any(os.path.exists(f"/proc/{pid}") for pid in killed) and time.monotonic() < deadline:
        time.sleep(0.05)
    return result["r"]


@pytest.mark.parametrize(
    "sig,words",
    [
        (signal.SIGSEGV, "crashed with a segmentation fault (SIGSEGV)"),
        (signal.SIGABRT, "crashed with an abort (SIGABRT)"),
        (signal.SIGKILL, "killed (SIGKILL) from outside chainlens"),
    ],
)
def test_a_worker_lost_to_a_signal_says_which(server, sig: int, words: str) -> None:
    base, proc = server
    r = _kill_busy_worker(base, proc, sig)
    assert r.status_code == 200
    err = r.json()["error"]
    assert err["code"] == "worker_lost" and words in err["message"], err
    after = post(base, "print(1)").json()
    assert after["stdout"] == "1\n", after


def test_the_cpu_limit_is_named_as_the_limit(server) -> None:
    base, _ = server
    err = post(base, SLOW).json()["error"]
    assert err["code"] == "limit_exceeded", err
    assert err["message"].startswith("limit cpu_limit_s=5 exceeded"), err


def test_a_worker_that_fails_says_with_what() -> None:
    """A job the worker cannot handle (here, one without its seed, which only a broken
    server could send) ends the worker with its exception, which the answer names."""

    async def go() -> list[tuple[bytes, bytes]]:
        pool = WorkerPool(Settings())
        pool.start()
        try:
            return [
                f
                async for f in pool.execute(
                    {"id": "x", "source": "print(1)", "device": "cpu", "stream": False}
                )
            ]
        finally:
            pool.stop()

    frames = asyncio.run(go())
    kind, payload = frames[-1]
    assert kind == b"L"
    lost = json.loads(payload)
    assert lost == {"code": "worker_lost", "message": "the worker process failed: KeyError: 'seed'"}


def test_freeing_a_million_node_graph_is_stopped_before_it_is_built(server) -> None:
    base, _ = server
    source = "import torch\nx = torch.ones(1, requires_grad=True)\ny = sum([x] * 1000000)\n"
    err = post(base, source).json()["error"]
    assert err["code"] == "limit_exceeded", err
    assert err["message"].startswith("limit max_nodes=20000 exceeded"), err


@pytest.mark.parametrize(
    "source",
    [
        "x = []\nfor i in range(200000):\n    x = [x]\nprint(len(x))\n",
        "x = []\ny = []\nfor i in range(200000):\n    x = [x]\n    y = [y]\nz = x == y\n",
        "x = {}\nfor i in range(200000):\n    x = {'a': x}\ny = str(x)\n",
    ],
)
def test_deeply_nested_structures_never_lose_the_worker(server, source: str) -> None:
    base, _ = server
    run = post(base, source).json()
    assert run["status"] == "ok" or run["error"]["code"] == "limit_exceeded", run["error"]


@pytest.mark.parametrize(
    "source",
    [
        "print('a\\ud800b', '\\udcff')\n",
        "raise ValueError('bad \\ud800 text')\n",
        "import torch\nx = torch.ones(2, requires_grad=True)\nassert False, 'no \\udfff'\n",
    ],
)
def test_text_utf8_cannot_encode_is_escaped(server, source: str) -> None:
    base, _ = server
    run = post(base, source).json()
    plain = run_plain(source)
    assert run["stdout"] == wire_text(plain.stdout)
    if plain.error is None:
        assert run["status"] == "ok"
    else:
        etype, message, line = plain.error
        assert run["error"]["code"] == "runtime_error"
        assert (run["error"]["type"], run["error"]["message"], run["error"]["line"]) == (
            etype,
            wire_text(message),
            line,
        )
