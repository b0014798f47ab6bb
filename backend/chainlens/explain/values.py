"""A node's tensors in full, for pictures: the Run keeps ``values`` to 64 elements, and a
32×32 input or a 6×28×28 feature map is drawn as images whose every pixel can be read.

The program runs again (it is deterministic: same seed, same node ids, as for checks and
numpy code) and the node's value and gradient in the pass asked for are read from the
re-run's recorder: the same tensors the Run summarised, every element of them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import torch

from ..engine import Execution
from ..errors import ChainlensError, limit_text
from ..settings import Settings
from ..tracing.recorder import saved_names
from .formulas import GRAD_FN_RULES, RULE_ERRORS, Ctx, Explained
from .rerun import rerun


class TensorsUnavailable(ChainlensError):
    """The tensors cannot be given (HTTP 400): unknown node, pass not recorded, too large."""

    code = "tensors_unavailable"


#: What a node saved besides tensors, as the wire can carry it (a convolution's stride and
#: padding, addmm's alpha and beta): a drill-down into a sum of products needs them.
_ATTR_TYPES = (bool, int, float, str)


class _Watch:
    """A probe that only watches (the re-run goes to its end): it reads node ``node``'s
    non-tensor saved attributes when pass ``index`` begins (before backward frees them),
    and, as the node's step runs in that pass, what its rule says of each element."""

    ex: Execution

    def __init__(self, node: str, index: int) -> None:
        self.node, self.index = node, index
        self.attrs: dict[str, Any] = {}
        self.now = -1
        self.explained: Explained | None = None
        self.upstream: torch.Tensor | None = None

    def explain(self, fn: Any, nid: str, upstream: tuple, downstream: tuple) -> None:
        """Recorder.explain for the re-run: the rule of the node's step, nothing else."""
        rule = (
            GRAD_FN_RULES.get(type(fn).__name__)
            if nid == self.node and self.now == self.index
            else None
        )
        if rule is None or not upstream or upstream[0] is None:
            return
        with contextlib.suppress(*RULE_ERRORS):
            ctx = Ctx(fn, upstream, downstream)
            self.explained = rule(ctx)
            self.upstream = ctx.g

    def on_statement(self) -> None:
        return None

    def on_result(self, fn: Any, args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> None:
        return None

    def at_pass(
        self,
        index: int,
        node_ids: set[str],
        roots: list[torch.Tensor],
        gradient: torch.Tensor | None,
    ) -> None:
        self.now = index
        if index != self.index or self.node not in node_ids:
            return
        fn = next(
            (f for f in self.ex.recorder.pass_fns if self.ex.recorder.id_of_fn(f) == self.node),
            None,
        )
        for attr in saved_names(fn) if fn is not None else ():
            try:
                v = getattr(fn, attr)
            except RuntimeError:
                continue
            if isinstance(v, (tuple, list)) and all(isinstance(x, _ATTR_TYPES) for x in v):
                v = list(v)
            elif not isinstance(v, _ATTR_TYPES):
                continue
            self.attrs[attr.removeprefix("_saved_")] = v


def full(t: torch.Tensor | None, limit: int, what: str) -> dict[str, Any] | None:
    """Every element of ``t``, row-major, as the wire writes numbers (non-finite ones as
    "nan", "inf", "-inf"); float32 values as the float64 numbers equal to them."""
    if t is None:
        return None
    if t.is_complex():
        raise TensorsUnavailable(f"the {what} is complex: only real tensors are drawn")
    if t.numel() > limit:
        raise TensorsUnavailable(
            limit_text(
                "max_fetched_elements",
                f"{limit:,}",
                f"exceeded: the {what} has {t.numel():,} elements",
            )
        )
    flat = t.detach().reshape(-1).cpu()
    if flat.dtype == torch.bool:
        flat = flat.to(torch.uint8)
    values: list[Any] = flat.tolist()
    if flat.is_floating_point() and not bool(torch.isfinite(flat).all()):
        values = [
            v
            if v == v and abs(v) != float("inf")
            else ("nan" if v != v else "inf" if v > 0 else "-inf")
            for v in values
        ]
    return {"shape": list(t.shape), "dtype": str(t.dtype).removeprefix("torch."), "values": values}


def _elementwise(probe: _Watch, limit: int) -> dict[str, Any]:
    """For an op that acts element by element, from its rule: each input's local derivative
    and the upstream gradient as it reaches each input element (a sum copies it), so that
    any element can be written upstream × local = downstream."""
    e = probe.explained
    if e is None or e.local is None or probe.upstream is None:
        return {"local": [], "spread": None}
    spread = e.spread if e.spread is not None else probe.upstream
    return {
        "local": [full(t, limit, "local derivative") if t is not None else None for t in e.local],
        "spread": full(spread, limit, "upstream"),
    }


def node_tensors(
    source: str, device: str, seed: int, settings: Settings, node: str, pass_index: int
) -> dict[str, Any]:
    """``NodeTensors``: node ``node``'s value when pass ``pass_index``'s forward ran, the
    gradient of its output in that pass and those its step sent to its inputs, and what it
    saved for backward, in full."""
    out: dict[str, Any] = {}

    def read(ex: Execution) -> None:
        rec = ex.recorder.nodes.get(node)
        if rec is None:
            raise TensorsUnavailable(f"no node {node[:40]!r} in this run")
        passes = {p.index: p for p in ex.recorder.passes}
        p = passes.get(pass_index)
        if pass_index >= len(ex.recorder.losses) or (p is not None and not p.recorded):
            raise TensorsUnavailable(f"pass {pass_index + 1} was not recorded step by step")
        value = rec.value_at(pass_index) if rec.kind == "leaf" else rec.value
        step = next((s for s in p.steps if s.node == node), None) if p is not None else None
        grad = step.grad_outputs[0] if step is not None and step.grad_outputs else None
        limit = settings.max_fetched_elements
        out.update(
            node=node,
            value=full(value, limit, "value"),
            grad=full(grad, limit, "gradient"),
            saved={
                k: full(t, limit, f"saved {k}")
                for k, v in (rec.saved or {}).items()
                if (t := v.current) is not None
            },
            grad_inputs=[
                full(g, limit, f"gradient of input {i}")
                for i, g in enumerate(step.grad_inputs if step is not None else ())
            ],
            attrs=probe.attrs,
            **_elementwise(probe, limit),
        )
        out["pass"] = pass_index

    probe = _Watch(node, pass_index)
    rerun(source, device, seed, settings, probe, explain=probe.explain, saved=True, finished=read)
    if not out:
        raise TensorsUnavailable("the program ran again but stopped before it got there")
    return out
