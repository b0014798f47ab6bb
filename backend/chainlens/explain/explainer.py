"""Each backward step's ``formula``: the rule for its grad_fn, its numbers, and whether
they reproduce what the engine computed.

Runs inside the engine's backward hooks, where the node's saved tensors are still
readable. Kinds: ``rule`` (a formula from ``formulas.py``), ``jacobian`` (no rule: the
node's Jacobian, built from the node itself), ``accumulate`` (a leaf's ``.grad +=``,
checked once the pass has finished), ``custom`` (the program's own backward, checked
against finite differences when the Function was applied).
"""

from __future__ import annotations

import contextlib
from typing import Any, cast

import torch
from torch.autograd.function import BackwardCFunction

from ..schema import (
    AccumulateFormulaDict,
    CustomFormulaDict,
    ElementLineDict,
    FormulaDict,
    JacobianFormulaDict,
    Letters,
    NoFormulaDict,
    RuleFormulaDict,
)
from ..tracing.summaries import number
from .formulas import (
    F64,
    GRAD_FN_RULES,
    MAX_JACOBIAN_ENTRIES,
    MAX_VERIFY_ELEMENTS,
    RULE_ERRORS,
    RUN_BUDGET_ELEMENTS,
    RUN_BUDGET_STEPS,
    SAME_KIND_VERIFIED,
    UNARY,
    Ctx,
    Explained,
    jacobian,
    size_of,
    verify,
)

_OVER_BUDGET = (
    "Not recomputed: this run's first {} steps were (the budget is "
    f"{RUN_BUDGET_STEPS} steps, {RUN_BUDGET_ELEMENTS:,} elements)."
)
#: ``x.grad += ...``: x is the leaf itself.
ACCUMULATE: Letters = {"x": "out"}
#: Jacobians at most this many rows and columns are written out as a matrix.
MATRIX_MAX = 8


def _num(x: float) -> str:
    if x != x:
        return r"\text{nan}"
    if x in (float("inf"), float("-inf")):
        return r"\infty" if x > 0 else r"-\infty"
    return f"{x:.4g}"


def _matrix(m: torch.Tensor) -> str:
    rows = [" & ".join(_num(float(v)) for v in row) for row in m]
    return r"\begin{bmatrix}" + r"\\ ".join(rows) + r"\end{bmatrix}"


def _scalar_steps(ctx: Ctx, explained: Explained) -> list[str]:
    """For a scalar step: upstream × local = downstream, with the numbers, each input
    written with its letter in the rule (which the page replaces by the program's name)."""
    up = ctx.upstream[0] if ctx.upstream else None
    if up is None or up.numel() != 1:
        return []
    grads = explained.grads
    letter = {v: k for k, v in reversed(explained.letters.items())}
    g = float(up.detach().to(F64).reshape(()))
    lines = []
    for i, mine in enumerate(grads):
        if (
            mine is None
            or mine.numel() != 1
            or i >= len(ctx.downstream)
            or ctx.downstream[i] is None
        ):
            continue
        d = float(mine.reshape(()))
        local = d / g if g != 0 else float("nan")
        name = letter.get(i, f"x_{{{i}}}")
        lines.append(
            rf"\frac{{\partial L}}{{\partial {name}}} = \underbrace{{{_num(g)}}}_{{\text{{upstream}}}}"
            rf" \times \underbrace{{{_num(local)}}}_{{\text{{local}}}} = {_num(d)}"
        )
    return lines


#: Elements of each input shown as upstream × local = downstream.
ELEMENT_LINES = 8


def _element_steps(ctx: Ctx, explained: Explained) -> list[ElementLineDict]:
    """For a step that acts element by element: its first elements as upstream × local =
    downstream, with the numbers: the engine's upstream and downstream, and the local
    derivative the verified formula computed from the node's saved tensors."""
    if explained.local is None or not ctx.upstream or ctx.upstream[0] is None:
        return []
    upstream = explained.spread if explained.spread is not None else ctx.g
    out: list[ElementLineDict] = []
    for i, local in enumerate(explained.local):
        # the downstream shown is the engine's own, not the formula's recomputation
        grad = ctx.downstream[i] if i < len(ctx.downstream) else None
        if (
            local is None
            or grad is None
            or local.shape != grad.shape
            or upstream.shape != grad.shape
        ):
            continue
        n = min(ELEMENT_LINES, grad.numel())
        # (a slice of each as Python floats: per-element tensor reads and torch's
        # unravel_index cost 0.7 ms of a 5 ms chain-rule run)
        u, lo, d = (
            t.reshape(-1)[:n].tolist()
            for t in (upstream, local.to(F64), grad.detach().to("cpu", F64))
        )
        for k in range(n):
            out.append(
                {
                    "input": i,
                    "index": _unravel(k, grad.shape),
                    "upstream": number(u[k]),
                    "local": number(lo[k]),
                    "downstream": number(d[k]),
                }
            )
    return out


