"""bench/service.py: latency of POST /api/v1/runs for the chain-rule example, against the
framework's floor (GET /api/v1/health) measured in the same run, and the payload of an
RNN unrolled 500 steps as sent gzipped.

    .venv/bin/python bench/service.py [--requests N]
    .venv/bin/python bench/service.py --classroom [--students 300] [--minutes 2]

(the second: a class of students against two replicas, Redis and nginx; bench/classroom.py)

Two kinds of run request: the same request again and again ("repeated": after the first,
answered from the run cache, as a class clicking one example is), and a request never
seen before ("new": each with its own seed, so a worker process runs every one), the
latter also with ``isolation=pool`` (a worker serves several runs instead of one forked
per run). Each client is its own process, as independent users' browsers or scripts are:
client threads in one process would wait on each other's GIL, and that wait (11 ms p50 of
the health floor at 8 clients here) would be counted as the server's latency.

Targets (issue 3, this 2-core machine): p50 <= 25 ms and p99 <= 100 ms at 8 clients;
<= 200 bytes per node gzipped for the RNN-500 Run. Last, the message that ends the RNN-500's
stream, with the whole Run in it and as the page asks for it (``?done=delta``).
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import multiprocessing
import statistics
import sys
import time
from pathlib import Path
from typing import Any

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


def _client(
    base: str, requests: int, method: str, seeds: list[int], start: Any, results: Any
) -> None:
    """One client: its own process (as 8 users' scripts or browsers are: client threads
    sharing one GIL would time each other), its own keep-alive connection."""
    latencies = []
    with httpx.Client(base_url=base, timeout=60) as http:
        http.get("/api/v1/health")  # connected before the clock starts
        start.wait()
        for i in range(requests):
            body = orjson.dumps({"source": CHAIN, "seed": seeds[i] if seeds else 0})
            t0 = time.perf_counter()
            if method == "health":
                r = http.get("/api/v1/health")
            else:
                r = http.post(
                    "/api/v1/runs", content=body, headers={"content-type": "application/json"}
                )
            elapsed = time.perf_counter() - t0
            assert r.status_code == 200, r.text
            latencies.append(elapsed * 1000)
    results.put(latencies)


def load(base: str, clients: int, total: int, method: str) -> tuple[list[float], float]:
    """``total`` requests from ``clients`` client processes; ``method``: health, repeated
    (seed 0 every time) or new (a seed never sent before). The wall time runs from the
    moment every client is connected to the last answer."""
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Event(), ctx.Queue()
    per_client = total // clients
    procs = [
        ctx.Process(
            target=_client,
            args=(
                base,
                per_client,
                method,
                [next(SEEDS) for _ in range(per_client)] if method == "new" else [],
                start,
                results,
            ),
        )
        for _ in range(clients)
    ]
    for p in procs:
        p.start()
    time.sleep(1.0)  # every client imported and connected (they wait on ``start``)
    t0 = time.perf_counter()
    start.set()
    latencies = [x for _ in procs for x in results.get()]
    wall = time.perf_counter() - t0
    for p in procs:
        p.join()
    return latencies, wall


SERVER = {
    "workers": 2,
    "rate_limit_per_minute": 10**9,
    "max_concurrent_per_client": 64,
    "queue_size": 256,
}


def row(name: str, runs: list[float], wall: float, floor: float | None) -> None:
    r50 = statistics.median(runs)
    ratio = f"   p50 = {r50 / floor:.1f}x the health floor" if floor else ""
    print(
        f"{name:34} {r50:8.2f} {percentile(runs, 99):8.2f} {len(runs) / wall:8.1f}{ratio}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--classroom", action="store_true", help="see bench/classroom.py")
    parser.add_argument("--students", type=int, default=300)
    parser.add_argument("--minutes", type=float, default=2.0)
    args = parser.parse_args()
    if args.classroom:
        from classroom import main as classroom

        classroom(args.students, args.minutes)
        return
    counts = {1: args.requests // 2, 8: args.requests}
    print(f"{'':34} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}")
    with serve(**SERVER) as base:
        load(base, 2, 40, "new")  # warm-up
        load(base, 2, 4, "repeated")
        for clients, n in counts.items():
            floor, wall = load(base, clients, n, "health")
            row(f"health, {clients} client(s)", floor, wall, None)
            for kind in ("repeated", "new"):
                row(
                    f"runs {kind}, {clients} client(s)",
                    *load(base, clients, n, kind),
                    statistics.median(floor),
                )
        with httpx.Client(base_url=base, timeout=120) as http:
            r = http.post(
                "/api/v1/runs",
                content=orjson.dumps({"source": rnn()}),
                headers={"content-type": "application/json", "accept-encoding": "gzip"},
            )
            raw = r.content
            nodes = len(orjson.loads(raw)["nodes"])
            sent = len(gzip.compress(raw, 6))
            compact = http.get(f"/api/v1/runs/{orjson.loads(raw)['id']}?format=compact").content
        done_delta = last_message(base, rnn(), "&done=delta")
        done_whole = last_message(base, rnn(), "")
    with serve(**SERVER, isolation="pool") as base:
        load(base, 2, 40, "new")
        for clients, n in counts.items():
            row(f"runs new, {clients} client(s), pool", *load(base, clients, n, "new"), None)
    print(
        f"RNN-500 Run: {nodes} nodes, {len(raw):,} bytes raw, {sent:,} gzipped = "
        f"{sent / nodes:.0f} bytes per node; compact: {len(compact):,} bytes "
        f"({len(compact) / len(raw):.2f} of the JSON), {len(gzip.compress(compact, 6)):,} gzipped"
    )
    print(
        f"RNN-500 streamed: the done message {done_whole:,} bytes, {done_delta:,} as a delta "
        f"({done_delta / done_whole:.2f} of it)"
    )


def last_message(base: str, source: str, query: str) -> int:
    """The size of the message that ends a streamed run (``done``), as the page asks."""
    from websockets.sync.client import connect

    url = base.replace("http", "ws") + "/api/v1/stream?batch=1" + query
    with connect(url, max_size=None) as ws:
        ws.send(orjson.dumps({"source": source}).decode())
        return len(list(ws)[-1])


if __name__ == "__main__":
    main()
