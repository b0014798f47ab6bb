"""Every formula against PyTorch: float64 inputs (random, broadcasting shapes too), the
rule's gradients compared with the ones the autograd engine computed for that node.
Then through the engine: verified formulas on real programs, custom Functions checked."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F

import chainlens
from chainlens.explain.explainer import Explainer
from chainlens.explain.formulas import GRAD_FN_RULES, SAME_KIND_VERIFIED, Ctx, verify
from chainlens.settings import Settings

torch.manual_seed(0)
D = torch.float64


def r(*shape: int, positive: bool = False) -> torch.Tensor:
    t = torch.randn(*shape, dtype=D)
    return (t.abs() + 0.5 if positive else t).requires_grad_(True)


# name -> (inputs, function of the inputs whose output's grad_fn the rule explains)
CASES: dict[str, tuple[Callable[[], list[torch.Tensor]], Callable[..., torch.Tensor]]] = {
    "add": (lambda: [r(2, 3), r(2, 3)], lambda a, b: a + b),
    "add_broadcast": (lambda: [r(4, 3), r(3)], lambda a, b: a + 2.5 * b),
    "sub_broadcast": (lambda: [r(2, 1, 3), r(4, 1)], lambda a, b: a - b),
    "mul_broadcast": (lambda: [r(3, 1), r(1, 4)], lambda a, b: a * b),
    "mul_scalar": (lambda: [r(3)], lambda a: a * 3.0),
    "div": (lambda: [r(2, 3), r(3, positive=True)], lambda a, b: a / b),
    "neg": (lambda: [r(4)], lambda a: -a),
    "pow_scalar": (lambda: [r(5)], lambda a: a**3),
    "pow_tensor": (lambda: [r(2, 3, positive=True), r(3)], lambda a, b: a**b),
    "exp": (lambda: [r(4)], torch.exp),
    "log": (lambda: [r(4, positive=True)], torch.log),
    "sqrt": (lambda: [r(4, positive=True)], torch.sqrt),
    "rsqrt": (lambda: [r(4, positive=True)], torch.rsqrt),
    "sin": (lambda: [r(4)], torch.sin),
    "cos": (lambda: [r(4)], torch.cos),
    "tanh": (lambda: [r(4)], torch.tanh),
    "sigmoid": (lambda: [r(4)], torch.sigmoid),
    "relu": (lambda: [r(6)], torch.relu),
    "threshold": (lambda: [r(6)], lambda a: F.threshold(a, 0.1, 0.0)),
    "leaky_relu": (lambda: [r(6)], lambda a: F.leaky_relu(a, 0.2)),
    "gelu": (lambda: [r(6)], F.gelu),
    "gelu_tanh": (lambda: [r(6)], lambda a: F.gelu(a, approximate="tanh")),
    "softplus": (lambda: [r(6)], lambda a: F.softplus(a, beta=2.0, threshold=1.0)),
    "abs": (lambda: [r(6)], torch.abs),
    "clamp": (lambda: [r(8)], lambda a: a.clamp(-0.5, 0.5)),
    "clamp_min": (lambda: [r(8)], lambda a: a.clamp(min=0.0)),
    "clamp_max": (lambda: [r(8)], lambda a: a.clamp(max=0.0)),
    "where": (lambda: [r(2, 3), r(3)], lambda a, b: torch.where(a > 0, a, b)),
    "maximum": (lambda: [r(2, 3), r(3)], torch.maximum),
    "minimum": (lambda: [r(2, 3), r(2, 3)], torch.minimum),
    "max_all": (lambda: [r(3, 4)], torch.max),
    "min_all": (lambda: [r(3, 4)], torch.min),
    "max_dim": (lambda: [r(3, 4)], lambda a: a.max(dim=1)[0]),
    "min_dim_keepdim": (lambda: [r(3, 4)], lambda a: a.min(dim=0, keepdim=True)[0]),
    "mean": (lambda: [r(3, 4)], torch.mean),
    "mean_dim": (lambda: [r(3, 4, 2)], lambda a: a.mean(dim=(0, 2))),
    "sum": (lambda: [r(3, 4)], torch.sum),
    "sum_dim_keepdim": (lambda: [r(3, 4)], lambda a: a.sum(1, keepdim=True)),
    "norm": (lambda: [r(5)], torch.linalg.vector_norm),
    "mm": (lambda: [r(2, 3), r(3, 4)], torch.mm),
    "mv": (lambda: [r(2, 3), r(3)], torch.mv),
    "dot": (lambda: [r(3), r(3)], torch.dot),
    "bmm": (lambda: [r(2, 2, 3), r(2, 3, 4)], torch.bmm),
    "addmm": (lambda: [r(4), r(2, 3), r(3, 4)], torch.addmm),
    "linear": (lambda: [r(5, 3), r(4, 3), r(4)], F.linear),
    "t": (lambda: [r(2, 3)], torch.t),
    "transpose": (lambda: [r(2, 3, 4)], lambda a: a.transpose(0, 2)),
    "permute": (lambda: [r(2, 3, 4)], lambda a: a.permute(2, 0, 1)),
    "view": (lambda: [r(2, 6)], lambda a: a.view(3, 4)),
    "reshape": (lambda: [r(2, 6)], lambda a: a.t().reshape(12)),
    "unsqueeze": (lambda: [r(3)], lambda a: a.unsqueeze(1)),
    "squeeze": (lambda: [r(3, 1)], lambda a: a.squeeze(1)),
    "expand": (lambda: [r(3, 1)], lambda a: a.expand(3, 4)),
    "select": (lambda: [r(3, 4)], lambda a: a[1]),
    "slice": (lambda: [r(3, 6)], lambda a: a[:, 1:5:2]),
    "index": (lambda: [r(4, 2)], lambda a: a[torch.tensor([0, 2, 2])]),
    "masked_fill": (
        lambda: [r(3, 3)],
        lambda a: a.masked_fill(torch.eye(3, dtype=torch.bool), 0.0),
    ),
    "cat": (lambda: [r(2, 3), r(1, 3)], lambda a, b: torch.cat([a, b])),
    "stack": (lambda: [r(2, 3), r(2, 3)], lambda a, b: torch.stack([a, b], dim=1)),
    "split": (lambda: [r(4, 3)], lambda a: a.split(2, dim=0)[1]),
    "chunk": (lambda: [r(2, 6)], lambda a: a.chunk(3, dim=1)[0]),
    "clone": (lambda: [r(3)], torch.clone),
    "conv2d": (
        lambda: [r(2, 2, 5, 5), r(3, 2, 3, 3), r(3)],
        lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1),
    ),
    "conv1d": (lambda: [r(1, 2, 7), r(4, 2, 3), r(4)], lambda x, w, b: F.conv1d(x, w, b)),
    "max_pool2d": (lambda: [r(1, 2, 4, 4)], lambda x: F.max_pool2d(x, 2)),
    "avg_pool2d": (lambda: [r(1, 2, 4, 4)], lambda x: F.avg_pool2d(x, 2)),
    "softmax": (lambda: [r(2, 4)], lambda a: a.softmax(dim=1)),
    "log_softmax": (lambda: [r(2, 4)], lambda a: a.log_softmax(dim=1)),
    "nll_loss": (lambda: [r(3, 4)], lambda a: F.nll_loss(a, torch.tensor([0, 3, 1]))),
    "nll_loss_sum": (
        lambda: [r(3, 4)],
        lambda a: F.nll_loss(a, torch.tensor([0, 3, 1]), reduction="sum"),
    ),
    "mse_loss": (lambda: [r(2, 3), r(2, 3)], F.mse_loss),
    "bce": (
        lambda: [r(2, 3)],
        lambda a: F.binary_cross_entropy(torch.sigmoid(a), torch.rand(2, 3, dtype=D)),
    ),
    "bce_with_logits": (
        lambda: [r(2, 3)],
        lambda a: F.binary_cross_entropy_with_logits(a, torch.rand(2, 3, dtype=D)),
    ),
    "batch_norm": (
        lambda: [r(4, 3, 2, 2), r(3), r(3)],
        lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
    ),
    "layer_norm": (lambda: [r(2, 3, 4), r(4), r(4)], lambda x, w, b: F.layer_norm(x, (4,), w, b)),
    "embedding": (lambda: [r(5, 3)], lambda w: F.embedding(torch.tensor([[0, 4], [4, 1]]), w)),
    "dropout": (lambda: [r(4, 4)], lambda a: F.dropout(a, 0.5, training=True)),
}


def explain_output(fn: Callable[..., torch.Tensor], inputs: list[torch.Tensor]) -> tuple[str, dict]:
    """Runs fn, then backward with a random upstream; the hook explains the output's node."""
    y = fn(*inputs)
    node = y.grad_fn
    seen: dict = {}
    explainer = Explainer()

    def hook(grad_inputs: tuple, grad_outputs: tuple) -> None:
        seen["formula"] = explainer(
            torch._C._current_autograd_node(), "n", grad_outputs, grad_inputs
        )
        rule = GRAD_FN_RULES.get(type(node).__name__)
        if rule is not None:
            seen["rule_grads"] = rule(Ctx(node, grad_outputs, grad_inputs)).grads
        seen["engine"] = grad_inputs

    node.register_hook(hook)
    y.backward(torch.randn_like(y))
    return type(node).__name__, seen


