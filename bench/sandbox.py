"""bench/sandbox.py: what isolation costs, and whether attacks slow down honest users.

    .venv/bin/python bench/sandbox.py [--requests N]

Prints:
  1. isolation overhead per run for the chain-rule example: in-process engine (baseline,
     same process) vs a server worker in `fork` mode (a fresh process per run) and in
     `pool` mode (recycled workers), measured as request latency minus the health floor;
  2. p50/p99 of the benign chain-rule run alone, and while two other clients loop CPU and
     memory bombs, in the default (fork) mode.
Targets (issue 5): isolation overhead <= 15 ms per run; benign p99 under attack <= 2x idle p99.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx
import orjson
import torch

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
from chainlens.engine import run_wire  # noqa: E402
from server import serve  # noqa: E402
from workloads import CHAIN  # noqa: E402

CPU_BOMB = "x = 0\nwhile True:\n    x = x + 1\n"
MEMORY_BOMB = ("import torch\nkeep = []\nfor i in range(1000):\n"
               "    keep.append(torch.ones(1000, 1000))\n")


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


def timed_posts(http: httpx.Client, source: str, n: int, pause: float = 0.0) -> list[float]:
    body = orjson.dumps({"source": source})
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = http.post("/api/v1/runs", content=body, headers={"content-type": "application/json"})
        out.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200
        if pause:
            time.sleep(pause)
    return out


def health_floor(http: httpx.Client, n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        http.get("/api/v1/health")
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def in_process(n: int) -> float:
    torch.set_num_threads(1)
    for _ in range(20):
        orjson.dumps(run_wire(CHAIN))
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        orjson.dumps(run_wire(CHAIN))
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()
    n = args.requests
    engine = in_process(n)
    print(f"in-process engine (chain rule): {engine:.2f} ms")
    for mode in ("fork", "pool"):
        with serve(isolation=mode, rate_limit_per_minute=10**9) as base:
            with httpx.Client(base_url=base, timeout=60) as http:
                timed_posts(http, CHAIN, 20, 0.05)
                floor = health_floor(http, n)
                lat = statistics.median(timed_posts(http, CHAIN, n, 0.05))
        print(f"{mode:5} worker: request p50 {lat:6.2f} ms, health floor {floor:.2f} ms -> "
              f"isolation overhead {lat - floor - engine:6.2f} ms per run")
    with serve(rate_limit_per_minute=10**9, wall_timeout_s=3, workers=2,
               max_concurrent_per_client=64) as base:
        with httpx.Client(base_url=base, timeout=60) as http:
            timed_posts(http, CHAIN, 20, 0.05)
            idle = timed_posts(http, CHAIN, n, 0.05)
            stop = threading.Event()

            def attacker(source: str) -> None:
                with httpx.Client(base_url=base, timeout=60) as h:
                    while not stop.is_set():
                        h.post("/api/v1/runs", content=orjson.dumps({"source": source}),
                               headers={"content-type": "application/json"})

            bombs = [threading.Thread(target=attacker, args=(s,)) for s in (CPU_BOMB, MEMORY_BOMB)]
            for b in bombs:
                b.start()
            time.sleep(1.0)
            attacked = timed_posts(http, CHAIN, n, 0.05)
            stop.set()
            for b in bombs:
                b.join()
    i99, a99 = pct(idle, 99), pct(attacked, 99)
    print(f"benign alone:        p50 {statistics.median(idle):7.2f} ms  p99 {i99:7.2f} ms")
    print(f"benign under attack: p50 {statistics.median(attacked):7.2f} ms  p99 {a99:7.2f} ms "
          f"({a99 / i99:.2f}x idle p99)")


if __name__ == "__main__":
    main()
