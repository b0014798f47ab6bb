"""Diagnostics land on the right node and line; passes are capped; cuts are recorded."""

from __future__ import annotations

import pytest
import torch

import chainlens
from chainlens.examples.catalog import example
from chainlens.settings import Settings

from oracle import assert_matches, run_plain

# example id -> (code, line in the example's source, grad_fn of the diagnosed node)
PITFALLS = {
    "pitfall_non_scalar": ("non_scalar_backward", 5, "MulBackward0"),
    "pitfall_leaf_overwritten": ("leaf_overwritten", 6, "AccumulateGrad"),
    "pitfall_inplace_leaf": ("inplace_on_leaf", 4, "AccumulateGrad"),
    "pitfall_sqrt_nan": ("nan_gradient", 4, "SqrtBackward0"),
    "pitfall_integer": ("integer_requires_grad", 3, None),
    # the node backward stopped at: the product, whose saved x the first backward freed
    "pitfall_backward_twice": ("backward_twice", 6, "MulBackward0"),
    "pitfall_inplace_saved": ("inplace_modified_saved", 6, "ExpBackward0"),
    # without CUDA, creating the GPU tensor (line 4) fails; with it, the product (line 5)
    "pitfall_device": ("device_mismatch", 5 if torch.cuda.is_available() else 4, None),
    "no_grad_cut": ("no_grad_path", 4, "AccumulateGrad"),
}


@pytest.mark.parametrize("example_id", sorted(PITFALLS))
def test_pitfall_diagnostic_on_its_node_and_line(example_id: str) -> None:
    code, line, grad_fn = PITFALLS[example_id]
    run = chainlens.run(example(example_id).source)
    hits = [d for d in run.diagnostics if d.code == code]
    assert hits, [d.code for d in run.diagnostics]
    d = hits[0]
    assert d.line == line, (d.line, line)
    assert d.message and d.hint
    if grad_fn is None:
        assert d.node is None or any(n.id == d.node for n in run.nodes)
    else:
        node = next(n for n in run.nodes if n.id == d.node)
        assert node.grad_fn == grad_fn


@pytest.mark.parametrize(
    "fix_id",
    [
        "fix_non_scalar",
        "fix_leaf_overwritten",
        "fix_inplace_leaf",
        "fix_norm",
        "fix_integer",
        "fix_backward_twice",
        "fix_inplace_saved",
        "fix_device",
    ],
)
def test_fixes_have_no_error_diagnostics(fix_id: str) -> None:
    run = chainlens.run(example(fix_id).source)
    assert run.status == "ok"
    assert [d.code for d in run.diagnostics if d.severity == "error"] == []


def test_a_second_backward_marks_the_nodes_whose_saved_tensors_were_freed() -> None:
    """Each node the second backward found without its saved tensors says which pass freed
    them; the oracle is PyTorch itself, asked after its first backward which nodes' saved
    tensors can no longer be read."""
    source = "\n".join(
        [
            "import torch",
            "x = torch.tensor([1.0, 2.0], requires_grad=True)",
            "h = torch.exp(x) * x",
            "y = torch.sin(h).sum()",
            "y.backward()",
            "y.backward()",
        ]
    )
    run = chainlens.run(source)
    assert run.status == "error" and "second time" in run.error.message
    freed = {n.grad_fn: n.freed_by for n in run.nodes if n.freed_by is not None}

    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = torch.sin(torch.exp(x) * x).sum()
    y.backward()
    gone, todo = set(), [y.grad_fn]
    while todo:
        fn = todo.pop()
        for attr in (a for a in dir(fn) if a.startswith("_saved_")):
            try:
                getattr(fn, attr)
            except RuntimeError:
                gone.add(type(fn).__name__)
        todo += [f for f, _ in fn.next_functions if f is not None]
    assert set(freed) == gone and gone >= {"MulBackward0", "ExpBackward0", "SinBackward0"}
    assert set(freed.values()) == {0}
    d = next(d for d in run.diagnostics if d.code == "backward_twice")
    assert next(n for n in run.nodes if n.id == d.node).freed_by == 0


def test_leaf_overwritten_keeps_the_original_leaf_gradient() -> None:
    run = chainlens.run(example("pitfall_leaf_overwritten").source)
    d = next(d for d in run.diagnostics if d.code == "leaf_overwritten")
    leaf = next(n for n in run.nodes if n.id == d.node)
    assert "w" in leaf.names and leaf.grad is not None


