"""Passes past those a Run keeps in full are skipped while a ``for`` with no ``break`` or
``return`` of its own has items left (``Recorder.begin_pass``): nothing hooked, recorded
or explained for a pass that would be dropped anyway. The Run is the one recorded without
skipping, field for field: for loops that end as expected, for those that may stop early
(which skip nothing), and for those whose last backward was not the one expected (a
conditional backward, an exception), which the engine runs again without skipping
(``engine.run_wire``). Each training loop of
``training_programs`` is run with room for 2 passes, so that most of its passes skip.
(One difference, for loops longer than the explainer's per-kind budget: skipped passes
no longer use it up, so the last pass's steps are verified where they were not.)"""

from __future__ import annotations

from typing import Any

import pytest

from chainlens.engine import Execution, run_wire
from chainlens.explain.formulas import SAME_KIND_VERIFIED
from chainlens.settings import Settings

from programs import program
from training_programs import TRAINING

LOOPS: dict[str, str] = {}

# Karpathy's makemore, part 2 (the MLP), for 30 steps instead of 5.
LOOPS["makemore_steps"] = TRAINING["makemore_mlp"].replace("range(5)", "range(30)")

_STEP = """
    loss = ((w * x).sum() - 3.0) ** 2
    w.grad = None
    loss.backward()
    with torch.no_grad():
        w -= 0.01 * w.grad
"""
_SETUP = "w = torch.ones(4, requires_grad=True)\nx = torch.arange(4.0)\n"

# The loops whose last backward is not the one a loop promises, each in the style of the
# PyTorch tutorials' loops with an early stop.
program(
    "break_after_backward",
    _SETUP + "for i in range(40):" + _STEP + "    if i == 22:\n        break\n",
    into=LOOPS,
)
program(
    "conditional_backward",
    _SETUP + "for i in range(30):\n    if i < 23:" + _STEP.replace("\n    ", "\n        "),
    into=LOOPS,
)
program(
    "raises_in_a_later_iteration",
    _SETUP + "for i in range(30):" + _STEP + "    if i == 24:\n        y = w @ torch.ones(3)\n",
    into=LOOPS,
)
program(
    "backward_after_the_loop",
    _SETUP + "for i in range(25):" + _STEP + "final = (w * x).sum()\nfinal.backward()\n",
    into=LOOPS,
)
program(
    "epochs_of_batches",
    _SETUP
    + "batches = [x + k for k in range(7)]\nfor epoch in range(4):\n    for x in batches:"
    + _STEP.replace("\n    ", "\n        "),
    into=LOOPS,
)
program("while_loop", _SETUP + "i = 0\nwhile i < 25:\n    i += 1" + _STEP, into=LOOPS)
program(
    "a_generators_batches",
    _SETUP
    + "def batches():\n    for k in range(26):\n        yield x + k\nfor x in batches():"
    + _STEP,
    into=LOOPS,
)
program(
    "inner_loop_breaks",
    _SETUP
    + "for epoch in range(25):\n    for k in range(3):\n        if k == 1:\n            break\n"
    + _STEP,
    into=LOOPS,
)
program(
    "returns_from_its_loop",
    _SETUP
    + "def train(n):\n    for i in range(n):"
    + _STEP.replace("\n    ", "\n        ")
    + "        if i == 21:\n            return i\ntrain(40)\n",
    into=LOOPS,
)
program(
    "a_nested_function_returns",
    _SETUP
    + "for i in range(24):\n    def lr():\n        return 0.01\n"
    + _STEP.replace("0.01", "lr()"),
    into=LOOPS,
)
# A running total never detached: every pass reaches back through the earlier ones' nodes.
program(
    "carried_graph",
    _SETUP + "total = 0\nfor i in range(24):\n    total = total + ((w * x).sum() - 3.0) ** 2\n"
    "    total.backward(retain_graph=True)\n",
    into=LOOPS,
)

CASES = {
    **{f"loop:{k}": (v, 20) for k, v in LOOPS.items()},
    **{f"training:{k}": (v, 2) for k, v in TRAINING.items()},
}


def unskipped(source: str, settings: Settings) -> dict[str, Any]:
    """The Run recorded with every pass hooked, explained and recorded as it comes."""
    ex = Execution(source, "cpu", 0, settings, None, "r")
    try:
        return ex.execute()
    finally:
        ex.close()