@pytest.mark.parametrize("name", list(CASES))
def test_formula_matches_autograd(name: str) -> None:
    make, fn = CASES[name]
    grad_fn, seen = explain_output(fn, make())
    assert grad_fn in GRAD_FN_RULES, f"no rule for {grad_fn}"
    assert seen["formula"]["kind"] == "rule"
    assert seen["formula"]["verified"], seen["formula"]
    # the same comparison, made here: each engine gradient equals the rule's
    compared = 0
    for mine, theirs in zip(seen["rule_grads"], seen["engine"], strict=False):
        if theirs is not None:
            torch.testing.assert_close(mine.reshape(theirs.shape), theirs, rtol=1e-7, atol=1e-9)
            compared += 1
    assert compared > 0
    assert seen["formula"]["latex"] and seen["formula"]["text"]


def test_a_wrong_rule_is_not_verified() -> None:
    a = r(3)
    (g,) = torch.autograd.grad((a * 2).sum(), a)
    assert verify([g], [g]) and not verify([g * 1.01], [g]) and not verify([None], [g])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_large_gradients_are_compared_element_by_element(dtype: torch.dtype) -> None:
    """Past a few dozen elements the comparison takes the largest difference: one element
    off, a NaN, or an inf in either side is still caught; NaN where both have it is not."""
    theirs = torch.randn(300, 70, generator=torch.Generator().manual_seed(1)).to(dtype)
    mine = theirs.to(torch.float64) * (1 + 1e-7)
    assert verify([mine], [theirs]) and verify([mine.T.contiguous().T], [theirs])
    for i, bad in ((0, 0.01), (12345, -0.01), (20999, float("nan")), (7, float("inf"))):
        wrong = mine.clone()
        wrong.view(-1)[i] += bad
        assert not verify([wrong], [theirs]), (i, bad)
    both = theirs.clone()
    both.view(-1)[5] = float("nan")
    same = both.to(torch.float64, copy=True)
    assert verify([same], [both])
    same.view(-1)[6] += 1
    assert not verify([same], [both])