def test_nonleaf_grad_access_is_flagged() -> None:
    src = "import torch\nx = torch.ones(2, requires_grad=True)\ny = x * 2\ny.sum().backward()\nprint(y.grad)\n"
    run = chainlens.run(src)
    d = next(d for d in run.diagnostics if d.code == "nonleaf_grad_access")
    assert d.line == 5 and next(n for n in run.nodes if n.id == d.node).grad_fn == "MulBackward0"


def test_grad_accumulated_is_info_and_zeroing_silences_it() -> None:
    run = chainlens.run(example("accumulation").source)
    assert [d.severity for d in run.diagnostics if d.code == "grad_accumulated"] == ["info"]
    assert not chainlens.run(example("gd_autograd").source).diagnostics


def test_auto_backward_from_last_scalar_and_info_for_non_scalar() -> None:
    run = chainlens.run(
        "import torch\nx = torch.ones(3, requires_grad=True)\nloss = (x * 2).sum()\n"
    )
    assert len(run.passes) == 1 and run.variables["x"].grad.values == [2.0, 2.0, 2.0]
    run = chainlens.run("import torch\nx = torch.ones(3, requires_grad=True)\ny = x * 2\n")
    assert run.passes == []
    d = run.diagnostics[0]
    assert (d.code, d.severity, d.line) == ("non_scalar_backward", "info", 3)


def test_cut_edges_are_recorded() -> None:
    run = chainlens.run(example("no_grad_cut").source)
    reasons = {(c.op, c.reason) for c in run.cut_edges}
    assert ("mul", "no_grad") in reasons
    assert ("detach", "detach") in reasons
    assert ("gt", "non_differentiable") in reasons
    nodes = {n.id: n for n in run.nodes}
    assert all(c.source in nodes for c in run.cut_edges)


def test_pass_cap_keeps_first_and_last_and_every_loss() -> None:
    src = (
        "import torch\nw = torch.tensor([1.0, -1.0], requires_grad=True)\n"
        "for i in range(30):\n    loss = (w * w).sum()\n    loss.backward()\n"
        "    with torch.no_grad():\n        w -= 0.1 * w.grad\n    w.grad.zero_()\n"
    )
    run = chainlens.run(src, settings=Settings(max_recorded_passes=5))
    assert len(run.losses) == 30 and len(run.passes) == 30
    recorded = [p.index for p in run.passes if p.recorded]
    assert recorded == [0, 1, 2, 3, 29]
    assert all(p.steps for p in run.passes if p.recorded)
    assert all(not p.steps for p in run.passes if not p.recorded)
    assert any(d.code == "passes_truncated" for d in run.diagnostics)
    node_ids = {n.id for n in run.nodes}
    for p in run.passes:
        if p.recorded:
            assert all(st.node in node_ids for st in p.steps)
    assert len(run.nodes) < 5 * 5 + 2
    expected = []
    w = torch.tensor([1.0, -1.0], requires_grad=True)
    for _ in range(30):
        loss = (w * w).sum()
        expected.append(loss.item())
        loss.backward()
        with torch.no_grad():
            w -= 0.1 * w.grad
        w.grad.zero_()
    assert run.losses == pytest.approx(expected, rel=1e-6)


def test_custom_function_node_runs_user_backward() -> None:
    run = chainlens.run(example("custom_relu").source)
    node = next(n for n in run.nodes if n.grad_fn == "MyReLUBackward")
    step = next(s for s in run.passes[0].steps if s.node == node.id)
    assert step.grad_inputs[0].values == [0.0, 0.0, 3.0, 4.0]


def test_create_graph_labels_the_gradient_graph() -> None:
    src = (
        "import torch\nx = torch.tensor([1.0, 2.0], requires_grad=True)\n"
        "y = (x ** 3).sum()\ny.backward(create_graph=True)\ng = x.grad.sum()\ng.backward()\n"
    )
    run = chainlens.run(src)
    assert len(run.passes) == 2
    assert run.variables["g"].node in {n.id for n in run.nodes}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")
