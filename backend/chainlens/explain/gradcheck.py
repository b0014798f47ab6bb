"""Finite-difference checks of one gradient, on request (``POST /runs/{id}/check``).

The Run holds summaries, not live tensors, so a check runs the program again (with
its seed, in float64 where the program allows, else in its own types):

- a **leaf** in pass k: each checked element of the leaf is nudged by ±eps just before
  pass k's forward (at the first statement after pass k-1, where the leaf is bound to
  its name), the program runs on to pass k's ``backward``, and the root's value there
  (times the pass's gradient, for a non-scalar root) gives the central difference;
- a **step** (any other node) in pass k: the library call that created the node is
  captured, and each input's gradient, ∂L/∂y times the node's local derivative, is
  compared with central differences of that call on nudged inputs.

What autograd computes in the same re-run is the analytic side, so both sides see the
same numbers; the Run's own gradients (in the program's types) are what the page shows
beside them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ..engine import _Execution, resolve_device
from ..errors import ChainlensError
from ..settings import Settings
from ..tracing.summaries import number
from .rerun import Stop, rerun

EPS = {torch.float64: 1e-6, torch.float32: 1e-3}
TOLERANCE = {torch.float64: 1e-5, torch.float32: 2e-2}


class CheckFailed(ChainlensError):
    """The check could not be made (HTTP 400): unknown node, pass not reached, ..."""

    code = "check_failed"


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


def _resolve(ex: _Execution, name: str) -> torch.Tensor | None:
    """The tensor a leaf's name refers to now: ``w`` or a parameter ``net.fc1.weight``."""
    head, _, rest = name.partition(".")
    obj = ex.interp.globals.vars.get(head)
    if rest:
        params = getattr(obj, "named_parameters", None)
        obj = dict(params()).get(rest) if callable(params) else None
    return obj if isinstance(obj, torch.Tensor) else None


def _tensor_check(name: str, shape: list[int], idx: list[int], analytic: torch.Tensor,
                  sides: list[tuple[float, float, float]], eps: float, tol: float) -> dict[str, Any]:
    """Compare autograd with central differences; ``sides`` holds f(x+eps), f(x), f(x-eps)
    per element. Where the two one-sided slopes disagree the function has a kink there
    (ReLU at 0, a max over equal values): the element is shown but not judged."""
    a = analytic.detach().reshape(-1).to("cpu", torch.float64)
    elements, worst, scale = [], 0.0, 1.0
    for i, (up, mid, down) in zip(idx, sides, strict=True):
        n = (up - down) / (2 * eps)
        right, left = (up - mid) / eps, (mid - down) / eps
        kink = abs(right - left) > tol * max(1.0, abs(right), abs(left))
        ai = float(a[i])
        if not kink:
            worst = max(worst, abs(ai - n)) if ai == ai and n == n else float("nan")
            scale = max(scale, abs(ai), abs(n))
        where = [int(v) for v in torch.unravel_index(torch.tensor(i), tuple(shape))] if shape else []
        elements.append({"index": where, "analytic": number(ai), "numeric": number(n), "kink": kink})
    return {"name": name, "shape": shape, "elements": elements, "max_error": number(worst),
            "ok": worst <= tol * scale}


