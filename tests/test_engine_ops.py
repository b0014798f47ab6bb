"""Per-op checks: recorded grad_inputs equal torch.autograd.functional.vjp in float64, and
every node's upstream gradient is the sum of what its consumers passed it."""

from __future__ import annotations

from collections import defaultdict

import pytest
import torch

import chainlens
from chainlens.examples.catalog import examples

from oracle import decode, run_plain
from programs import PROGRAMS

SETUP = """import torch
import torch.nn.functional as F
d = torch.float64
a = torch.randn(4, 3, dtype=d, requires_grad=True)
b = torch.randn(1, 3, dtype=d, requires_grad=True)
c = torch.randn(4, 3, dtype=d, requires_grad=True)
p = (torch.rand(4, 3, dtype=d) + 0.5).requires_grad_()
q = (torch.rand(4, 3, dtype=d) * 0.8 + 0.1).requires_grad_()
m = torch.randn(3, 2, dtype=d, requires_grad=True)
u = torch.randn(3, dtype=d, requires_grad=True)
v = torch.randn(3, dtype=d, requires_grad=True)
s = torch.randn(1, 4, 3, dtype=d, requires_grad=True)
a3 = torch.randn(2, 3, 4, dtype=d, requires_grad=True)
b3 = torch.randn(2, 4, 2, dtype=d, requires_grad=True)
bias = torch.randn(4, 2, dtype=d, requires_grad=True)
img = torch.randn(1, 2, 6, 6, dtype=d, requires_grad=True)
k = torch.randn(3, 2, 3, 3, dtype=d, requires_grad=True)
E = torch.randn(5, 3, dtype=d, requires_grad=True)
logp = torch.randn(4, 3, dtype=d).log_softmax(1).detach().requires_grad_()
t = torch.randn(4, 3, dtype=d)
idx = torch.tensor([2, 0, 4])
tgt = torch.tensor([0, 2, 1, 1])
"""

# (name, expression producing y, the leaves it differentiates)
OPS = [
    ("add_broadcast", "a + b", "a b"),
    ("sub", "a - c", "a c"),
    ("mul_broadcast", "a * b", "a b"),
    ("div", "a / p", "a p"),
    ("neg", "-a", "a"),
    ("pow_scalar", "a ** 3", "a"),
    ("pow_tensor", "p ** a", "p a"),
    ("exp", "a.exp()", "a"),
    ("log", "p.log()", "p"),
    ("sqrt", "p.sqrt()", "p"),
    ("rsqrt", "p.rsqrt()", "p"),
    ("sin", "a.sin()", "a"),
    ("cos", "a.cos()", "a"),
    ("tanh", "a.tanh()", "a"),
    ("sigmoid", "a.sigmoid()", "a"),
    ("relu", "a.relu()", "a"),
    ("leaky_relu", "F.leaky_relu(a, 0.1)", "a"),
    ("gelu", "F.gelu(a)", "a"),
    ("softplus", "F.softplus(a)", "a"),
    ("abs", "a.abs()", "a"),
    ("clamp", "a.clamp(-0.5, 0.5)", "a"),
    ("clamp_min", "a.clamp(min=0.1)", "a"),
    ("where", "torch.where(a > 0, a, c)", "a c"),
    ("maximum", "torch.maximum(a, c)", "a c"),
    ("max_all", "a.max()", "a"),
    ("mean", "a.mean()", "a"),
    ("sum_dim", "a.sum(1, keepdim=True)", "a"),
    ("norm", "a.norm()", "a"),
    ("mm", "a @ m", "a m"),
    ("mv", "torch.mv(a, u)", "a u"),
    ("dot", "torch.dot(u, v)", "u v"),
    ("bmm", "torch.bmm(a3, b3)", "a3 b3"),
    ("addmm", "torch.addmm(bias, a, m)", "bias a m"),
    ("t", "a.t()", "a"),
    ("transpose", "a3.transpose(1, 2)", "a3"),
    ("permute", "a3.permute(2, 0, 1)", "a3"),
    ("view", "a.view(12)", "a"),
    ("reshape", "a3.reshape(6, 4)", "a3"),
    ("unsqueeze", "a.unsqueeze(1)", "a"),
    ("squeeze", "s.squeeze(0)", "s"),
    ("expand", "b.expand(4, 3)", "b"),
    ("select", "a[1]", "a"),
    ("slice", "a[1:3]", "a"),
    ("index", "a[torch.tensor([0, 2])]", "a"),
    ("masked_fill", "a.masked_fill(a > 0.5, 0.0)", "a"),
    ("cat", "torch.cat([a, c])", "a c"),
    ("stack", "torch.stack([a, c])", "a c"),
    ("clone", "a.clone()", "a"),
    ("softmax", "F.softmax(a, dim=1)", "a"),
    ("log_softmax", "F.log_softmax(a, dim=1)", "a"),
    ("mse_loss", "F.mse_loss(a, t)", "a"),
    ("bce", "F.binary_cross_entropy(q, t.sigmoid())", "q"),
    ("bce_logits", "F.binary_cross_entropy_with_logits(a, t.sigmoid())", "a"),
    ("nll_loss", "F.nll_loss(logp, tgt)", "logp"),
    ("conv2d", "F.conv2d(img, k)", "img k"),
    ("max_pool2d", "F.max_pool2d(img, 2)", "img"),
    ("avg_pool2d", "F.avg_pool2d(img, 2)", "img"),
    ("layer_norm", "F.layer_norm(a, (3,))", "a"),
    ("embedding", "F.embedding(idx, E)", "E"),
    ("batch_norm", "F.batch_norm(a, None, None, training=True)", "a"),
    ("min_all", "a.min()", "a"),
    ("sum_all", "a.sum()", "a"),
]