def test_broadcast_is_spelled_out() -> None:
    _, seen = explain_output(lambda a, b: a * b, [r(4, 3), r(3)])
    assert "summed over dimension 0" in seen["formula"]["note"]


def test_jacobian_fallback_for_an_op_without_rule() -> None:
    x = r(2, 2)
    _, seen = explain_output(lambda a: a.repeat(2, 1), [x])
    f = seen["formula"]
    assert f["kind"] == "jacobian" and f["verified"]
    J = torch.tensor(f["jacobian"], dtype=D)
    assert J.shape == (8, 4)  # one row per output element, one column per input element
    expected = torch.autograd.functional.jacobian(lambda a: a.repeat(2, 1), x.detach()).reshape(
        8, 4
    )
    torch.testing.assert_close(J, expected)


def test_scalar_steps_show_numbers() -> None:
    x = torch.tensor(3.0, dtype=D, requires_grad=True)
    _, seen = explain_output(lambda a: a * a, [x])
    steps = seen["formula"]["steps"]
    # y = a * a with a = 3: each factor's local derivative is the other factor, 3
    assert len(steps) == 2 and all(r"\underbrace{3}_{\text{local}}" in s for s in steps)
    assert "3" not in seen["formula"]["latex"]  # the symbolic form has no numbers


def steps_of(run: chainlens.Run) -> list:
    return [s for p in run.passes for s in p.steps]


def test_every_example_step_is_verified() -> None:
    from chainlens.examples.catalog import examples

    unverified = []
    for ex in examples():
        run = chainlens.run(ex.source)
        for s in steps_of(run):
            f = s.formula.model_dump() if s.formula else None
            if f is None or not f["verified"]:
                node = next(n for n in run.nodes if n.id == s.node)
                unverified.append((ex.id, node.grad_fn, f and f.get("note")))
    # NaN/inf steps of the sqrt pitfall are verified too (NaN equals NaN); nothing is left out
    assert unverified == []


CUSTOM = """import torch
class Square(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad_output):
        x, = ctx.saved_tensors
        return grad_output * {factor} * x

x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
y = Square.apply(x).sum()
y.backward()
"""


def test_correct_custom_backward_is_not_flagged() -> None:
    run = chainlens.run(CUSTOM.format(factor=2))
    assert [d.code for d in run.diagnostics] == []
    step = next(
        s for s in steps_of(run) if s.formula and s.formula.model_dump()["kind"] == "custom"
    )
    f = step.formula.model_dump()
    assert f["verified"] and "grad_output * 2 * x" in f["code"]


