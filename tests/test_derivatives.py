"""Each derivative in ``explain/derivatives.py`` against PyTorch: its local derivative
(as a formula computes it, in torch) is what autograd computes, and the numpy lines the
manual file writes from the same entry compute torch's forward and gradient."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from chainlens.explain.derivatives import (
    BINARIES,
    NP,
    PRODUCTS,
    UNARIES,
    Binary,
    Product,
    Sym,
    Unary,
)


def _op(name: str):
    return getattr(torch, name, None) or getattr(F, name)


def _run_numpy(code: Sym, **arrays: np.ndarray) -> np.ndarray:
    """The written line, evaluated as the manual file would run it (a test, not the server)."""
    return eval(str(code), {"np": np, **arrays})  # noqa: S307 - our own generated code


@pytest.mark.parametrize("d", UNARIES, ids=lambda d: d.name)
def test_unary_forward_and_derivative_are_torchs(d: Unary) -> None:
    torch.manual_seed(0)
    # inside every entry's domain (log, sqrt, rsqrt, reciprocal), away from relu's and abs's kink
    x = (torch.rand(7, dtype=torch.float64) + 0.5) * torch.tensor([1, -1] * 3 + [1])
    if d.name in ("log", "sqrt", "rsqrt", "log1p"):
        x = x.abs()
    x.requires_grad_(True)
    y = _op(d.name)(x)
    g = torch.linspace(-1, 2, 7, dtype=torch.float64)
    (expected,) = torch.autograd.grad(y, x, g)
    x0, y0 = x.detach(), y.detach()

    local = torch.as_tensor(d.local(SimpleNamespace(x=x0, y=y0), torch)).to(torch.float64)
    assert torch.allclose(g * local, expected)

    a, yn, gn = x0.numpy(), y0.numpy(), g.numpy()
    forward = d.forward(Sym("a"), NP)
    grad = Sym("g") * d.local(SimpleNamespace(x=Sym("a"), y=Sym("y")), NP)
    assert np.allclose(_run_numpy(forward, a=a), yn)
    assert np.allclose(_run_numpy(grad, a=a, y=yn, g=gn), expected.numpy())


@pytest.mark.parametrize("d", BINARIES, ids=lambda d: d.name)
@pytest.mark.parametrize("b_is_number", [False, True], ids=["tensor", "number"])
def test_binary_forward_and_derivatives_are_torchs(d: Binary, b_is_number: bool) -> None:
    torch.manual_seed(1)
    a = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    b_value = -1.5 if b_is_number else torch.rand(2, 3, dtype=torch.float64) + 0.5
    b = torch.as_tensor(b_value, dtype=torch.float64).requires_grad_(not b_is_number)
    y = _op(d.name)(a, b)
    g = torch.randn(2, 3, dtype=torch.float64)
    grads = torch.autograd.grad(y, [a] if b_is_number else [a, b], g)
    o = SimpleNamespace(a=a.detach(), b=b.detach())

    assert torch.allclose(g * d.local_a(o, torch), grads[0])
    if not b_is_number:
        assert torch.allclose(g * d.local_b(o, torch), grads[1])

    b_code = Sym.of(b_value) if b_is_number else Sym("b")
    s = SimpleNamespace(a=Sym("a"), b=b_code)
    arrays = {"a": o.a.numpy(), "b": o.b.numpy(), "g": g.numpy()}
    assert np.allclose(_run_numpy(d.forward(s.a, s.b, NP), **arrays), y.detach().numpy())
    assert np.allclose(_run_numpy(Sym("g") * d.local_a(s, NP), **arrays), grads[0].numpy())


def test_sym_parenthesises_only_where_python_binds_otherwise() -> None:
    a, b, c = Sym("a"), Sym("b"), Sym("c")
    assert str(a - (b - c)) == "a - (b - c)"
    assert str((a - b) - c) == "a - b - c"
    assert str(a * (b + c)) == "a * (b + c)"
    assert str(-(a + b)) == "-(a + b)"
    assert str((a**b) ** c) == "(a ** b) ** c"
    assert str(a ** (b**c)) == "a ** b ** c"
    assert str(Sym.of(-2.0) ** 2) == "(-2.0) ** 2"
    assert str(1 / (2 * a)) == "1 / (2 * a)"


@pytest.mark.parametrize("d", PRODUCTS, ids=lambda d: d.name)
def test_product_gradients_are_torchs(d: Product) -> None:
    torch.manual_seed(2)
    shapes = {"mm": ((3, 4), (4, 2)), "mv": ((3, 4), (4,)), "dot": ((4,), (4,))}
    shape_a, shape_b = shapes.get(d.name, ((2, 3, 4), (2, 4, 5)))
    a = torch.randn(shape_a, dtype=torch.float64, requires_grad=True)
    b = torch.randn(shape_b, dtype=torch.float64, requires_grad=True)
    y = _op(d.name)(a, b)
    g = torch.randn(y.shape, dtype=torch.float64)
    ga, gb = torch.autograd.grad(y, [a, b], g)
    o = SimpleNamespace(a=a.detach(), b=b.detach())
    assert torch.allclose(d.grad_a(g, o, torch), ga)
    assert torch.allclose(d.grad_b(g, o, torch), gb)

    arrays = {"a": o.a.numpy(), "b": o.b.numpy(), "g": g.numpy()}
    s = SimpleNamespace(a=Sym("a"), b=Sym("b"))
    assert np.allclose(_run_numpy(d.forward(s.a, s.b, NP), **arrays), y.detach().numpy())
    assert np.allclose(_run_numpy(d.grad_a(Sym("g"), s, NP), **arrays), ga.numpy())
    assert np.allclose(_run_numpy(d.grad_b(Sym("g"), s, NP), **arrays), gb.numpy())
