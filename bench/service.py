"""bench/service.py: latency of POST /api/v1/runs for the chain-rule example, against the
framework's floor (GET /api/v1/health) measured in the same run, and the payload of an
RNN unrolled 500 steps as sent gzipped.

    .venv/bin/python bench/service.py [--requests N]

Two kinds of run request: the same request again and again ("repeated": after the first,
answered from the run cache, as a class clicking one example is), and a request never
seen before ("new": each with its own seed, so a worker process runs every one).

Targets (issue 3, this 2-core machine): p50 <= 25 ms and p99 <= 100 ms at 8 clients;
<= 200 bytes per node gzipped for the RNN-500 Run.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
from server import serve  # noqa: E402
from workloads import CHAIN, rnn  # noqa: E402


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


SEEDS = itertools.count(1)


def load(base: str, clients: int, total: int, method: str) -> tuple[list[float], float]:
    """``total`` requests from ``clients`` threads, each with its own keep-alive connection;
    ``method``: health, repeated or new."""
    latencies: list[float] = []
    lock = threading.Lock()
    per_client = total // clients

    def client() -> None:
        with httpx.Client(base_url=base, timeout=60) as http:
            for _ in range(per_client):
                seed = next(SEEDS) if method == "new" else 0
                body = orjson.dumps({"source": CHAIN, "seed": seed})
                t0 = time.perf_counter()
                if method == "health":
                    r = http.get("/api/v1/health")
                else:
                    r = http.post("/api/v1/runs", content=body,
                                  headers={"content-type": "application/json"})
                elapsed = time.perf_counter() - t0
                assert r.status_code == 200, r.text
                with lock:
                    latencies.append(elapsed * 1000)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    with serve(workers=2, rate_limit_per_minute=10**9, max_concurrent_per_client=64,
               queue_size=256) as base:
        load(base, 2, 40, "new")  # warm-up
        load(base, 2, 4, "repeated")
        print(f"{'':30} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}")
        for clients in (1, 8):
            n = args.requests if clients > 1 else args.requests // 2
            floor, _ = load(base, clients, n, "health")
            f50 = statistics.median(floor)
            print(f"{f'health, {clients} client(s)':30} {f50:8.2f} {percentile(floor, 99):8.2f}")
            for kind in ("repeated", "new"):
                runs, wall = load(base, clients, n, kind)
                r50 = statistics.median(runs)
                print(f"{f'runs {kind}, {clients} client(s)':30} {r50:8.2f} "
                      f"{percentile(runs, 99):8.2f} {len(runs) / wall:8.1f}   "
                      f"p50 = {r50 / f50:.1f}x the health floor", flush=True)
        with httpx.Client(base_url=base, timeout=120) as http:
            r = http.post("/api/v1/runs", content=orjson.dumps({"source": rnn()}),
                          headers={"content-type": "application/json",
                                   "accept-encoding": "gzip"})
            raw = r.content
            nodes = len(orjson.loads(raw)["nodes"])
            sent = len(gzip.compress(raw, 6))
            print(f"RNN-500 Run: {nodes} nodes, {len(raw):,} bytes raw, {sent:,} gzipped = "
                  f"{sent / nodes:.0f} bytes per node")


if __name__ == "__main__":
    main()
