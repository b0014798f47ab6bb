"""bench/engine.py: the engine against the same program in plain Python + torch.

    .venv/bin/python bench/engine.py [--repeat N]

For each workload, medians over repeats, one thread (ratios: the median of each repeat's
ratio, the three programs being timed in turn within a repeat):
  plain      the program run by CPython + torch (the baseline, measured in the same run)
  wire       engine.run_wire + orjson.dumps: what a server worker does for a request
  run+dump   chainlens.run (a validated pydantic Run) + run.model_dump_json()
Targets (issue 2): <= 1.5x on LeNet batch 64, <= 3x on RNN-500, <= 1.1x on the MLP;
(issue 23) <= 2x on the makemore MLP's 1000-step training loop, as the lecture writes it.

    .venv/bin/python bench/engine.py --breakdown [--repeat N]

instead times the wire path four ways, to show what each part of the engine costs:
in full, without step explanations (no formula recomputed or verified), without
explanations or tensor summaries (the recording alone: interpreter, graph, hooks), and
without recording anything (the interpreter and its call gate alone: the floor of a
program run by chainlens). Those are not products, only measurements: the engine's
parts are switched off here.

    .venv/bin/python bench/engine.py --record [--repeat N]

instead times ``chainlens.record()`` (issue 28: the user's own code, recorded in its own
process) around the same code run by CPython + torch, for LeNet batch 64 and a small
LSTM: ``record`` until the Run is made, ``record+dump`` with ``model_dump_json`` too.

    .venv/bin/python bench/engine.py --memory [--repeat N]

instead counts, per run (after a garbage collection, as a pooled worker runs one program
after another): the minor page faults (fresh memory the kernel had to map: a run that keeps
memory alive makes the next one fault it in again), and how much the process's resident
memory grew, which a run that frees everything leaves at zero. Counts, not times: the
noise of a shared machine does not touch them.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import torch

sys.path.insert(0, str(Path(__file__).parent))
import chainlens  # noqa: E402
from chainlens.engine import run_wire  # noqa: E402
from chainlens.explain.explainer import Explainer  # noqa: E402
from chainlens.settings import Settings  # noqa: E402
from chainlens.tracing import summaries  # noqa: E402
from chainlens.tracing.recorder import PassRecord, Recorder  # noqa: E402

from workloads import CHAIN, LSTM, MLP, lenet, makemore, rnn  # noqa: E402

# The MLP's 50000x784 input is over the default per-tensor cap, as it should be for strangers.
SETTINGS = Settings(
    max_tensor_elements=50_000_000,
    max_live_elements=500_000_000,
    max_flops_per_op=1e11,
    max_flops=1e12,
)


def plain(source: str) -> float:
    namespace: dict = {"print": lambda *a, **k: None}
    code = compile(source, "<bench>", "exec")
    t0 = time.perf_counter()
    exec(code, namespace)  # noqa: S102 - the baseline is the program as plain Python
    return time.perf_counter() - t0


def wire(source: str) -> float:
    """As a worker serves a request (``sandbox.worker.serve_one``): with the garbage
    collector off from the run's start until its reply is written, so that no collection
    walks the reply's 10^5 objects while they are still alive (10 ms for the RNN)."""
    gc.disable()
    try:
        t0 = time.perf_counter()
        run = run_wire(source, settings=SETTINGS)
        orjson.dumps(run)
        elapsed = time.perf_counter() - t0
        assert run["status"] == "ok", run["error"]
        del run
    finally:
        gc.enable()
    return elapsed


def recorded(source: str, dump: bool = False) -> float:
    """The program as the user's own code (plain Python + torch), inside
    ``chainlens.record()``; with ``dump``, the Run's JSON made too."""
    namespace: dict = {"print": lambda *a, **k: None}
    code = compile(source, "<bench>", "exec")
    t0 = time.perf_counter()
    with chainlens.record() as rec:
        exec(code, namespace)  # noqa: S102 - the user's own code, as they run it
    assert rec.run is not None and rec.run.status == "ok", rec.run
    if dump:
        rec.run.model_dump_json()
    return time.perf_counter() - t0


def recorded_dump(source: str) -> float:
    return recorded(source, dump=True)


def run_dump(source: str) -> float:
    t0 = time.perf_counter()
    run = chainlens.run(source, settings=SETTINGS)
    run.model_dump_json()
    return time.perf_counter() - t0


def paired(source: str, repeat: int, fns: tuple = (plain, wire, run_dump)) -> list[list[float]]:
    """Times of each of ``fns``, taken in turn within each repeat: on a shared, noisy
    machine a slow spell then slows all alike, and each repeat gives a ratio."""
    for fn in fns:
        fn(source)  # warm-up
    times: list[list[float]] = [[] for _ in fns]
    for i in range(repeat):
        for k in range(len(fns)):  # each repeat starts with the next one: none always first
            j = (i + k) % len(fns)
            gc.collect()
            times[j].append(fns[j](source) * 1000)
    return times


