"""bench/engine.py: the engine against the same program in plain Python + torch.

    .venv/bin/python bench/engine.py [--repeat N]

For each workload, medians over repeats, one thread (ratios: the median of each repeat's
ratio, the three programs being timed in turn within a repeat):
  plain      the program run by CPython + torch (the baseline, measured in the same run)
  wire       engine.run_wire + orjson.dumps: what a server worker does for a request
  run+dump   chainlens.run (a validated pydantic Run) + run.model_dump_json()
Targets (issue 2): <= 1.5x on LeNet batch 64, <= 3x on RNN-500, <= 1.1x on the MLP.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

import orjson
import torch

sys.path.insert(0, str(Path(__file__).parent))
import chainlens  # noqa: E402
from chainlens.engine import run_wire  # noqa: E402
from chainlens.settings import Settings  # noqa: E402
from workloads import CHAIN, MLP, lenet, rnn  # noqa: E402

# The MLP's 50000x784 input is over the default per-tensor cap, as it should be for strangers.
SETTINGS = Settings(max_tensor_elements=50_000_000, max_live_elements=500_000_000,
                    max_flops_per_op=1e11, max_flops=1e12)


def plain(source: str) -> float:
    namespace: dict = {"print": lambda *a, **k: None}
    code = compile(source, "<bench>", "exec")
    t0 = time.perf_counter()
    exec(code, namespace)  # noqa: S102 - the baseline is the program as plain Python
    return time.perf_counter() - t0


def wire(source: str) -> float:
    t0 = time.perf_counter()
    run = run_wire(source, settings=SETTINGS)
    orjson.dumps(run)
    elapsed = time.perf_counter() - t0
    assert run["status"] == "ok", run["error"]
    return elapsed


def run_dump(source: str) -> float:
    t0 = time.perf_counter()
    run = chainlens.run(source, settings=SETTINGS)
    run.model_dump_json()
    return time.perf_counter() - t0


def paired(source: str, repeat: int) -> tuple[list[float], list[float], list[float]]:
    """Times of plain, wire and run+dump, taken in turn within each repeat: on a shared,
    noisy machine a slow spell then slows all three alike, and each repeat gives a ratio."""
    fns = (plain, wire, run_dump)
    for fn in fns:
        fn(source)  # warm-up
    times: tuple[list[float], list[float], list[float]] = ([], [], [])
    for i in range(repeat):
        for k in range(3):  # each repeat starts with the next one: no program always goes first
            j = (i + k) % 3
            gc.collect()
            times[j].append(fns[j](source) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = [("chain rule (3*(x+2)**2).mean()", CHAIN, args.repeat),
            ("LeNet batch 1", lenet(1), args.repeat),
            ("LeNet batch 64", lenet(64), args.repeat),
            ("MLP 784-50-1 on 50000x784", MLP, max(3, args.repeat // 2)),
            ("RNN cell x 500 steps (hidden 8)", rnn(), args.repeat)]
    print(f"{'workload':34} {'plain ms':>9} {'wire ms':>9} {'ratio':>7} {'run+dump ms':>12} {'ratio':>7}")
    med = statistics.median
    for name, source, repeat in rows:
        p, w, r = paired(source, repeat)
        wr = med(b / a for a, b in zip(p, w, strict=True))
        rr = med(b / a for a, b in zip(p, r, strict=True))
        print(f"{name:34} {med(p):9.2f} {med(w):9.2f} {wr:6.2f}x {med(r):12.2f} {rr:6.2f}x",
              flush=True)


if __name__ == "__main__":
    main()
