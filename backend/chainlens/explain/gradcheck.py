"""Finite-difference checks of one gradient, on request (``POST /runs/{id}/check``).

The Run holds summaries, not live tensors, so a check runs the program again, with its
seed and in its own types: the same random draws, the same parameter values at every
pass, so the analytic side is the Run's gradient itself (compared with it, element for
element, when the caller passes the Run's views).

- a **leaf** in pass k: each checked element of the leaf is nudged by ±eps just before
  pass k's forward (at the first statement after pass k-1, where the leaf is bound to
  its name), the program runs on to pass k's ``backward``, and the root's value there
  (times the pass's gradient, for a non-scalar root) gives the central difference, in
  the program's own type; the tolerance allows for that type's rounding of the root;
- a **step** (any other node) in pass k: the library call that created the node is
  captured, and each input's gradient, ∂L/∂y times the node's local derivative, is
  compared with central differences of that call made again on the same numbers
  widened to float64 (drawn as the program drew them, then widened).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ..engine import Execution, resolve_device
from ..errors import ChainlensError
from ..settings import Settings
from ..tracing.summaries import number, view
from .rerun import Stop, rerun

EPS = {torch.float64: 1e-6, torch.float32: 1e-3}
#: Relative tolerance by (the analytic side's type, the finite differences' type).
TOLERANCE = {
    (torch.float64, torch.float64): 1e-5,
    (torch.float32, torch.float64): 1e-3,
    (torch.float32, torch.float32): 2e-2,
    (torch.float64, torch.float32): 2e-2,
}
#: Rounding of f(x±eps) allowed for, in units of the type's epsilon times |f|.
ROUNDING_ULPS = 4


class CheckFailed(ChainlensError):
    """The check could not be made (HTTP 400): unknown node, pass not reached, ..."""

    code = "check_failed"


@dataclass
class _Checked:
    """One gradient under check: the input it belongs to (its node, where it has one),
    and autograd's value of it."""

    name: str
    node: str | None
    tensor: torch.Tensor
    analytic: torch.Tensor | None = None


@dataclass
class _Target:
    node: str
    pass_index: int | None
    elements: int
    kind: str = ""
    name: str = ""
    #: the library call that created a step's node: (fn, args, kwargs, output)
    call: tuple[Callable, list[Any], dict[str, Any], torch.Tensor] | None = None
    checked: list[dict[str, Any]] = field(default_factory=list)
    leaf: torch.Tensor | None = None
    analytic: torch.Tensor | None = None
    #: a step's finite differences: the type they ran in
    numeric_dtype: torch.dtype = torch.float64
    #: a step's gradients under check, in ``checked``'s order
    gradients: list[_Checked] = field(default_factory=list)


def _indices(numel: int, k: int) -> list[int]:
    """``k`` flat indices spread evenly over ``numel`` elements (all of them when fewer)."""
    if numel <= k:
        return list(range(numel))
    return sorted({round(i * (numel - 1) / (k - 1)) for i in range(k)}) if k > 1 else [0]


def _objective(roots: list[torch.Tensor], gradient: torch.Tensor | None) -> torch.Tensor:
    """The scalar whose derivative the pass computes: the roots summed, the first one
    times the pass's gradient when it was given one."""
    first = roots[0].sum() if gradient is None else (roots[0] * gradient.to(roots[0].dtype)).sum()
    return sum((r.sum() for r in roots[1:]), first)


def _resolve(ex: Execution, name: str) -> torch.Tensor | None:
    """The tensor a leaf's name refers to now: ``w`` or a parameter ``net.fc1.weight``."""
    head, _, rest = name.partition(".")
    obj = ex.interp.globals.vars.get(head)
    if rest:
        params = getattr(obj, "named_parameters", None)
        obj = dict(params()).get(rest) if callable(params) else None
    return obj if isinstance(obj, torch.Tensor) else None


