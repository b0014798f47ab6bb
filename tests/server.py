"""Start a real ``chainlens serve`` on a free port, for tests that use sockets."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(python: str = sys.executable, cwd: str | None = None,
          **env_overrides: object) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, **{f"CHAINLENS_{k.upper()}": str(v) for k, v in env_overrides.items()}}
    proc = subprocess.Popen([python, "-m", "chainlens", "serve", "--port", str(port)], env=env,
                            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
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
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