class _Probe:
    """What the engine calls back during a re-run (``_Execution.probe``)."""

    def __init__(self, target: _Target, nudge: tuple[int, float] | None = None) -> None:
        self.t = target
        self.nudge = nudge
        self.nudged = False
        self.ex: _Execution

    def on_statement(self) -> None:
        """Nudge the leaf once pass k is next, at its first statement where it exists."""
        if self.nudge is None or self.nudged or len(self.ex.recorder.losses) != self.t.pass_index:
            return
        leaf = _resolve(self.ex, self.t.name)
        if leaf is not None and leaf.is_leaf:
            with torch.no_grad():
                leaf.view(-1)[self.nudge[0]] += self.nudge[1]
            self.nudged = True

    def on_result(self, fn: Callable, args: list[Any], kwargs: dict[str, Any], out: Any) -> None:
        if (self.t.call is None and isinstance(out, torch.Tensor) and out.grad_fn is not None
                and self.ex.recorder.node_of(out) == self.t.node):
            owner = getattr(fn, "__self__", None)
            if isinstance(owner, torch.Tensor):  # x.pow(2): the tensor is an input too
                fn, args = getattr(torch.Tensor, fn.__name__), [owner, *args]
            self.t.call = (fn, list(args), dict(kwargs), out)

    def at_pass(self, index: int, node_ids: set[str], roots: list[torch.Tensor],
                gradient: torch.Tensor | None) -> None:
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
        if rec is not None and rec.kind in ("leaf", "param"):
            t.kind, t.name = "leaf", rec.names[0] if rec.names else ""
            t.leaf = _resolve(self.ex, t.name) if t.name else None
            if t.leaf is None or self.ex.recorder.node_of(t.leaf) != t.node:
                raise CheckFailed(f"leaf {t.node} is not bound to a name the program can look "
                                  "up again, so it cannot be nudged")
            (t.analytic,) = torch.autograd.grad(objective, [t.leaf], retain_graph=True,
                                                allow_unused=True)
        else:
            t.kind = "step"
            self._check_step(objective)
        raise Stop()

    def _check_step(self, objective: torch.Tensor) -> None:
        t = self.t
        if t.call is None:
            raise CheckFailed(f"node {t.node} was made inside a layer, together with other "
                              "nodes: check that layer's output node or its parameters instead")
        fn, args, kwargs, out = t.call
        if "dropout" in getattr(fn, "__name__", type(fn).__name__).lower():
            raise CheckFailed("dropout draws a new random mask on every call: its step "
                              "cannot be checked by calling it again")
        (upstream,) = torch.autograd.grad(objective, [out], retain_graph=True, allow_unused=True)
        upstream = torch.zeros_like(out) if upstream is None else upstream.detach()
        inputs: list[tuple[str, torch.Tensor, Callable[[torch.Tensor], Any]]] = []
        rec = self.ex.recorder
        for k, a in enumerate(args):
            if isinstance(a, torch.Tensor) and a.requires_grad and a.is_floating_point():
                node = rec.nodes.get(rec.node_of(a) or "")
                name = node.names[0] if node is not None and node.names else f"input {k}"
                inputs.append((name, a, lambda x, k=k: fn(*[x if j == k else v for j, v in
                                                              enumerate(args)], **kwargs)))
        if isinstance(fn, torch.nn.Module):  # a layer: its parameters are inputs too
            for pname, param in fn.named_parameters():
                inputs.append((pname, param, lambda x, p=param: _with_value(p, x, fn, args, kwargs)))
        if not inputs:
            raise CheckFailed(f"node {t.node}'s call has no input that requires grad")
        analytic = torch.autograd.grad(out, [a for _, a, _ in inputs], upstream,
                                       retain_graph=True, allow_unused=True)
        up64 = upstream.to(torch.float64)

        def f(call: Callable[[torch.Tensor], Any], x: torch.Tensor) -> float:
            with torch.no_grad():
                return float((call(x).to(torch.float64) * up64).sum().cpu())

        for (name, a, call), grad in zip(inputs, analytic, strict=True):
            dtype = a.dtype if a.dtype in EPS else torch.float32
            eps = EPS[dtype]
            idx = _indices(a.numel(), t.elements)
            sides = []
            for i in idx:
                values = []
                for delta in (eps, 0.0, -eps):
                    nudged = a.detach().clone()
                    nudged.view(-1)[i] += delta
                    values.append(f(call, nudged))
                sides.append((values[0], values[1], values[2]))
            t.checked.append(_tensor_check(name, list(a.shape), idx,
                                           torch.zeros_like(a) if grad is None else grad,
                                           sides, eps, TOLERANCE[dtype]))


def _with_value(param: torch.Tensor, value: torch.Tensor, layer: Callable, args: list[Any],
                kwargs: dict[str, Any]) -> Any:
    """Call ``layer`` with ``param`` temporarily holding ``value``."""
    with torch.no_grad():
        saved = param.detach().clone()
        param.copy_(value)
        try:
            return layer(*args, **kwargs)
        finally:
            param.copy_(saved)


def run_check(source: str, device: str, seed: int, settings: Settings, run_id: str,
              node: str, pass_index: int | None, elements: int) -> dict[str, Any]:
    """The GradCheck of ``node`` as plain data. Raises CheckFailed when it cannot be made."""
    device = resolve_device(device)
    target, dtype, why = None, None, ""
    # float64 first; a program that mixes in explicit float32 tensors may fail there
    for dtype in (torch.float64, None):
        target = _Target(node, pass_index, elements)
        stop, why = rerun(source, device, seed, settings, _Probe(target), dtype)
        if stop is not None:
            break
    else:
        where = f"pass {pass_index}" if pass_index is not None else "any backward pass"
        raise CheckFailed(f"node {node} was not reached by {where} when the program ran again"
                          + (f" (it raised {why})" if why else ""))
    if target.kind == "leaf":
        assert target.leaf is not None
        leaf = target.leaf
        ftype = leaf.dtype if leaf.dtype in EPS else torch.float32
        eps = EPS[ftype]
        idx = _indices(leaf.numel(), elements)

        def value_at(i: int, delta: float) -> float:
            """The pass's objective with element ``i`` of the leaf nudged by ``delta``."""
            probe = _Probe(_Target(node, target.pass_index, elements, "leaf", target.name),
                           nudge=(i, delta))
            stop, why = rerun(source, device, seed, settings, probe, dtype)
            if stop is None or stop.value is None or not probe.nudged:
                raise CheckFailed(f"the program ran differently once {target.name} was "
                                  f"nudged{f' ({why})' if why else ''}")
            return stop.value

        middle = value_at(idx[0], 0.0)
        sides = [(value_at(i, eps), middle, value_at(i, -eps)) for i in idx]
        analytic = target.analytic if target.analytic is not None else torch.zeros_like(leaf)
        target.checked = [_tensor_check(target.name, list(leaf.shape), idx, analytic, sides,
                                        eps, TOLERANCE[ftype])]
        note = (f"{target.name} nudged by ±{eps:g} just before pass {target.pass_index}'s "
                "forward; the program ran again each time.")
    else:
        ftype = torch.float64 if dtype is torch.float64 else torch.float32
        note = "Each input nudged by ±eps and the node's call made again, times its upstream gradient."
    return {"run_id": run_id, "node": node, "kind": target.kind, "pass": target.pass_index,
            "dtype": str(ftype).removeprefix("torch."), "eps": EPS[ftype],
            "tolerance": TOLERANCE[ftype], "checked": target.checked,
            "ok": all(c["ok"] for c in target.checked), "note": note}
