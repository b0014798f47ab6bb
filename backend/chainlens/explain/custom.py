"""Custom autograd Functions: their backward shown as the program wrote it, and checked
against finite differences each time one is applied.

A hand-written backward is the one place a program can make autograd wrong; this
is where a course says "always gradcheck it". The check perturbs each input element
of the call (float64 copies when the Function accepts them) and compares the
numerical vector-Jacobian products with the ones the user's backward returns, for the
all-ones vector (the gradient of ``out.sum()``, the numbers reported) and a random one.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any, cast

import torch

from ..tracing.recorder import Recorder
from .diagnostics import Diagnostics
from .explainer import Explainer

#: The first calls of each custom autograd.Function are checked by finite differences.
CHECKS_PER_CLASS = 3
#: Inputs with more elements than this (all together) are not checked.
MAX_CHECK_ELEMENTS = 256
#: Finite-difference step and tolerance, in float64 and (fallback) float32.
EPS = {torch.float64: 1e-6, torch.float32: 1e-3}
TOL = {torch.float64: 1e-5, torch.float32: 2e-2}


def custom_backward_code(tree: ast.Module, source: str) -> dict[str, str]:
    """Class name -> the source of its ``backward`` method, for each class defining one."""
    out: dict[str, str] = {}
    for node in tree.body:  # classes are defined at the top level of a program
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "backward":
                    out[node.name] = ast.get_source_segment(source, item) or ""
    return out


def _vjp(
    apply: Callable[..., Any], inputs: list[torch.Tensor], v: torch.Tensor
) -> list[torch.Tensor] | None:
    xs = [x.detach().clone().requires_grad_(True) for x in inputs]
    with torch.enable_grad():
        out = apply(*xs)
    if not isinstance(out, torch.Tensor) or out.shape != v.shape:
        return None
    grads = torch.autograd.grad(out, xs, v.to(out.dtype), allow_unused=True)
    return [
        g.detach() if g is not None else torch.zeros_like(x) for g, x in zip(grads, xs, strict=True)
    ]


def _numeric(
    apply: Callable[..., Any], inputs: list[torch.Tensor], v: torch.Tensor, eps: float
) -> list[torch.Tensor]:
    grads = []
    with torch.no_grad():
        for k, x in enumerate(inputs):
            g = torch.zeros_like(x)
            flat = g.reshape(-1)
            for i in range(x.numel()):
                shifted = []
                for sign in (1, -1):
                    xk = x.detach().clone()
                    xk.reshape(-1)[i] += sign * eps
                    args = [xk if j == k else y for j, y in enumerate(inputs)]
                    shifted.append((apply(*args).to(v.dtype) * v).sum())
                flat[i] = (shifted[0] - shifted[1]) / (2 * eps)
            grads.append(g)
    return grads


def check_custom(apply: Callable[..., Any], args: list[Any], out: Any) -> dict[str, Any] | None:
    """Analytic vs numerical VJP for one call of a custom Function; None when not checkable."""
    tensors = [
        a for a in args if isinstance(a, torch.Tensor) and a.requires_grad and a.is_floating_point()
    ]
    if (
        not tensors
        or len(tensors) != sum(isinstance(a, torch.Tensor) for a in args)
        or not isinstance(out, torch.Tensor)
        or sum(t.numel() for t in tensors) > MAX_CHECK_ELEMENTS
    ):
        return None
    gen = torch.Generator().manual_seed(0)
    for dtype in (torch.float64, torch.float32):
        inputs = [t.detach().to(dtype) for t in tensors]
        # ones: dL/dx of out.sum(), the numbers people read; random: catches what ones hides
        vs = [
            torch.ones(out.shape, dtype=dtype, device=out.device),
            torch.randn(out.shape, generator=gen, dtype=dtype, device="cpu").to(out.device),
        ]
        try:
            pairs = []
            for v in vs:
                analytic = _vjp(apply, inputs, v)
                if analytic is None:
                    return None
                pairs.append((analytic, _numeric(apply, inputs, v, EPS[dtype])))
        except (RuntimeError, TypeError):
            continue
        ok = all(
            torch.allclose(
                a.to(torch.float64), n.to(torch.float64), rtol=TOL[dtype], atol=TOL[dtype]
            )
            for analytic, numeric in pairs
            for a, n in zip(analytic, numeric, strict=True)
        )
        analytic, numeric = pairs[0]
        return {
            "ok": ok,
            "analytic": [a.tolist() for a in analytic],
            "numeric": [n.tolist() for n in numeric],
        }
    return None


class CustomChecks:
    """``ProgramHooks.on_custom_apply``: each program-defined Function, the first
    ``CHECKS_PER_CLASS`` times it is applied, checked by finite differences; the result
    goes to the explainer (its steps' formulas) and, when they disagree, a diagnostic."""

    def __init__(
        self,
        recorder: Recorder,
        explainer: Explainer,
        diagnostics: Diagnostics,
        line: Callable[[], int | None],
    ) -> None:
        self.recorder = recorder
        self.explainer = explainer
        self.diagnostics = diagnostics
        self.line = line
        self._checked: dict[str, int] = {}

    def __call__(self, apply: Callable, args: list[Any], result: Any) -> None:
        """A program-defined Function just ran: compare its backward with finite differences."""
        nid = self.recorder.node_of(result) if isinstance(result, torch.Tensor) else None
        cls = cast(Any, apply).__self__.__name__  # (a Function's apply, bound to its class)
        if nid is None or self._checked.get(cls, 0) >= CHECKS_PER_CLASS:
            return
        self._checked[cls] = self._checked.get(cls, 0) + 1
        with self.recorder.pause():
            check = check_custom(apply, args, result)
        if check is None:
            return
        self.explainer.custom_checks[nid] = check
        if not check["ok"]:
            self.diagnostics.custom_backward_mismatch(
                cls, nid, self.line(), check["analytic"], check["numeric"]
            )