@dataclass
class _Differences:
    """f(x+h), f(x), f(x-h) at each checked element, with the steps h really taken (x+eps
    rounds in the leaf's type) and the rounding each value may carry."""

    up: list[float]
    mid: list[float]
    down: list[float]
    h_up: list[float]
    h_down: list[float]
    rounding: list[float]


def _tensor_check(
    name: str, shape: list[int], idx: list[int], analytic: torch.Tensor, d: _Differences, tol: float
) -> dict[str, Any]:
    """Compare autograd with central differences. Where the two one-sided slopes disagree
    the function has a kink there (ReLU at 0, a max over equal values): the element is
    shown but not judged. An element is within tolerance when ``|a - n| <= tol * max(1,
    |a|, |n|)`` plus what rounding f(x±h) in its type can account for."""
    a = analytic.detach().reshape(-1).to("cpu", torch.float64)
    elements, worst, all_ok = [], 0.0, True
    for k, i in enumerate(idx):
        up, mid, down, hu, hd = d.up[k], d.mid[k], d.down[k], d.h_up[k], d.h_down[k]
        n = (up - down) / (hu + hd)
        right, left = (up - mid) / hu, (mid - down) / hd
        noise = d.rounding[k] / min(hu, hd)
        kink = abs(right - left) > tol * max(1.0, abs(right), abs(left)) + 4 * noise
        ai = float(a[i])
        ok = True
        if not kink:
            error = abs(ai - n)
            ok = error <= tol * max(1.0, abs(ai), abs(n)) + noise  # NaN compares False
            worst = max(worst, error) if error == error else math.nan
            all_ok = all_ok and ok
        where = (
            [int(v) for v in torch.unravel_index(torch.tensor(i), tuple(shape))] if shape else []
        )
        elements.append(
            {"index": where, "analytic": number(ai), "numeric": number(n), "kink": kink, "ok": ok}
        )
    return {
        "name": name,
        "shape": shape,
        "elements": elements,
        "max_error": number(worst),
        "ok": all_ok,
    }


def _rounding(dtype: torch.dtype, *values: float) -> float:
    """How far rounding in ``dtype`` may have moved the largest of ``values``."""
    return ROUNDING_ULPS * torch.finfo(dtype).eps * max(abs(v) for v in values)


def matches_run(analytic: torch.Tensor, expected: dict[str, Any] | None) -> bool | None:
    """Whether a gradient is the Run's (its TensorView ``expected``): every value where
    the Run holds them, else its statistics. None: the Run did not record it."""
    if not expected:
        return None
    got = view(analytic)
    if got["shape"] != expected.get("shape"):
        return False
    if expected.get("values") is not None:
        return got["values"] == expected["values"]
    want, have = expected.get("stats") or {}, got["stats"]
    if not want or have is None:
        return None
    if any(have[k] != want.get(k) for k in ("min", "max", "nan", "inf")):
        return False
    mean, ref = have["mean"], want.get("mean")
    if isinstance(mean, float) and isinstance(ref, float):
        return abs(mean - ref) <= 1e-6 * (1 + abs(ref))
    return mean == ref