def test_cuda_run_matches_cpu() -> None:
    src = example("two_layer_tensors").source
    cpu = chainlens.run(src)
    gpu = chainlens.run(src, device="cuda")
    assert gpu.device.startswith("cuda") and gpu.status == "ok"
    for name, v in cpu.variables.items():
        g = gpu.variables[name]
        assert g.value.shape == v.value.shape
        assert g.value.device.startswith("cuda") or not v.requires_grad


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_gpu_is_refused() -> None:
    with pytest.raises(chainlens.ProgramRejected) as err:
        chainlens.run("x = 1", device="cuda")
    assert err.value.code == "device_unavailable"
    assert chainlens.run("x = 1", device="auto").device == "cpu"


def test_grad_is_none_names_the_tensor_and_the_line() -> None:
    """``w.grad.zero_()`` before any backward: Python's AttributeError (the oracle test in
    programs.py compares it with PyTorch), and a diagnostic saying why .grad is None."""
    src = (
        "import torch\nw = torch.ones(2, requires_grad=True)\nfor step in range(2):\n"
        "    w.grad.zero_()\n    (w * 3).sum().backward()\n"
    )
    run = chainlens.run(src)
    assert run.status == "error" and run.error.type == "AttributeError" and run.error.line == 4
    (d,) = [d for d in run.diagnostics if d.code == "grad_is_none"]
    assert d.severity == "error" and d.line == 4 and d.message.startswith("w.grad is None")
    other = chainlens.run("import torch\nnet = None\nnet.zero_grad()\n")
    assert other.error.type == "AttributeError" and not other.diagnostics


def test_a_hook_that_replaces_a_gradient_is_named_on_its_node() -> None:
    """``y.register_hook(f)``: a hook returning a tensor changes what flows into y's node
    (the oracle test in programs.py holds the numbers to PyTorch); one returning None, like
    ``print``, changes nothing and is not reported."""
    src = (
        "import torch\nx = torch.tensor([1.0, 2.0], requires_grad=True)\ny = x * 3\n"
        "def double(g):\n    return g * 2\ny.register_hook(double)\nx.register_hook(print)\n"
        "(y ** 2).sum().backward()\n"
    )
    run = chainlens.run(src)
    (d,) = run.diagnostics
    assert (d.code, d.severity, d.line) == ("hook_changed_gradient", "info", 6)
    nodes = {n.id: n for n in run.nodes}
    assert nodes[d.node].grad_fn == "MulBackward0" and "y" in nodes[d.node].names
    steps = {nodes[s.node].grad_fn: s for s in run.passes[0].steps}
    dy = 2 * (torch.tensor([1.0, 2.0]) * 3)  # what PowBackward0 passes down to y
    assert steps["PowBackward0"].grad_inputs[0].values == dy.tolist()
    assert steps["MulBackward0"].grad_output.values == (2 * dy).tolist()
    assert run.stdout == run_plain(src).stdout


def test_a_hook_runs_under_the_program_limits() -> None:
    src = (
        "import torch\nx = torch.ones(2, requires_grad=True)\ny = x * 3\n"
        "def spin(g):\n    while True:\n        g = g + 1\ny.register_hook(spin)\n"
        "y.sum().backward()\n"
    )
    run = chainlens.run(src, settings=Settings(max_ops=500))
    assert run.status == "error" and run.error.code == "limit_exceeded"
    assert "max_ops=500" in run.error.message and run.error.line == 6