def _unravel(k: int, shape: torch.Size) -> list[int]:
    """The index of the ``k``-th element, row-major."""
    index = []
    for size in reversed(shape):
        k, r = divmod(k, size)
        index.append(r)
    return index[::-1]


class Explainer:
    """Builds step formulas during backward; keeps what can only be checked later."""

    def __init__(self, gpu_run: bool = False) -> None:
        #: Rules make tensors with factory functions: on the CPU, also in a run whose
        #: default device is a GPU (known once here, not asked at every step).
        self._host = torch.device("cpu") if gpu_run else contextlib.nullcontext()
        self._pending: list[
            tuple[AccumulateFormulaDict, tuple, torch.Tensor, torch.Tensor | None, torch.Tensor]
        ] = []
        #: node id -> result of the finite-difference check made when a custom Function ran.
        self.custom_checks: dict[str, dict[str, Any]] = {}
        #: custom Function class name -> the source of its backward method.
        self.custom_code: dict[str, str] = {}
        #: grad_fn type -> (latex, text, letters) of its rule, for steps past the budget.
        self._seen_rules: dict[str, tuple[str, str, Letters]] = {}
        #: (grad_fn type, shapes of upstream and downstream) -> steps of it verified.
        self._kinds_verified: dict[tuple, int] = {}
        #: (grad_fn type, note) -> the formula of a step not recomputed (copied per step).
        self._unchecked_formulas: dict[tuple[str, str], RuleFormulaDict] = {}
        self._steps = 0
        self._elements = 0

    def __call__(
        self, node: Any, nid: str, upstream: tuple, downstream: tuple
    ) -> FormulaDict | None:
        """The step's formula. Never raises: an explanation that fails is left out, and the
        user's program runs on as PyTorch would run it."""
        try:
            with self._host:
                return self._explain(node, nid, upstream, downstream)
        except Exception:  # noqa: BLE001 - see the docstring
            return None

    def _explain(
        self, node: Any, nid: str, upstream: tuple, downstream: tuple
    ) -> FormulaDict | None:
        if node is None:
            return None
        name = type(node).__name__
        if name == "AccumulateGrad":
            return self._accumulate(node, upstream)
        # (an isinstance check: getattr with a default on a C++ node raises inside, 2 µs)
        forward_cls = cast(Any, node)._forward_cls if isinstance(node, BackwardCFunction) else None
        if forward_cls is not None and (
            getattr(forward_cls, "chainlens_user", False)
            or forward_cls.__name__ in self.custom_code  # (recorded in its own process)
        ):
            return self._custom(forward_cls, nid, upstream, downstream)
        if all(u is None for u in upstream):
            return None
        if self._steps >= RUN_BUDGET_STEPS:  # the common case in a long run: answer at once
            return self._unchecked(name, self._over_budget)
        kind = (name, *[None if t is None else t.shape for t in upstream + downstream])
        seen = self._kinds_verified.get(kind, 0)
        if seen >= SAME_KIND_VERIFIED:
            return self._unchecked(
                name,
                f"Not recomputed: the {seen} {name} steps before it on "
                "the same shapes were, and each reproduced the engine's "
                "gradients.",
            )
        ctx = Ctx(node, upstream, downstream)
        size = size_of(ctx)
        if size > MAX_VERIFY_ELEMENTS:
            return self._unchecked(
                name,
                f"Not recomputed: this step has {size:,} elements "
                f"(more than {MAX_VERIFY_ELEMENTS:,}).",
            )
        if self._elements + size > RUN_BUDGET_ELEMENTS:
            return self._unchecked(name, self._over_budget)
        self._steps += 1
        self._elements += size
        out = self._recomputed(ctx, name)
        if out["verified"]:
            self._kinds_verified[kind] = seen + 1
        return out

    def _recomputed(
        self, ctx: Ctx, name: str
    ) -> RuleFormulaDict | JacobianFormulaDict | NoFormulaDict:
        """The step's formula with its numbers recomputed: the rule for its grad_fn, or its
        Jacobian where there is none."""
        rule = GRAD_FN_RULES.get(name)
        explained: Explained | None = None
        if rule is not None:
            try:
                explained = rule(ctx)
            except RULE_ERRORS:
                explained = None
        if explained is None:
            return self._jacobian(ctx, name)
        self._seen_rules[name] = (explained.latex, explained.text, explained.letters)
        steps = _scalar_steps(ctx, explained)
        elements = None if steps else _element_steps(ctx, explained)
        return {
            "latex": explained.latex,
            "text": explained.text,
            "verified": verify(explained.grads, ctx.downstream),
            "note": explained.note or None,
            "letters": explained.letters,
            "kind": "rule",
            "steps": steps or None,
            "elements": elements or None,
        }

    @property
    def _over_budget(self) -> str:
        return _OVER_BUDGET.format(self._steps)

    def _unchecked(self, name: str, note: str) -> RuleFormulaDict:
        """The rule's formula without numbers, when recomputing it would cost too much or
        tell nothing new (made once per note: thousands of steps share a few)."""
        formula = self._unchecked_formulas.get((name, note))
        if formula is None:
            latex, text, letters = self._seen_rules.get(name, (rf"\text{{{name}}}", name, {}))
            formula = self._unchecked_formulas[(name, note)] = {
                "latex": latex,
                "text": text,
                "verified": False,
                "note": note,
                "letters": letters,
                "kind": "rule",
                "steps": None,
                "elements": None,
            }
        return formula.copy()

    def _jacobian(self, ctx: Ctx, name: str) -> JacobianFormulaDict | NoFormulaDict:
        try:
            result = jacobian(ctx)
        except (RuntimeError, TypeError, ValueError):
            result = None
        if result is None:
            return {
                "latex": rf"\text{{{name}: no formula}}",
                "text": f"{name}: no formula",
                "verified": False,
                "note": f"No formula for {name}, and its Jacobian is larger than "
                f"{MAX_JACOBIAN_ENTRIES} entries.",
                "letters": None,
                "kind": "none",
            }
        J = result["J"]
        shown = (
            _matrix(J)
            if max(J.shape) <= MATRIX_MAX
            else rf"J \in \mathbb{{R}}^{{{J.shape[0]}\times{J.shape[1]}}}"
        )
        return {
            "latex": r"\frac{\partial L}{\partial x} = J^{\top}\frac{\partial L}{\partial y},\quad J = "
            + shown,
            "text": "dL/dx = J.T @ dL/dy (the Jacobian of this node)",
            "letters": UNARY,
            "verified": verify(result["grads"], ctx.downstream),
            "kind": "jacobian",
            "jacobian": J.tolist() if J.numel() <= 256 else None,
            "note": f"No hand-written formula for {name}: its Jacobian, one row per output "
            "element, computed from the node itself.",
        }

    def _accumulate(self, node: Any, upstream: tuple) -> AccumulateFormulaDict | None:
        up = upstream[0] if upstream else None
        var = getattr(node, "variable", None)
        if up is None or var is None:
            return None
        had = var.grad is not None
        kind = ("AccumulateGrad", up.shape, had)
        seen = self._kinds_verified.get(kind, 0)
        # a training loop's thousandth step adds what its first 32 added, checked: the
        # copies and the comparison cost 0.4 ms a pass in makemore's loop (5 leaves)
        checked = seen < SAME_KIND_VERIFIED
        old = var.grad.detach().clone() if had and checked else None
        out: AccumulateFormulaDict = {
            "latex": (
                r"x.\mathrm{grad} \leftarrow x.\mathrm{grad} + \frac{\partial L}{\partial x}"
                if had
                else r"x.\mathrm{grad} \leftarrow \frac{\partial L}{\partial x}"
            ),
            "text": "x.grad = x.grad + dL/dx" if had else "x.grad = dL/dx",
            "verified": False,
            "kind": "accumulate",
            "letters": ACCUMULATE,
            "note": (
                "x.grad already held a gradient from an earlier backward: this one adds to it."
                if had and bool(var.grad.any())
                else "A leaf stores the gradient that reached it in .grad."
            ),
        }
        if checked:
            self._pending.append((out, kind, var, old, up.detach().clone()))
        else:
            out["note"] = (
                f"{out['note']} Not recomputed: the {seen} steps before it that stored a "
                "gradient of this shape this way were, and each matched."
            )
        return out

    def end_pass(self) -> None:
        """After backward returned: each leaf's .grad must be its old value plus upstream."""
        for out, kind, var, old, up in self._pending:
            g = var.grad
            if g is None:
                continue
            expected = up.to(F64) if old is None else old.to(F64) + up.to(F64)
            out["verified"] = verify([expected], [g])
            if out["verified"]:
                self._kinds_verified[kind] = self._kinds_verified.get(kind, 0) + 1
        self._pending.clear()

    def _custom(self, cls: type, nid: str, upstream: tuple, downstream: tuple) -> CustomFormulaDict:
        name = cls.__name__
        check = self.custom_checks.get(nid)
        return {
            "latex": rf"\frac{{\partial L}}{{\partial x}} = \texttt{{{name}.backward}}\left(\frac{{\partial L}}{{\partial y}}\right)",
            "text": f"dL/dx = {name}.backward(ctx, dL/dy): your code",
            "verified": bool(check and check["ok"]),
            "note": "Not checked: its inputs were too large for finite differences."
            if check is None
            else "Checked against finite differences when the Function ran: "
            + ("they agree." if check["ok"] else "they DISAGREE."),
            "letters": UNARY,
            "kind": "custom",
            "code": self.custom_code.get(name, ""),
            "check": None
            if check is None
            else {"analytic": check["analytic"], "numeric": check["numeric"]},
        }