class _Probe:
    """What the engine calls back during a re-run (``Execution.probe``)."""

    def __init__(self, target: _Target, nudge: tuple[int, float] | None = None) -> None:
        self.t = target
        self.nudge = nudge
        #: the step really taken: x + eps rounds in the leaf's type
        self.step: float | None = None
        self.ex: Execution

    def on_statement(self) -> None:
        """Nudge the leaf once pass k is next, at its first statement where it exists."""
        if (
            self.nudge is None
            or self.step is not None
            or len(self.ex.recorder.losses) != self.t.pass_index
        ):
            return
        leaf = _resolve(self.ex, self.t.name)
        if leaf is not None and leaf.is_leaf:
            with torch.no_grad():
                element = leaf.view(-1)[self.nudge[0]]
                before = float(element)
                element += self.nudge[1]
                self.step = abs(float(element) - before)

    def on_result(
        self, fn: Callable, args: Sequence[Any], kwargs: dict[str, Any], out: Any
    ) -> None:
        if (
            self.t.call is None
            and isinstance(out, torch.Tensor)
            and out.grad_fn is not None
            and self.ex.recorder.node_of(out) == self.t.node
        ):
            owner = getattr(fn, "__self__", None)
            if isinstance(owner, torch.Tensor):  # x.pow(2): the tensor is an input too
                fn, args = getattr(torch.Tensor, fn.__name__), [owner, *args]
            self.t.call = (fn, list(args), dict(kwargs), out)

    def at_pass(
        self,
        index: int,
        node_ids: set[str],
        roots: list[torch.Tensor],
        gradient: torch.Tensor | None,
    ) -> None:
        t = self.t
        if self.nudge is not None:
            if index == t.pass_index:
                raise Stop(float(_objective(roots, gradient).detach().to("cpu", torch.float64)))
            return
        if t.node not in node_ids or (t.pass_index is not None and index != t.pass_index):
            return
        t.pass_index = index
        rec = self.ex.recorder.nodes.get(t.node)
        self.ex.recorder.paused = True  # what follows is the check's, not the program's
        objective = _objective(roots, gradient)
        if rec is not None and rec.kind == "leaf":
            t.kind, t.name = "leaf", rec.names[0] if rec.names else ""
            t.leaf = _resolve(self.ex, t.name) if t.name else None
            if t.leaf is None or self.ex.recorder.node_of(t.leaf) != t.node:
                raise CheckFailed(
                    f"leaf {t.node} is not bound to a name the program can look "
                    "up again, so it cannot be nudged"
                )
            (t.analytic,) = torch.autograd.grad(
                objective, [t.leaf], retain_graph=True, allow_unused=True
            )
        else:
            t.kind = "step"
            self._check_step(objective)
        raise Stop()

    def _check_step(self, objective: torch.Tensor) -> None:
        t = self.t
        if t.call is None:
            raise CheckFailed(
                f"node {t.node} was made inside a layer, together with other "
                "nodes: check that layer's output node or its parameters instead"
            )
        fn, args, kwargs, out = t.call
        if "dropout" in getattr(fn, "__name__", type(fn).__name__).lower():
            raise CheckFailed(
                "dropout draws a new random mask on every call: its step "
                "cannot be checked by calling it again"
            )
        (upstream,) = torch.autograd.grad(objective, [out], retain_graph=True, allow_unused=True)
        upstream = torch.zeros_like(out) if upstream is None else upstream.detach()
        rec = self.ex.recorder
        positions: list[int] = []
        for position, a in enumerate(args):
            if isinstance(a, torch.Tensor) and a.requires_grad and a.is_floating_point():
                node = rec.nodes.get(rec.node_of(a) or "")
                name = node.names[0] if node is not None and node.names else f"input {position}"
                positions.append(position)
                t.gradients.append(_Checked(name, node.id if node is not None else None, a))
        params = list(fn.named_parameters()) if isinstance(fn, torch.nn.Module) else []
        t.gradients += [_Checked(pname, None, p) for pname, p in params]
        if not t.gradients:
            raise CheckFailed(f"node {t.node}'s call has no input that requires grad")
        analytic = torch.autograd.grad(
            out, [g.tensor for g in t.gradients], upstream, retain_graph=True, allow_unused=True
        )
        for g, grad in zip(t.gradients, analytic, strict=True):
            g.analytic = torch.zeros_like(g.tensor) if grad is None else grad
        # The same numbers, widened: the re-run is thrown away after this, so the layer's
        # own parameters are widened in place.
        numeric_dtype = torch.float64
        try:
            call_args, call_kwargs = _widened(args), _widened(kwargs)
            if isinstance(fn, torch.nn.Module):
                fn.double()
            with torch.no_grad():
                fn(*call_args, **call_kwargs)
        except (RuntimeError, TypeError, ValueError):
            numeric_dtype = out.dtype if out.dtype in EPS else torch.float32
            call_args, call_kwargs = list(args), dict(kwargs)
            if isinstance(fn, torch.nn.Module):
                fn.to(numeric_dtype)
        t.numeric_dtype = numeric_dtype
        up = upstream.to(numeric_dtype)

        def f(x: torch.Tensor, k: int | None, param: torch.Tensor | None) -> float:
            with torch.no_grad():
                if param is not None:
                    saved = param.detach().clone()
                    param.copy_(x)
                    try:
                        y = fn(*call_args, **call_kwargs)
                    finally:
                        param.copy_(saved)
                else:
                    y = fn(*[x if j == k else v for j, v in enumerate(call_args)], **call_kwargs)
                return float((y.to(numeric_dtype) * up).sum().cpu())

        wide_params = [p for _, p in params]
        targets: list[tuple[torch.Tensor, int | None, torch.Tensor | None]] = [
            (call_args[k], k, None) for k in positions
        ] + [(p, None, p) for p in wide_params]
        eps = EPS[numeric_dtype]
        for g, (x, k, param) in zip(t.gradients, targets, strict=True):
            idx = _indices(x.numel(), t.elements)
            ups, mids, downs, hus, hds, rounding = [], [], [], [], [], []
            for i in idx:
                values, steps = [], []
                for delta in (eps, 0.0, -eps):
                    nudged = x.detach().clone()
                    before = float(nudged.view(-1)[i])
                    nudged.view(-1)[i] += delta
                    steps.append(abs(float(nudged.view(-1)[i]) - before))
                    values.append(f(nudged, k, param))
                ups.append(values[0])
                mids.append(values[1])
                downs.append(values[2])
                hus.append(steps[0])
                hds.append(steps[2])
                rounding.append(_rounding(numeric_dtype, *values))
            tol = TOLERANCE[
                (g.tensor.dtype if g.tensor.dtype in EPS else torch.float32, numeric_dtype)
            ]
            assert g.analytic is not None
            t.checked.append(
                _tensor_check(
                    g.name,
                    list(x.shape),
                    idx,
                    g.analytic,
                    _Differences(ups, mids, downs, hus, hds, rounding),
                    tol,
                )
            )