# program -> (code, line, words the message must hold: the numbers from PyTorch's message)
TOLD = {
    "import torch\nimport torch.nn as nn\nclass Net(nn.Module):\n    def __init__(self):\n"
    "        super().__init__()\n        self.fc1 = nn.Linear(256, 120)\n"
    "    def forward(self, x):\n        return self.fc1(x.view(x.size(0), -1))\n"
    "net = Net()\nout = net(torch.randn(64, 16, 5, 5))\n": (
        "shape_mismatch",
        8,
        ["nn.Linear(256, 120)", "400 features", "nn.Linear(400, 120)"],
    ),
    "import torch\na = torch.randn(2, 3)\nb = torch.randn(4, 3)\nc = a @ b\n": (
        "shape_mismatch",
        4,
        ["2×3", "4×3", "3 and 4"],
    ),
    "import torch\nz = torch.randn(3, 4) + torch.randn(3, 5)\n": (
        "shape_mismatch",
        2,
        ["sizes 4 and 5", "dimension 1"],
    ),
    "import torch\nimport torch.nn as nn\nc = nn.Conv2d(3, 6, 5)\ny = c(torch.randn(1, 1, 32, 32))\n": (
        "shape_mismatch",
        4,
        ["expects 3 input channels", "[1, 1, 32, 32]"],
    ),
    "import torch\ny = torch.randn(4, 5).view(3, -1)\n": (
        "shape_mismatch",
        2,
        ["20 elements", "[3, -1]"],
    ),
    "import torch\nimport numpy as np\nimport torch.nn as nn\n"
    "X = torch.from_numpy(np.random.rand(10, 2))\nnet = nn.Linear(2, 1)\nout = net(X)\n": (
        "dtype_mismatch",
        6,
        ["float64 and float32", "x.float()"],
    ),
    "import torch\nimport torch.nn as nn\nc = nn.Conv2d(1, 2, 3)\n"
    "y = c(torch.randn(1, 1, 5, 5, dtype=torch.float64))\n": (
        "dtype_mismatch",
        4,
        ["float64 and float32"],
    ),
    "import torch\nimport torch.nn.functional as F\n"
    "loss = F.cross_entropy(torch.randn(3, 4), torch.tensor([1.0, 2.0, 3.0]))\n": (
        "dtype_mismatch",
        3,
        ["class indices", "float32", "target.long()"],
    ),
    "import torch\nx = torch.ones(3, dtype=torch.long)\nx.mul_(0.5)\n": (
        "dtype_mismatch",
        3,
        ["float32 result in an int64 tensor"],
    ),
}


@pytest.mark.parametrize("source", sorted(TOLD))
def test_shape_and_dtype_errors_are_told_with_their_numbers(source: str) -> None:
    """The error is PyTorch's own (the oracle's); the diagnostic says it with the shapes."""
    code, line, words = TOLD[source]
    run = chainlens.run(source)
    oracle = run_plain(source)
    assert (
        oracle.error is not None
        and (run.error.type, run.error.message, run.error.line) == oracle.error
    )
    d = next(d for d in run.diagnostics if d.code == code)
    assert (d.severity, d.line) == ("error", line)
    for word in words:
        assert word in d.message + " " + d.hint, (word, d.message, d.hint)


MSE_BROADCAST = """import torch
import torch.nn as nn
import torch.nn.functional as F
net = nn.Linear(2, 1)
X = torch.randn(8, 2)
Y = torch.randn(8)
for i in range(3):
    loss = F.mse_loss(net(X), Y)
    net.zero_grad()
    loss.backward()
p = F.softmax(net(X))
"""


def test_warnings_that_mean_a_wrong_result_become_diagnostics() -> None:
    """PyTorch computes these programs (the numbers still match it) and only warns: the
    warning, which a notebook shows and chainlens would not, lands on its line once."""
    import warnings

    shown = warnings.showwarning
    run = chainlens.run(MSE_BROADCAST)
    assert_matches(run, run_plain(MSE_BROADCAST))
    assert warnings.showwarning is shown, "the run's warning hook outlived it"
    told = {d.code: d for d in run.diagnostics}
    assert [d.code for d in run.diagnostics] == ["loss_broadcast", "implicit_dim"]
    assert (told["loss_broadcast"].line, told["implicit_dim"].line) == (8, 11)
    assert "[8, 1]" in told["loss_broadcast"].message and "[8]" in told["loss_broadcast"].message
    fixed = MSE_BROADCAST.replace("Y)", "Y.view(-1, 1))").replace("(net(X))", "(net(X), dim=1)")
    assert chainlens.run(fixed).diagnostics == []


def test_a_shape_error_points_at_the_tensor_that_had_the_wrong_shape() -> None:
    source = (
        "import torch\nimport torch.nn as nn\nconv = nn.Conv2d(1, 4, 3)\n"
        "fc = nn.Linear(100, 10)\nh = conv(torch.randn(2, 1, 8, 8))\n"
        "flat = h.flatten(1)\nout = fc(flat)\n"
    )
    run = chainlens.run(source)
    flat = run_plain(source.replace("out = fc(flat)\n", "")).variables["flat"]
    d = next(d for d in run.diagnostics if d.code == "shape_mismatch")
    node = next(n for n in run.nodes if n.id == d.node)
    assert "flat" in node.names and node.value.shape == list(flat.shape)
    assert f"nn.Linear({flat.shape[1]}, 10)" in d.hint
