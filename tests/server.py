"""Start a real ``chainlens serve`` on a free port, for tests that use sockets."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

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
    proc = subprocess.Popen(
        [python, "-m", "chainlens", "serve", "--port", str(port)],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {proc.stdout.read().decode()}")
            try:
                if httpx.get(base + "/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.2)
        yield base, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        data.cleanup()


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
    proc = subprocess.Popen(
        [
            REDIS,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--maxmemory",
            "256mb",
            "--maxmemory-policy",
            "allkeys-lru",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if redis.Redis.from_url(url, socket_timeout=1).ping():
                    break
            except redis.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