@pytest.mark.parametrize("name,expr,leaves", OPS, ids=[o[0] for o in OPS])
def test_recorded_grad_inputs_equal_vjp(name: str, expr: str, leaves: str) -> None:
    source = SETUP + f"y = {expr}\nw = torch.randn(y.shape, dtype=d)\n(y * w).sum().backward()\n"
    run = chainlens.run(source)
    assert run.status == "ok", run.error
    plain = run_plain(source)
    ns = plain.variables
    names = leaves.split()
    inputs = tuple(ns[n].detach().clone() for n in names)
    # The same op, differentiated by torch.autograd.functional.vjp.
    env = dict(ns)

    def f(*xs):
        local = {
            **env,
            **dict(zip(names, xs, strict=False)),
            "torch": torch,
            "F": torch.nn.functional,
            "d": torch.float64,
        }
        return eval(expr, local)  # noqa: S307 - the test's own expression, not user input

    _, expected = torch.autograd.functional.vjp(f, inputs, v=ns["w"])
    node_id = run.variables["y"].node
    node = next(n for n in run.nodes if n.id == node_id)
    step = next(st for st in run.passes[0].steps if st.node == node_id)
    assert len(step.grad_inputs) == len(node.inputs)
    checked = 0
    for leaf, exp in zip(names, expected, strict=False):
        leaf_node = run.variables[leaf].node
        slot = node.inputs.index(leaf_node)
        got = step.grad_inputs[slot]
        if exp.numel() <= 64:
            got_t = torch.tensor(decode(got.values), dtype=torch.float64).reshape(exp.shape)
            torch.testing.assert_close(got_t, exp, rtol=1e-10, atol=1e-12)
        else:
            assert got.stats.min == pytest.approx(float(exp.min()), rel=1e-9, abs=1e-12)
            assert got.stats.max == pytest.approx(float(exp.max()), rel=1e-9, abs=1e-12)
        checked += 1
    assert checked == len(names)


def test_op_table_covers_thirty_grad_fn_types() -> None:
    seen = set()
    for _name, expr, _ in OPS:
        run = chainlens.run(SETUP + f"y = {expr}\n(y * 1).sum().backward()\n")
        node_id = run.variables["y"].node
        seen.add(next(n.grad_fn for n in run.nodes if n.id == node_id))
    assert len(seen) >= 30, sorted(seen)


MULTI_OUTPUT = {
    "SplitBackward0",
    "SplitWithSizesBackward0",
    "UnbindBackward0",
    "UnsafeSplitBackward0",
    "UnsafeChunkBackward0",
}


def _upstream_checks(run) -> int:
    """Each node's upstream gradient against the sum of what its consumers passed, except
    where the program's own hook replaced it (which the run says)."""
    nodes = {n.id: n for n in run.nodes}
    hooked = {d.node for d in run.diagnostics if d.code == "hook_changed_gradient"}
    checked = 0
    for p in run.passes:
        if not p.recorded or not p.steps:
            continue
        steps = {st.node: st for st in p.steps}
        contributions: dict[str, list] = defaultdict(list)
        for st in p.steps:
            node = nodes.get(st.node)
            if node is None:
                continue
            for slot, inp in enumerate(node.inputs):
                if inp is not None and inp in steps:
                    contributions[inp].append(st.grad_inputs[slot])
        for nid, parts in contributions.items():
            st = steps[nid]
            node = nodes[nid]
            if node.grad_fn in MULTI_OUTPUT or st.grad_output is None or nid in hooked:
                continue
            if any(g is None or g.values is None for g in parts) or st.grad_output.values is None:
                continue
            total = sum(torch.tensor(decode(g.values), dtype=torch.float64) for g in parts)
            got = torch.tensor(decode(st.grad_output.values), dtype=torch.float64)
            torch.testing.assert_close(
                got.reshape(total.shape), total, rtol=1e-5, atol=1e-6, equal_nan=True
            )
            checked += 1
    return checked


def test_upstream_is_sum_of_consumers() -> None:
    sources = [e.source for e in examples()] + list(PROGRAMS.values())
    total = sum(_upstream_checks(chainlens.run(src)) for src in sources)
    assert total > 200