def explained_steps(source: str, settings: Settings, skip: bool) -> tuple[dict[str, Any], int]:
    """The Run (without formulas) and how many steps were explained on the way."""
    explained = 0

    def explain(node: Any, nid: str, outputs: Any, inputs: Any) -> None:
        nonlocal explained
        explained += 1

    ex = Execution(
        source, "cpu", 0, settings, None, "r", explain=explain, saved=True, skip_passes=skip
    )
    try:
        return ex.execute(), explained
    finally:
        ex.close()


@pytest.mark.parametrize("name", CASES)
def test_a_run_that_skips_passes_is_the_run_that_records_them(name: str) -> None:
    source, kept = CASES[name]
    settings = Settings(max_recorded_passes=kept)
    whole = unskipped(source, settings)
    run = run_wire(source, settings=settings, run_id="r")
    run.pop("timings_ms")
    whole.pop("timings_ms")
    assert run == whole
    assert run["passes"][-1]["recorded"] or run["status"] == "error"


def test_skipped_passes_are_not_recorded_at_all() -> None:
    settings = Settings(max_recorded_passes=5)
    source = LOOPS["makemore_steps"]
    _, every = explained_steps(source, settings, skip=False)
    _, fewer = explained_steps(source, settings, skip=True)
    steps = every // 30  # (each pass's: its leaves' and its ops')
    assert steps > 5 and (every, fewer) == (30 * steps, 5 * steps)  # 4 kept and the last


def test_a_loop_whose_backward_stops_coming_is_run_again_to_record_its_last_pass() -> None:
    settings = Settings(max_recorded_passes=5)
    source = LOOPS["conditional_backward"]  # (backward while i < 23, of range(30))
    run, _ = explained_steps(source, settings, skip=True)
    assert not run["passes"][-1]["recorded"] and len(run["passes"]) == 23  # skipped
    again = run_wire(source, settings=settings)
    assert again["passes"][-1]["recorded"] and again["passes"][-1]["steps"]
    (note,) = [d for d in again["diagnostics"] if d["code"] == "passes_truncated"]
    assert "the first 4 and the last are recorded" in note["message"]


@pytest.mark.parametrize(
    ("name", "skips"),
    [
        ("break_after_backward", False),  # may stop early: promises nothing
        ("epochs_of_batches", True),
        ("inner_loop_breaks", True),  # (the inner loop's break is its own)
        ("returns_from_its_loop", False),
        ("a_nested_function_returns", True),  # (the return is the function's)
    ],
)
def test_a_loop_that_may_stop_early_promises_no_more_passes(name: str, skips: bool) -> None:
    """A loop with a ``break`` or ``return`` of its own does not skip passes, so an early
    stop does not make the program run twice; other loops skip, and their last pass is
    recorded the first time."""
    settings = Settings(max_recorded_passes=5)
    run, explained = explained_steps(LOOPS[name], settings, skip=True)
    passes = len(run["passes"])
    assert passes > 20 and run["passes"][-1]["recorded"]
    steps = len(run["passes"][0]["steps"])
    assert explained == (5 if skips else passes) * steps


def test_too_long_a_run_keeps_its_passes_and_says_the_last_is_not_recorded() -> None:
    settings = Settings(max_recorded_passes=5, cpu_limit_s=0)  # (any run is too long)
    run = run_wire(LOOPS["conditional_backward"], settings=settings)
    assert not run["passes"][-1]["recorded"] and not run["passes"][-1]["steps"]
    (note,) = [d for d in run["diagnostics"] if d["code"] == "passes_truncated"]
    assert "the first 4 are recorded step by step, not the last" in note["message"]


def test_skipped_passes_leave_the_explainers_budget_to_the_passes_shown() -> None:
    """A step kind is recomputed SAME_KIND_VERIFIED times a run: passes the Run drops
    used it up before, and a long loop's last pass read "Not recomputed"."""
    n = SAME_KIND_VERIFIED + 8
    run = run_wire(
        "import torch\nw = torch.ones(3, requires_grad=True)\n"
        f"for i in range({n}):\n    w.grad = None\n    (w * 2).sum().backward()\n"
    )
    last = run["passes"][-1]
    assert last["index"] == n - 1 and last["recorded"]
    assert all(step["formula"]["verified"] for step in last["steps"]), last["steps"]