@contextlib.contextmanager
def switched_off(explanations: bool, views: bool, graph: bool = False) -> Iterator[None]:
    """The engine without step explanations and/or without tensor summaries (every view
    left empty), and with ``graph`` without recording at all (no node labelled, no pass
    hooked: the interpreter and its call gate alone): for --breakdown only."""
    saved = Explainer.__call__, summaries.Summarizer.flush, summaries.view
    recording = Recorder.record_outputs, Recorder.bind_name, Recorder.begin_pass
    if explanations:
        Explainer.__call__ = lambda self, *args: None  # type: ignore[method-assign]
    if views:
        summaries.Summarizer.flush = lambda self: None  # type: ignore[method-assign]
        summaries.view = lambda t: {"shape": [], "stats": None}
    if graph:
        Recorder.record_outputs = lambda self, *args: None  # type: ignore[method-assign]
        Recorder.bind_name = lambda self, *args: None  # type: ignore[method-assign]
        Recorder.begin_pass = _unrecorded_pass  # type: ignore[method-assign]
    try:
        yield
    finally:
        Explainer.__call__, summaries.Summarizer.flush, summaries.view = saved
        Recorder.record_outputs, Recorder.bind_name, Recorder.begin_pass = recording


def _unrecorded_pass(self: Recorder, roots: list, gradient: object) -> PassRecord:
    """A pass opened with nothing walked, labelled or hooked (and said to be recorded:
    an unrecorded last pass would have ``run_wire`` run the program again)."""
    self.losses.append(None)
    p = PassRecord(len(self.losses) - 1, None, None, self.line, None)
    self.passes.append(p)
    self._current = p
    return p


def wire_without(explanations: bool, views: bool, graph: bool = False) -> Callable[[str], float]:
    def timed(source: str) -> float:
        with switched_off(explanations, views, graph):
            return wire(source)

    return timed


def _resident_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def memory(source: str, repeat: int, fn: Callable[[str], float]) -> tuple[float, float]:
    """Median minor page faults per run, and resident growth per run (MB), of ``fn``."""
    for _ in range(2):
        fn(source)  # warm-up: the allocator's and torch's first-use memory
    gc.collect()
    faults = []
    start = _resident_mb()
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        fn(source)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
        gc.collect()
    return statistics.median(faults), (_resident_mb() - start) / repeat


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--breakdown", action="store_true")
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.record:
        record_rows(args.repeat)
        return
    rows = [
        ("chain rule (3*(x+2)**2).mean()", CHAIN, args.repeat),
        ("LeNet batch 1", lenet(1), args.repeat),
        ("LeNet batch 64", lenet(64), args.repeat),
        ("MLP 784-50-1 on 50000x784", MLP, max(3, args.repeat // 2)),
        ("RNN cell x 500 steps (hidden 8)", rnn(), args.repeat),
        ("makemore MLP loop, 1000 steps", makemore(1000), max(3, args.repeat // 2)),
    ]
    med = statistics.median
    if args.memory:
        print(f"{'workload':34} {'page faults per run':>28} {'resident growth MB/run':>28}")
        print(f"{'':34} {'plain':>13} {'wire':>14} {'plain':>13} {'wire':>14}")
        for name, source, repeat in rows:
            (pf, pg), (wf, wg) = (memory(source, repeat, fn) for fn in (plain, wire))
            print(f"{name:34} {pf:13.0f} {wf:14.0f} {pg:13.2f} {wg:14.2f}", flush=True)
        return
    if args.breakdown:
        fns = (
            plain,
            wire,
            wire_without(True, False),
            wire_without(True, True),
            wire_without(True, True, graph=True),
        )
        print(
            f"{'workload':34} {'plain ms':>9} {'wire':>7} {'no expl.':>9} {'recording':>10}"
            f" {'interpreter':>12}   (ratios to plain)"
        )
    else:
        fns = (plain, wire, run_dump)
        print(
            f"{'workload':34} {'plain ms':>9} {'wire ms':>9} {'ratio':>7} {'run+dump ms':>12} "
            f"{'ratio':>7}"
        )
    for name, source, repeat in rows:
        times = paired(source, repeat, fns)
        p = times[0]
        ratios = [med(b / a for a, b in zip(p, t, strict=True)) for t in times[1:]]
        if args.breakdown:
            print(
                f"{name:34} {med(p):9.2f} {ratios[0]:6.2f}x {ratios[1]:8.2f}x {ratios[2]:9.2f}x"
                f" {ratios[3]:11.2f}x",
                flush=True,
            )
        else:
            print(
                f"{name:34} {med(p):9.2f} {med(times[1]):9.2f} {ratios[0]:6.2f}x "
                f"{med(times[2]):12.2f} {ratios[1]:6.2f}x",
                flush=True,
            )


def record_rows(repeat: int) -> None:
    """``--record``: the in-process recording's overhead on the user's own code."""
    med = statistics.median
    print(f"{'workload':34} {'plain ms':>9} {'record ms':>10} {'ratio':>7} {'+dump':>7}")
    for name, source in (("LeNet batch 64", lenet(64)), ("LSTM 20 steps, 8->16", LSTM)):
        p, r, d = paired(source, repeat, (plain, recorded, recorded_dump))
        ratios = [med(b / a for a, b in zip(p, t, strict=True)) for t in (r, d)]
        print(
            f"{name:34} {med(p):9.2f} {med(r):10.2f} {ratios[0]:6.2f}x {ratios[1]:6.2f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
