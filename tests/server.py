"""Start a real ``chainlens serve`` on a free port, for tests that use sockets."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(
    python: str = sys.executable, cwd: str | None = None, **env_overrides: object
) -> Iterator[str]:
    with serve_process(python, cwd, **env_overrides) as (base, _):
        yield base


def healthy(base: str) -> Callable[[], bool]:
    """Whether a chainlens server (or a proxy before one) at ``base`` answers its health
    check now: what ``running`` waits for."""

    def answers() -> bool:
        try:
            return httpx.get(base + "/api/v1/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    return answers


@contextlib.contextmanager
def serve_process(
    python: str = sys.executable, cwd: str | None = None, **env_overrides: object
) -> Iterator[tuple[str, subprocess.Popen]]:
    """The server's URL and its process (for tests that look at its children)."""
    port = free_port()
    # (its own data directory: the runs a test server keeps are that test's alone)
    data = tempfile.TemporaryDirectory(prefix="chainlens-data-")
    env_overrides.setdefault("data_dir", data.name)
    env = {**os.environ, **{f"CHAINLENS_{k.upper()}": str(v) for k, v in env_overrides.items()}}
    base = f"http://127.0.0.1:{port}"
    try:
        with running(
            [python, "-m", "chainlens", "serve", "--port", str(port)],
            healthy(base),
            "server",
            60,
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        ) as proc:
            yield base, proc
    finally:
        data.cleanup()


@contextlib.contextmanager
def running(
    command: list[str], ready: Callable[[], bool], what: str, timeout_s: float, **popen: Any
) -> Iterator[subprocess.Popen]:
    """A process started, waited for until ``ready()``, and stopped on the way out."""
    proc = subprocess.Popen(command, **popen)
    try:
        deadline = time.monotonic() + timeout_s
        while not ready():
            if proc.poll() is not None:
                out = proc.stdout.read().decode() if proc.stdout else ""
                raise RuntimeError(f"{what} exited: {out}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start")
            time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def children(pid: int) -> list[int]:
    """Direct children of a process, from /proc."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry))
    return out


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


REDIS = "/usr/bin/redis-server"


@contextlib.contextmanager
def redis_server(port: int | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    """A real Redis (Debian's ``redis-server``, installed by ``.ci/run`` as the README
    says) on a loopback port, bounded as a deployment is (``maxmemory``, LRU), keeping
    nothing on disk; its URL and its process."""
    import redis

    if not os.access(REDIS, os.X_OK):
        raise RuntimeError(
            f"{REDIS} is missing: install Debian's redis-server "
            "(`apt-get install -y redis-server`, as .ci/run does; see README)"
        )
    port = port or free_port()
    url = f"redis://127.0.0.1:{port}/0"

    def answers() -> bool:
        try:
            return bool(redis.Redis.from_url(url, socket_timeout=1).ping())
        except redis.ConnectionError:
            return False

    command = [REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
    command += ["no", "--maxmemory", "256mb", "--maxmemory-policy", "allkeys-lru"]
    with running(
        command, answers, "redis-server", 20, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    ) as proc:
        yield url, proc