def _widened(value: Any) -> Any:
    """Floating-point tensors (in lists, tuples and dicts too) as float64 copies."""
    if isinstance(value, torch.Tensor):
        return value.detach().to(torch.float64) if value.is_floating_point() else value
    if isinstance(value, (list, tuple)):
        return type(value)(_widened(v) for v in value)
    if isinstance(value, dict):
        return {k: _widened(v) for k, v in value.items()}
    return value


def expected_from_run(run: dict[str, Any], node: str, pass_index: int | None) -> dict[str, Any]:
    """What ``run_check`` compares autograd's side with: the Run's gradients at ``node``
    in that pass (the first pass that reached it when none is named)."""
    passes = run.get("passes") or []
    candidates = passes if pass_index is None else passes[pass_index : pass_index + 1]
    for p in candidates:
        step = next((st for st in p.get("steps") or () if st["node"] == node), None)
        if step is None:
            continue
        rec = next((n for n in run.get("nodes") or () if n["id"] == node), None)
        if rec is None or rec["kind"] == "leaf":
            return {"leaf": step["grad_output"]}
        ids = rec["inputs"]
        return {
            "inputs": {
                nid: g
                for nid, g in zip(ids, step["grad_inputs"], strict=False)
                if nid is not None and ids.count(nid) == 1
            }
        }
    return {}