def test_wrong_custom_backward_is_caught_with_both_values() -> None:
    run = chainlens.run(CUSTOM.format(factor=3))
    (d,) = [d for d in run.diagnostics if d.code == "custom_backward_mismatch"]
    # the analytic values are 3x, the true derivative 2x: both appear
    assert "[3, -6, 9]" in d.message and "[2, -4, 6]" in d.message
    assert d.line == 14 and d.node is not None
    node = next(n for n in run.nodes if n.id == d.node)
    assert node.grad_fn == "SquareBackward"
    step = next(s for s in steps_of(run) if s.node == d.node)
    assert step.formula.model_dump()["verified"] is False
    # PyTorch agrees the user's backward gives 3x, which is what the engine reports
    assert run.variables["x"].grad.values == [3.0, -6.0, 9.0]


def test_vector_backward_jacobian_matches_torch() -> None:
    src = (
        "import torch\nx = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)\n"
        "w = torch.tensor([0.5, -1.0], requires_grad=True)\n"
        "y = torch.stack([x.sum() * w[0], (x ** 2).sum() * w[1], x[0] * w[1]])\n"
        "v = torch.tensor([1.0, 0.5, -2.0])\ny.backward(v)\n"
    )
    run = chainlens.run(src)
    jac = run.passes[0].jacobian
    assert jac is not None and [leaf["verified"] for leaf in jac["leaves"]] == [True, True]
    x = torch.tensor([1.0, 2.0, 3.0])
    w = torch.tensor([0.5, -1.0])
    f = lambda x, w: torch.stack([x.sum() * w[0], (x**2).sum() * w[1], x[0] * w[1]])  # noqa: E731
    Jx, Jw = torch.autograd.functional.jacobian(f, (x, w))
    by_node = {leaf["node"]: leaf for leaf in jac["leaves"]}
    torch.testing.assert_close(torch.tensor(by_node[run.variables["x"].node]["jacobian"]), Jx)
    torch.testing.assert_close(torch.tensor(by_node[run.variables["w"].node]["jacobian"]), Jw)
    assert run.variables["x"].grad.values == pytest.approx(
        (Jx.T @ torch.tensor([1.0, 0.5, -2.0])).tolist()
    )


def test_steps_of_a_kind_verified_often_enough_are_not_recomputed() -> None:
    """An unrolled loop repeats a few kinds of step (grad_fn and shapes): each kind is
    recomputed until SAME_KIND_VERIFIED steps of it reproduced the engine's gradients;
    the rest keep the formula and say why; another shape is another kind."""

    n = SAME_KIND_VERIFIED + 8
    run = chainlens.run(
        "import torch\nx = torch.ones(1, 3, requires_grad=True)\nh = x\n"
        f"for i in range({n}):\n    h = torch.tanh(h)\n"
        "y = torch.ones(2, requires_grad=True)\n"
        "loss = h.sum() + torch.tanh(y).sum()\nloss.backward()\n"
    )
    node_of = {n.id: n for n in run.nodes}
    tanh = [
        (node_of[s.node].value.shape, s.formula.model_dump())
        for s in steps_of(run)
        if node_of[s.node].grad_fn == "TanhBackward0"
    ]
    loop = [f for shape, f in tanh if shape == [1, 3]]
    other = [f for shape, f in tanh if shape == [2]]
    assert len(loop) == n and len(other) == 1 and other[0]["verified"]
    assert [f["verified"] for f in loop] == [True] * SAME_KIND_VERIFIED + [False] * 8
    assert all(
        f"the {SAME_KIND_VERIFIED} TanhBackward0 steps before it" in f["note"]
        and f["latex"] == loop[0]["latex"]
        for f in loop[SAME_KIND_VERIFIED:]
    )


def test_a_long_loop_stops_rechecking_what_each_leaf_stores() -> None:
    """After SAME_KIND_VERIFIED verified ``.grad`` stores of one shape, a leaf's later
    ones are shown unverified, saying why (a 1000-step loop checked each before). Every
    pass is recorded here: passes a Run does not keep are not explained at all
    (test_skipped_passes.py), so they use none of this."""
    n = SAME_KIND_VERIFIED + 8
    run = chainlens.run(
        "import torch\nw = torch.ones(3, requires_grad=True)\n"
        f"for i in range({n}):\n    w.grad = None\n    (w * 2).sum().backward()\n",
        settings=Settings(max_recorded_passes=n),
    )
    leaf = next(node.id for node in run.nodes if node.kind == "leaf")
    stores = [
        (p.index, s.formula)
        for p in run.passes
        for s in p.steps
        if s.node == leaf and s.formula is not None
    ]
    early = [f for index, f in stores if index < SAME_KIND_VERIFIED]
    last = [f for index, f in stores if index == n - 1]
    assert early and all(f.kind == "accumulate" and f.verified for f in early)
    assert len(last) == 1 and not last[0].verified
    assert "Not recomputed" in (last[0].note or "")
    # the value stored is still the engine's: the last pass's upstream is w's final grad
    assert run.variables["w"].grad.values == [2.0, 2.0, 2.0]
