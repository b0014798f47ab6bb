"""What nodes saved for backward, as the inspector shows it: the tensors PyTorch saved,
small ones copied, large ones shown unless they were changed in place afterwards."""

from __future__ import annotations

import torch

import chainlens
from chainlens.tracing.recorder import SAVED_COPY_MAX

from oracle import assert_view_equals, run_plain

SIDE = 300  # SIDE * SIDE elements: past SAVED_COPY_MAX, so kept by reference
assert SIDE * SIDE > SAVED_COPY_MAX

PROGRAM = f"""import torch
x = torch.randn({SIDE}, {SIDE})
w = torch.randn({SIDE}, {SIDE}, requires_grad=True)
a = torch.randn(3, requires_grad=True)
b = torch.randn(3, requires_grad=True)
y = (w * x).sum() + (a * b).sum()
y.backward()
"""


def _node(run, grad_fn: str, names: set[str]):
    """The node of ``grad_fn`` whose saved tensors are ``names``."""
    for n in run.nodes:
        if n.grad_fn == grad_fn and n.saved is not None and set(n.saved) == names:
            return n
    raise AssertionError(
        f"no {grad_fn} saving {names}: {[(n.grad_fn, n.saved and set(n.saved)) for n in run.nodes]}"
    )


def test_saved_tensors_are_what_torch_saved() -> None:
    run = chainlens.run(PROGRAM)
    plain = run_plain(PROGRAM)
    small = _node(run, "MulBackward0", {"self", "other"})
    assert_view_equals(small.saved["self"], plain.variables["a"], "saved self")
    assert_view_equals(small.saved["other"], plain.variables["b"], "saved other")
    large = _node(run, "MulBackward0", {"other"})  # w needs x; x needs nothing from w
    assert run.variables["w"].node in large.inputs
    assert_view_equals(large.saved["other"], plain.variables["x"], "saved other (large)")
    # the input and the saved copy of it are one tensor's data: one summary, shared
    assert large.saved["other"] == run.variables["x"].value


def test_a_large_saved_tensor_changed_in_place_later_is_left_out() -> None:
    program = PROGRAM + "x.mul_(2)\na.data.mul_(2)\n"
    run = chainlens.run(program)
    plain = run_plain(program)
    assert run.status == "ok"
    # the large one cannot show its old value any more: it is left out, not shown wrong
    w = run.variables["w"].node
    large = next(n for n in run.nodes if n.grad_fn == "MulBackward0" and w in n.inputs)
    assert large.saved == {}
    assert_view_equals(run.variables["x"].value, plain.variables["x"], "x")
    # the small one was copied when backward read it: the value before the change
    small = _node(run, "MulBackward0", {"self", "other"})
    assert_view_equals(small.saved["self"], plain.variables["a"] / 2, "saved self")
    assert not torch.equal(plain.variables["a"] / 2, plain.variables["a"])