def run_check(
    source: str,
    device: str,
    seed: int,
    settings: Settings,
    run_id: str,
    node: str,
    pass_index: int | None,
    elements: int,
    expected: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The GradCheck of ``node`` as plain data. Raises CheckFailed when it cannot be made.

    ``expected``: the Run's own gradients, as TensorViews: ``{"leaf": view}`` (what the
    leaf received in that pass) or ``{"inputs": {input node id: view}}`` (the step's
    downstream gradients); each checked gradient says whether autograd's side is them."""
    device = resolve_device(device)
    target = _Target(node, pass_index, elements)
    stop, why = rerun(source, device, seed, settings, _Probe(target))
    if stop is None:
        where = f"pass {pass_index + 1}" if pass_index is not None else "any backward pass"
        raise CheckFailed(
            f"node {node} was not reached by {where} when the program ran again"
            + (f" (it raised {why})" if why else "")
        )
    expected = expected or {}
    assert target.pass_index is not None
    number_of_pass = target.pass_index + 1
    if target.kind == "leaf":
        assert target.leaf is not None
        leaf = target.leaf
        ftype = leaf.dtype if leaf.dtype in EPS else torch.float32
        eps = EPS[ftype]
        idx = _indices(leaf.numel(), elements)

        def value_at(i: int, delta: float) -> tuple[float, float]:
            """The pass's objective with element ``i`` of the leaf nudged by ``delta``, and
            the step really taken."""
            probe = _Probe(
                _Target(node, target.pass_index, elements, "leaf", target.name), nudge=(i, delta)
            )
            stop, why = rerun(source, device, seed, settings, probe)
            if stop is None or stop.value is None or probe.step is None:
                raise CheckFailed(
                    f"the program ran differently once {target.name} was "
                    f"nudged{f' ({why})' if why else ''}"
                )
            return stop.value, probe.step

        middle, _ = value_at(idx[0], 0.0)
        d = _Differences([], [], [], [], [], [])
        for i in idx:
            (up, h_up), (down, h_down) = value_at(i, eps), value_at(i, -eps)
            d.up.append(up)
            d.mid.append(middle)
            d.down.append(down)
            d.h_up.append(h_up)
            d.h_down.append(h_down)
            d.rounding.append(_rounding(ftype, up, middle, down))
        analytic = target.analytic if target.analytic is not None else torch.zeros_like(leaf)
        tol = TOLERANCE[(ftype, ftype)]
        part = _tensor_check(target.name, list(leaf.shape), idx, analytic, d, tol)
        part["matches_run"] = matches_run(analytic, expected.get("leaf"))
        target.checked = [part]
        numeric = ftype
        note = (
            f"{target.name} nudged by ±{eps:g} just before pass {number_of_pass}'s forward; "
            f"the program ran again each time, in {str(ftype).removeprefix('torch.')} as "
            "it was written."
        )
    else:
        inputs = expected.get("inputs") or {}
        for part, g in zip(target.checked, target.gradients, strict=True):
            part["matches_run"] = (
                matches_run(g.analytic, inputs.get(g.node))
                if g.node is not None and g.analytic is not None
                else None
            )
        numeric = target.numeric_dtype
        tol = max(
            TOLERANCE[(g.tensor.dtype if g.tensor.dtype in EPS else torch.float32, numeric)]
            for g in target.gradients
        )
        eps = EPS[numeric]
        note = (
            f"Each input nudged by ±{eps:g} and the node's call made again in "
            f"{str(numeric).removeprefix('torch.')} on the same numbers, times its "
            f"upstream gradient in pass {number_of_pass}."
        )
    differs = [c["name"] for c in target.checked if c["matches_run"] is False]
    if differs:
        note += (
            f" The autograd column is not the run's gradient for {', '.join(differs)} "
            "(the program did not compute the same numbers when it ran again), so "
            "nothing here is marked as checked."
        )
    return {
        "run_id": run_id,
        "node": node,
        "kind": target.kind,
        "pass": target.pass_index,
        "dtype": str(numeric).removeprefix("torch."),
        "eps": eps,
        "tolerance": tol,
        "checked": target.checked,
        "ok": not differs and all(c["ok"] for c in target.checked),
        "note": note,
    }
