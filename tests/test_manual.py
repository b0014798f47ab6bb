"""Manual-backprop code: the generated numpy files are executed, and every gradient
they compute is compared with the engine's (which the oracle tests hold to PyTorch);
the numpy helpers they define are held to torch directly.

Tests run the generated code (the server never does): it is the product here.
"""

from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_page import load_example, run_and_wait

import chainlens
from chainlens import Client
from chainlens.examples.catalog import examples
from chainlens.explain.manual import ManualUnavailable, manual_code
from chainlens.explain.manual import helpers as H
from chainlens.settings import Settings

from oracle import decode
from programs import PROGRAMS

S = Settings()


def execute(code: str, tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "manual.py"
    path.write_text(code)
    with np.errstate(all="ignore"):
        return runpy.run_path(str(path))


def assert_close(mine: Any, view: Any, what: Any) -> None:
    """A gradient the file computed against the Run's view of it: every value when the
    Run carries them (64 elements or fewer), else its statistics."""
    a = np.asarray(mine, dtype=np.float64)
    assert list(a.shape) == view.shape, what
    if view.values is not None:
        b = np.asarray(decode(view.values), dtype=np.float64)
        finite = np.abs(b[np.isfinite(b)])
        scale = max(1.0, float(finite.max())) if finite.size else 1.0
        assert np.allclose(a, b, rtol=1e-4, atol=1e-5 * scale, equal_nan=True), (what, a, b)
    else:
        for name, f in (
            ("mean", np.mean),
            ("min", np.min),
            ("max", np.max),
            ("norm", np.linalg.norm),
        ):
            assert float(f(a)) == pytest.approx(
                float(getattr(view.stats, name)), rel=1e-3, abs=1e-5
            ), (what, name)


def compare_pass(run: chainlens.Run, index: int, ns: dict[str, Any]) -> int:
    """Every step of pass ``index``: a leaf's received gradient against GRADIENTS, any
    other node's upstream gradient against UPSTREAM. How many were compared."""
    nodes = {n.id: n for n in run.nodes}
    compared = 0
    for step in run.passes[index].steps:
        if step.grad_output is None:
            continue
        node = nodes[step.node]
        if node.kind == "leaf":
            # keyed by name, or by node id where the leaf has no name or shares it
            key = next(k for k in (node.id, *node.names) if k in ns["GRADIENTS"])
            mine = ns["GRADIENTS"][key]
        else:
            mine = ns["UPSTREAM"][step.node]
        assert_close(mine, step.grad_output, (index, step.node, node.grad_fn))
        compared += 1
    return compared


def check_program(source: str, tmp_path: Path, passes: str = "ends") -> int:
    run = chainlens.run(source)
    recorded = [p.index for p in run.passes if p.recorded]
    chosen = sorted({recorded[0], recorded[-1]}) if passes == "ends" and recorded else recorded
    compared = 0
    for k in chosen:
        ns = execute(manual_code(source, "cpu", 0, S, run.id, k), tmp_path)
        compared += compare_pass(run, k, ns)
        assert compared, f"pass {k} compared nothing"
    return compared


CUSTOM = {e.id for e in examples() if "autograd.Function" in e.source}
EXAMPLES = [e for e in examples() if e.id not in CUSTOM]


@pytest.mark.parametrize("ex", EXAMPLES, ids=lambda e: e.id)
def test_every_example_without_custom_functions(ex: Any, tmp_path: Path) -> None:
    """Every built-in example's passes are written out and match the engine's gradients,
    or the pass did not finish in the program either (the pitfalls)."""
    run = chainlens.run(ex.source)
    finished = [
        p for p in run.passes if p.recorded and (run.error is None or p.index < len(run.passes) - 1)
    ]
    for p in run.passes:
        if p not in finished:
            with pytest.raises(ManualUnavailable, match=f"pass {p.index + 1} did not finish"):
                manual_code(ex.source, "cpu", 0, S, run.id, p.index)
    for p in finished[:1] + finished[-1:]:
        ns = execute(manual_code(ex.source, "cpu", 0, S, run.id, p.index), tmp_path)
        assert compare_pass(run, p.index, ns) == len(p.steps)
    if not finished:
        assert run.error is not None or not run.passes, "an example without backward"


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_corpus_programs(name: str, tmp_path: Path) -> None:
    """The oracle corpus: each finished pass is written out and matches, or the reason it
    cannot be is one of the documented ones."""
    source = PROGRAMS[name]
    run = chainlens.run(source)
    if not run.passes:
        with pytest.raises(ManualUnavailable, match="no backward pass 1"):
            manual_code(source, "cpu", 0, S, run.id, 0)
        return
    try:
        assert check_program(source, tmp_path) > 0
    except ManualUnavailable as e:
        assert any(
            why in e.message
            for why in (
                "custom autograd.Function",
                "not made by an ATen op",
                "did not finish",
                "a hook the program registered",
                "ATen op _scaled_dot_product",  # fused attention kernels: one node, no formula
            )
        ), e.message


def test_every_pass_of_a_training_loop(tmp_path: Path) -> None:
    """Later passes start from the updated parameters, and their code says so."""
    source = next(e.source for e in examples() if e.id == "two_layer_adam")
    assert check_program(source, tmp_path, passes="all") == 5 * 10


def test_accumulation_is_written_out(tmp_path: Path) -> None:
    source = next(e.source for e in examples() if e.id == "accumulation")
    run = chainlens.run(source)
    code = manual_code(source, "cpu", 0, S, run.id, 1)
    assert "x.grad already held a gradient" in code
    ns = execute(code, tmp_path)
    x = torch.tensor([2.0, -1.0])
    assert ns["GRAD_AFTER"]["x"].tolist() == (2 * (2 * x)).tolist()


def test_file_runs_on_its_own_and_prints_the_gradients(tmp_path: Path) -> None:
    source = next(e.source for e in examples() if e.id == "chain_rule")
    path = tmp_path / "manual.py"
    path.write_text(manual_code(source, "cpu", 0, S, "r", 0))
    out = subprocess.run(
        [sys.executable, "-I", str(path)], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "dL/dx = [6. 6. 6.]"
    text = path.read_text()
    assert "import torch" not in text.split("# The program:")[1].split("import numpy")[1]
    # one line per node, in the engine's order: mean, mul, pow, add, then the leaf
    order = [line.split()[1] for line in text.splitlines() if line.startswith("# n")]
    assert order == ["n5", "n4", "n3", "n2", "n1"]


def test_reasons_it_cannot_be_written() -> None:
    custom = next(e.source for e in examples() if e.id in CUSTOM)
    with pytest.raises(ManualUnavailable, match="custom autograd.Function"):
        manual_code(custom, "cpu", 0, S, "r", 0)
    chain = next(e.source for e in examples() if e.id == "chain_rule")
    with pytest.raises(ManualUnavailable, match="no backward pass 4"):
        manual_code(chain, "cpu", 0, S, "r", 3)
    small = Settings(manual_max_nodes=3)
    with pytest.raises(ManualUnavailable, match="limit manual_max_nodes=3 exceeded"):
        manual_code(chain, "cpu", 0, small, "r", 0)
    lenet = next(e.source for e in examples() if e.id == "lenet")
    with pytest.raises(ManualUnavailable, match="limit manual_max_elements=1000 exceeded"):
        manual_code(lenet, "cpu", 0, Settings(manual_max_elements=1000), "r", 0)


# ------------------------------------------------------------------ the helpers vs torch
def t64(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, dtype=torch.float64, requires_grad=True)


def grads(y: torch.Tensor, g: torch.Tensor, *xs: torch.Tensor) -> list[np.ndarray]:
    return [t.numpy() for t in torch.autograd.grad(y, xs, g)]


@pytest.mark.parametrize("stride,padding", [((1, 1), (0, 0)), ((2, 1), (1, 2))])
def test_conv2d_helpers(stride: tuple[int, int], padding: tuple[int, int]) -> None:
    torch.manual_seed(0)
    x, w, b = t64(2, 3, 7, 6), t64(4, 3, 3, 2), t64(4)
    y = F.conv2d(x, w, b, stride, padding)
    g = torch.randn_like(y)
    gx, gw = grads(y, g, x, w)
    xn, wn, gn = x.detach().numpy(), w.detach().numpy(), g.numpy()
    assert np.allclose(H.conv2d(xn, wn, b.detach().numpy(), stride, padding), y.detach().numpy())
    assert np.allclose(H.conv2d_grad_input(gn, xn, wn, stride, padding), gx)
    assert np.allclose(H.conv2d_grad_weight(gn, xn, wn, stride, padding), gw)


def test_pooling_helpers() -> None:
    torch.manual_seed(1)
    x = t64(2, 3, 8, 7)
    y, _ = F.max_pool2d(x, (2, 3), (2, 2), (1, 1), return_indices=True)
    g = torch.randn_like(y)
    (gx,) = grads(y, g, x)
    mine, arg = H.max_pool2d(x.detach().numpy(), (2, 3), (2, 2), (1, 1))
    assert np.allclose(mine, y.detach().numpy())
    assert np.allclose(
        H.max_pool2d_grad(g.numpy(), x.detach().numpy(), arg, (2, 3), (2, 2), (1, 1)), gx
    )
    y = F.avg_pool2d(x, 2)
    g = torch.randn_like(y)
    (gx,) = grads(y, g, x)
    assert np.allclose(H.avg_pool2d(x.detach().numpy(), (2, 2), (2, 2)), y.detach().numpy())
    assert np.allclose(H.avg_pool2d_grad(g.numpy(), x.detach().numpy(), (2, 2), (2, 2)), gx)


def test_normalisation_helpers() -> None:
    torch.manual_seed(2)
    x, w, b = t64(4, 3, 2, 2), t64(3), t64(3)
    y = F.batch_norm(x, None, None, w, b, training=True, eps=1e-5)
    g = torch.randn_like(y)
    gx, gw = grads(y, g, x, w)
    xn, wn = x.detach().numpy(), w.detach().numpy()
    mine, stats = H.batch_norm(xn, wn, b.detach().numpy(), 1e-5)
    assert np.allclose(mine, y.detach().numpy())
    assert np.allclose(H.batch_norm_grad_input(g.numpy(), xn, wn, stats), gx)
    assert np.allclose((g.numpy() * H.batch_norm_xhat(xn, stats)).sum(axis=(0, 2, 3)), gw)
    x, w, b = t64(3, 4, 5), t64(4, 5), t64(4, 5)
    y = F.layer_norm(x, (4, 5), w, b)
    g = torch.randn_like(y)
    gx, gw = grads(y, g, x, w)
    xn, wn = x.detach().numpy(), w.detach().numpy()
    mine, stats = H.layer_norm(xn, 2, wn, b.detach().numpy(), 1e-5)
    assert np.allclose(mine, y.detach().numpy())
    assert np.allclose(H.layer_norm_grad_input(g.numpy(), xn, 2, wn, stats), gx)
    assert np.allclose((g.numpy() * H.layer_norm_xhat(xn, stats)).sum(axis=0), gw)


@pytest.mark.parametrize("size,scale", [((6, 6), 2.0), ((5, 7), None), ((7, 4), 2.5)])
def test_nearest_upsampling_helpers(size: tuple[int, int], scale: float | None) -> None:
    torch.manual_seed(4)
    x = t64(2, 3, 3, 4)
    if scale is None:
        y = F.interpolate(x, size=size, mode="nearest")
    else:
        y = F.interpolate(x, scale_factor=scale, mode="nearest")
    size = tuple(y.shape[2:])
    g = torch.randn_like(y)
    (gx,) = grads(y, g, x)
    scales = (scale, scale)
    xn = x.detach().numpy()
    assert np.array_equal(H.upsample_nearest2d(xn, size, scales), y.detach().numpy())
    assert np.allclose(H.upsample_nearest2d_grad(g.numpy(), xn.shape, size, scales), gx)


@pytest.mark.parametrize(
    "size,scale,corners",
    [
        ((6, 8), 2.0, False),
        ((5, 7), None, False),
        ((7, 3), None, True),
        ((1, 5), None, True),
        ((8, 9), 2.5, False),
    ],
)
def test_bilinear_upsampling_helpers(
    size: tuple[int, int], scale: float | None, corners: bool
) -> None:
    torch.manual_seed(5)
    x = t64(2, 3, 3, 4)
    if scale is None:
        y = F.interpolate(x, size=size, mode="bilinear", align_corners=corners)
    else:
        y = F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=corners)
    size = tuple(y.shape[2:])
    g = torch.randn_like(y)
    (gx,) = grads(y, g, x)
    scales = (scale, scale)
    xn = x.detach().numpy()
    assert np.allclose(H.upsample_bilinear2d(xn, size, corners, scales), y.detach().numpy())
    assert np.allclose(H.upsample_bilinear2d_grad(g.numpy(), xn.shape, size, corners, scales), gx)


def test_loss_and_misc_helpers() -> None:
    torch.manual_seed(3)
    logits = t64(5, 4)
    target = torch.tensor([0, 3, 1, 1, 2])
    logp = F.log_softmax(logits, 1)
    assert np.allclose(H.log_softmax(logits.detach().numpy(), 1), logp.detach().numpy())
    assert np.allclose(H.softmax(logits.detach().numpy(), 1), F.softmax(logits, 1).detach().numpy())
    masked = logits.detach().clone()
    masked[2] = float("-inf")  # a row masked everywhere: zeros, where softmax gives NaN
    mine = H.safe_softmax(masked.numpy(), 1)
    assert np.allclose(mine, torch.ops.aten._safe_softmax(masked, 1).numpy())
    assert not mine[2].any()
    for reduction, code in (("mean", 1), ("sum", 2), ("none", 0)):
        lp = logp.detach().requires_grad_(True)
        y = F.nll_loss(lp, target, reduction=reduction, ignore_index=1)
        g = torch.randn_like(y)
        (gx,) = grads(y, g, lp)
        mine, total = H.nll_loss(lp.detach().numpy(), target.numpy(), code, 1)
        assert np.allclose(mine, y.detach().numpy())
        assert np.allclose(
            H.nll_loss_grad(g.numpy(), lp.detach().numpy(), target.numpy(), code, 1, total), gx
        )
    x = t64(3, 1, 2)
    y = x.repeat(2, 2, 3, 1)
    g = torch.randn_like(y)
    (gx,) = grads(y, g, x)
    assert np.allclose(H.untile(g.numpy(), (3, 1, 2), (2, 2, 3, 1)), gx)
    x = torch.tensor([2.0, 0.0, -3.0, 0.5], dtype=torch.float64, requires_grad=True)
    (gx,) = grads(x.prod(), torch.tensor(1.0, dtype=torch.float64), x)
    assert np.allclose(H.prod_others(x.detach().numpy()), gx)
    x = t64(7)
    (gx,) = grads(F.gelu(x), torch.ones(7, dtype=torch.float64), x)
    assert np.allclose(H.gelu(x.detach().numpy()), F.gelu(x).detach().numpy())
    assert np.allclose(H.gelu_grad(x.detach().numpy()), gx)
    w, idx = t64(6, 3), torch.tensor([[1, 4], [1, 0]])
    y = F.embedding(idx, w, padding_idx=0)
    g = torch.randn_like(y)
    (gw,) = grads(y, g, w)
    assert np.allclose(H.embedding_grad(g.numpy(), idx.numpy(), 6, 0), gw)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_gather_and_scatter_helpers(dim: int) -> None:
    """Index tensors smaller than the input in the other dims, and repeated positions.
    (A scatter_add source larger than its index runs forward, but torch's backward then
    fails: "ScatterAddBackward0 returned an invalid gradient".)"""
    torch.manual_seed(4)
    x, src = t64(4, 5), t64(3, 4)
    index = torch.randint(0, x.shape[dim], (3, 4))
    y = torch.gather(x, dim, index)
    g = torch.randn_like(y)
    (gx,) = grads(y, g, x)
    n = index.numpy()
    assert np.allclose(x.detach().numpy()[H.along(n, dim % 2)], y.detach().numpy())
    zeros = np.zeros((4, 5))
    assert np.allclose(H.scatter_add(zeros, dim % 2, n, g.numpy()), gx)
    y = x.scatter_add(dim, index, src)
    g = torch.randn_like(y)
    gx, gs = grads(y, g, x, src)
    assert np.allclose(
        H.scatter_add(x.detach().numpy(), dim % 2, n, src.detach().numpy()), y.detach().numpy()
    )
    assert np.allclose(gx, g.numpy())
    assert np.allclose(H.gather_grad(g.numpy(), dim % 2, n, (3, 4)), gs)


@pytest.mark.parametrize("dim", [0, 1])
def test_index_add_and_select_helpers(dim: int) -> None:
    torch.manual_seed(5)
    x = t64(4, 5)
    index = torch.tensor([2, 0, 2])
    src = t64(*[3 if d == dim else x.shape[d] for d in range(2)])
    y = x.index_add(dim, index, src, alpha=0.5)
    g = torch.randn_like(y)
    gx, gs = grads(y, g, x, src)
    n = index.numpy()
    assert np.allclose(
        H.index_add(x.detach().numpy(), dim, n, src.detach().numpy(), 0.5), y.detach().numpy()
    )
    assert np.allclose(gx, g.numpy())
    assert np.allclose(0.5 * np.take(g.numpy(), n, axis=dim), gs)
    y = torch.index_select(x, dim, index)
    g = torch.randn_like(y)
    (gx,) = grads(y, g, x)
    assert np.allclose(H.index_select_grad(g.numpy(), dim, n, (4, 5)), gx)


# ------------------------------------------------------------------ over HTTP, on the page
def test_manual_endpoint(base_url: str, tmp_path: Path) -> None:
    client = Client(base_url)
    source = next(e.source for e in examples() if e.id == "two_layer_nn")
    run = client.run(source)
    r = httpx.get(f"{base_url}/api/v1/runs/{run.id}/manual.py", params={"pass": 2}, timeout=60)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/x-python")
    assert "pass3.py" in r.headers["content-disposition"]  # passes[2]: the third
    assert compare_pass(run, 2, execute(r.text, tmp_path)) == len(run.passes[2].steps)
    assert client.manual(run.id).startswith(
        f"# Manual backprop for chainlens run {run.id}, backward pass 1 "
    )
    url = f"{base_url}/api/v1/runs/{run.id}/manual.py"
    r = httpx.get(url, params={"pass": 9}, timeout=60)
    assert r.status_code == 400 and r.json()["error"]["code"] == "manual_unavailable"
    assert "no backward pass 10" in r.json()["error"]["message"]
    for bad in ("-1", "x", "99999999999"):
        assert httpx.get(url, params={"pass": bad}).status_code == 422
    assert httpx.get(f"{base_url}/api/v1/runs/nope/manual.py").status_code == 404
    custom = client.run(next(e.source for e in examples() if e.id in CUSTOM))
    r = httpx.get(f"{base_url}/api/v1/runs/{custom.id}/manual.py", timeout=60)
    assert r.status_code == 400 and "custom autograd.Function" in r.json()["error"]["message"]


def test_numpy_code_button_on_the_page(page, base_url: str) -> None:
    load_example(page, "chain_rule")
    run_and_wait(page)
    page.page.get_by_role("button", name="Numpy code").click()
    dialog = page.page.get_by_role("dialog", name="Manual backprop code")
    dialog.locator(".manual-code").wait_for(timeout=30_000)
    code = dialog.locator(".manual-code").inner_text()
    assert "grad_x = grad_y" in code and "GRADIENTS = {'x': grad_x}" in code
    download = dialog.get_by_role("link", name="Download")
    assert download.get_attribute("download").endswith("-pass1.py")
    page.screenshot("manual_code_dialog")
    dialog.get_by_role("button", name="Close").click()
    assert not dialog.is_visible()
    load_example(page, "custom_relu")
    run_and_wait(page)
    page.page.get_by_role("button", name="Numpy code").click()
    message = dialog.locator(".badge")
    message.wait_for(timeout=30_000)
    assert "custom autograd.Function" in message.inner_text()
    # the browser logs the 400 that carried the reason: expected here, and only here
    assert page.errors == [
        "Failed to load resource: the server responded with a status of 400 (Bad Request)"
    ]
    page.errors.clear()
