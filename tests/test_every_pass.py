"""Every number the page can show, at every pass, is PyTorch's number at that moment.

For each built-in example and each training loop in ``training_programs``, plain
PyTorch runs the same program with a copy of every op's output taken right after the
op, each leaf's value when a pass's forward first builds on it, and each backward
call's steps read by node hooks (``oracle.run_plain_passes``). Each recorded pass of
the Run is compared with it: the loss, the engine's order, every step's upstream and
downstream gradients, every node's value in that pass (a stepped parameter's value of
that pass: ``Pass.leaf_values``) and its saved tensors. The numeric check of a leaf at
a later pass is compared with the Run's gradient there.
"""

from __future__ import annotations

import pytest
import torch

import chainlens
from chainlens.examples.catalog import examples
from chainlens.explain.gradcheck import expected_from_run, run_check
from chainlens.schema import Run
from chainlens.settings import Settings

from oracle import DTYPES, assert_view_equals, decode, run_plain_passes
from training_programs import TRAINING

SOURCES = {
    **{f"example:{e.id}": e.source for e in examples()},
    **{f"training:{k}": v for k, v in TRAINING.items()},
}


def pass_value(run: Run, index: int, node_id: str):  # noqa: ANN201
    """What the page shows as a node's value in pass ``index``."""
    node = next(n for n in run.nodes if n.id == node_id)
    return run.passes[index].leaf_values.get(node_id, node.value)


def assert_passes_match(run: Run, source: str) -> int:
    """Every recorded pass of ``run`` against plain PyTorch; the number compared."""
    plain = run_plain_passes(source)
    byid = {n.id: n for n in run.nodes}
    assert len(run.passes) == len(plain), (len(run.passes), len(plain))
    compared = 0
    for p, q in zip(run.passes, plain, strict=True):
        where = f"pass {p.index + 1}"
        assert p.loss == q.loss, (where, p.loss, q.loss)
        if not p.recorded:
            continue
        assert [byid[s.node].grad_fn for s in p.steps] == [s.grad_fn for s in q.steps], where
        for k, (step, truth) in enumerate(zip(p.steps, q.steps, strict=True)):
            at = f"{where}, step {k + 1} ({truth.grad_fn})"
            assert_view_equals(step.grad_output, truth.grad_outputs[0], f"{at}: upstream")
            assert len(step.grad_inputs) == len(truth.grad_inputs), at
            for slot, (got, want) in enumerate(
                zip(step.grad_inputs, truth.grad_inputs, strict=True)
            ):
                if want is None:
                    assert got is None, f"{at}: downstream {slot} should be None"
                else:
                    assert got is not None, f"{at}: downstream {slot} missing"
                    assert_view_equals(got, want, f"{at}: downstream {slot}")
            value = pass_value(run, p.index, step.node)
            if value is not None:
                assert truth.value is not None, f"{at}: PyTorch never saw this value"
                assert_view_equals(value, truth.value, f"{at}: value")
            for name, view in (byid[step.node].saved or {}).items():
                assert name in truth.saved, f"{at}: saved {name}"
                assert_view_equals(view, truth.saved[name], f"{at}: saved {name}")
        compared += 1
    return compared


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_every_pass_is_pytorchs(name: str) -> None:
    source = SOURCES[name]
    run = chainlens.run(source)
    compared = assert_passes_match(run, source)
    if name.startswith("training:"):
        assert compared >= 3, "a training loop with several recorded passes"


def test_a_stepped_parameter_shows_its_value_of_that_pass() -> None:
    """The two-layer nn example: model.2.weight at pass 3 is its value after two steps
    (the issue's 0.2238, 0.2034), not its first value."""
    source = next(e.source for e in examples() if e.id == "two_layer_nn")
    run = chainlens.run(source)
    node = next(n for n in run.nodes if "model.2.weight" in n.names)
    values = [torch.tensor(decode(pass_value(run, k, node.id).values)) for k in range(3)]
    assert not torch.equal(values[0], values[2])
    assert round(float(values[2][0, 0]), 4) == 0.2238 and round(float(values[2][0, 1]), 4) == 0.2034


def last_recorded(run: Run) -> int:
    return max(p.index for p in run.passes if p.recorded and p.steps)


@pytest.mark.parametrize("name", sorted(TRAINING))
def test_the_numeric_check_is_about_the_runs_gradient(name: str) -> None:
    """A leaf checked at the last recorded pass: its autograd column is the Run's
    gradient at that pass, element for element, and finite differences agree."""
    source = TRAINING[name]
    run = chainlens.run(source)
    k = last_recorded(run)
    step = next(
        s
        for s in run.passes[k].steps
        if s.grad_output is not None
        and not s.grad_inputs
        and next(n for n in run.nodes if n.id == s.node).names
    )
    wire = run.model_dump(mode="json")
    result = run_check(
        source, "cpu", 0, Settings(), run.id, step.node, k, 2, expected_from_run(wire, step.node, k)
    )
    (part,) = result["checked"]
    assert part["matches_run"] is True
    received = (
        torch.tensor(decode(step.grad_output.values), dtype=DTYPES[step.grad_output.dtype]).reshape(
            -1
        )
        if step.grad_output.values is not None
        else None
    )
    for e in part["elements"]:
        assert e["ok"] or e["kink"], (e, result["note"])
        if received is not None:
            flat = 0
            for i, n in zip(e["index"], part["shape"], strict=True):
                flat = flat * n + i
            assert e["analytic"] == float(received[flat])
    assert result["ok"], result
    assert f"pass {k + 1}'s forward" in result["note"]
