"""A run frees what it made: no tensor, graph or interpreter of a program outlives its run.

The edges from a tensor to its autograd graph live in C++, where the garbage collector
cannot see them, so a cycle through them (a hook or a custom Function calling back into
the interpreter that holds the tensor) is never freed. A pooled worker serves run after
run: each LeNet batch of 64 kept 10 MB alive, and every later run paid page faults for
fresh memory (a third of its backward's time).
"""

from __future__ import annotations

import gc

import pytest
import torch

from chainlens.engine import run_wire
from chainlens.examples.catalog import examples
from chainlens.explain.gradcheck import run_check
from chainlens.explain.manual import manual_code
from chainlens.language.interpreter import Interpreter
from chainlens.settings import Settings

from programs import PROGRAMS

TENSORS = (torch.Tensor, torch.nn.Parameter)
SOURCES = {**{f"example:{e.id}": e.source for e in examples()}, **PROGRAMS}


def _alive() -> tuple[int, int]:
    """Interpreters and tensors the garbage collector can still reach, after a collection."""
    gc.collect()
    objects = gc.get_objects()
    return (sum(type(o) is Interpreter for o in objects), sum(type(o) in TENSORS for o in objects))


def test_runs_leave_nothing_alive() -> None:
    """Every example and corpus program, run one after another, as a worker runs them;
    two counts of what is alive, since each takes a second with torch loaded."""
    before = _alive()
    for source in SOURCES.values():
        run_wire(source)
    if _alive() != before:
        leaks = []
        for name, source in SOURCES.items():
            start = _alive()
            run_wire(source)
            if _alive() != start:
                leaks.append(name)
        pytest.fail(f"runs that left tensors or interpreters alive: {leaks}")


def test_checks_that_run_the_program_again_leave_nothing_alive() -> None:
    """A gradient check and a manual-backprop file re-run the program under a probe."""
    custom = next(e.source for e in examples() if e.id == "custom_relu")
    run = run_wire(custom)
    node = next(n["id"] for n in run["nodes"] if n["grad_fn"] == "MyReLUBackward")
    del run
    adam = next(e.source for e in examples() if e.id == "two_layer_adam")
    settings = Settings()
    before = _alive()
    assert run_check(custom, "cpu", 0, settings, "r", node, None, 2)["checked"]
    assert "backward" in manual_code(adam, "cpu", 0, settings, "r", 0)
    assert _alive() == before


def test_a_run_puts_back_what_it_set_for_the_process() -> None:
    """``RunScope``: a caller of ``chainlens.run`` finds its generators, collector,
    recursion limit and torch settings as it left them, whatever the program changed."""
    import random
    import sys

    import numpy as np

    import chainlens

    program = (
        "import torch\nimport numpy as np\nimport random\n"
        "torch.set_default_dtype(torch.float64)\ntorch.set_printoptions(precision=1)\n"
        "torch.autograd.set_detect_anomaly(True)\n"
        "a = torch.rand(3)\nb = np.random.rand(2)\nc = random.random()\n"
    )

    def draw() -> tuple[list[float], list[float], float]:
        return torch.rand(3).tolist(), np.random.rand(2).tolist(), random.random()

    def state() -> tuple:
        return (
            gc.isenabled(),
            sys.getrecursionlimit(),
            torch.get_default_dtype(),
            torch.is_anomaly_enabled(),
            torch._tensor_str.get_printoptions(),
        )

    torch.manual_seed(7), np.random.seed(7), random.seed(7)
    expected, before = draw(), state()
    torch.manual_seed(7), np.random.seed(7), random.seed(7)
    run = chainlens.run(program, seed=3)
    assert run.status == "ok"
    assert draw() == expected
    assert state() == before
