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
