"""One backward pass, captured from a re-run: the nodes it went through with the calls
that made them, the leaves and constants with their values, and the order in which the
engine ran the steps.

The program runs again (same seed) under the ``OpTape``; when pass k begins, the graph
behind its root is walked and everything the numpy code needs is copied out; the pass
then runs as it did, and the re-run stops at the next statement, where the recorder
holds the pass's steps in the engine's order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import torch

from ...errors import ChainlensError, limit_text
from ...settings import Settings
from ...tracing.recorder import ACCUMULATE, graph_of
from ..rerun import Stop, rerun
from .tape import KEY, Operand, OpRecord, OpTape


class ManualUnavailable(ChainlensError):
    """No manual-backprop code for this pass (HTTP 400), and why."""

    code = "manual_unavailable"


def to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu").numpy().copy()


@dataclass
class OpNode:
    id: str
    grad_fn: str
    record: OpRecord
    line: int | None
    module: str | None
    names: list[str]
    seq: int


@dataclass
class Leaf:
    id: str
    names: list[str]
    value: np.ndarray
    grad_before: np.ndarray | None


@dataclass
class Capture:
    """What the numpy code is written from."""

    index: int
    line: int | None
    gradient: np.ndarray | None  # given to backward() for the first root
    #: each root's node and output (``torch.autograd.backward([a, b])`` has two)
    roots: list[tuple[str, int]] = field(default_factory=list)
    ops: list[OpNode] = field(default_factory=list)  # forward order
    leaves: dict[str, Leaf] = field(default_factory=dict)
    #: constants by id(Operand): value and the program's name for it, if it has one
    consts: dict[int, tuple[np.ndarray, str]] = field(default_factory=dict)
    #: id(Operand) -> the node it is (and which output) for operands that require grad
    nodes_of: dict[int, tuple[str, int]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)  # the engine's steps
    elements: int = 0


class _Probe:
    """Captures pass ``k`` when it begins; stops the re-run once it has ended."""

    def __init__(self, k: int, tape: OpTape, settings: Settings) -> None:
        self.k = k
        self.tape = tape
        self.settings = settings
        self.capture: Capture | None = None
        self.ex: Any

    def on_statement(self) -> None:
        if self.capture is not None and not self.ex.recorder.in_pass:
            raise Stop()

    def on_result(self, fn: Any, args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> None:
        """Library calls need nothing here: the tape sees their ATen ops."""

    def at_pass(
        self,
        index: int,
        node_ids: set[str],
        roots: list[torch.Tensor],
        gradient: torch.Tensor | None,
    ) -> None:
        if index != self.k:
            return
        self.tape.flush()
        if len(node_ids) > self.settings.manual_max_nodes:
            raise ManualUnavailable(
                limit_text(
                    "manual_max_nodes",
                    self.settings.manual_max_nodes,
                    f"exceeded: pass {index + 1} has {len(node_ids)} nodes",
                )
            )
        rec = self.ex.recorder
        line = rec.passes[-1].line if rec.passes else None
        cap = Capture(index, line, None if gradient is None else to_numpy(gradient))
        self._walk(cap, [r for r in roots if r.requires_grad])
        self.capture = cap

    def _walk(self, cap: Capture, roots: list[torch.Tensor]) -> None:
        rec = self.ex.recorder
        names = {
            id(v): k for k, v in self.ex.interp.globals.vars.items() if isinstance(v, torch.Tensor)
        }
        if len(roots) > 1 and (cap.gradient is not None or any(r.numel() != 1 for r in roots)):
            raise ManualUnavailable(
                "backward from several roots is written out for scalar roots only"
            )
        for r in roots:
            cap.roots.append(
                (self._leaf(cap, r), 0)
                if r.grad_fn is None
                else (rec.fn_id(r.grad_fn), r.output_nr)
            )
        for fn in graph_of(roots):
            if type(fn) is ACCUMULATE:
                self._leaf(cap, cast(Any, fn).variable)
                continue
            nid = rec.fn_id(fn)
            node = rec.nodes.get(nid)
            op = fn.metadata.get(KEY)
            where = f"{type(fn).__name__} (node {nid}" + (
                f", line {node.line})" if node is not None and node.line else ")"
            )
            if op is None:
                custom = "Backward" in type(fn).__name__ and hasattr(fn, "_forward_cls")
                raise ManualUnavailable(
                    f"{where} is a custom autograd.Function: its backward is the program's own "
                    "code, which manual-backprop code does not rewrite"
                    if custom
                    else f"{where} was not made by an ATen op the manual code can follow "
                    "(an in-place write into a slice, for instance)",
                    node.line if node else None,
                )
            cap.ops.append(
                OpNode(
                    nid,
                    type(fn).__name__,
                    op,
                    node.line if node else None,
                    node.module if node else None,
                    list(node.names) if node else [],
                    fn._sequence_nr(),
                )
            )
            for operand in _operands(op):
                if operand.kind == "const":
                    self._const(cap, operand, names)
                elif operand.kind == "leaf":
                    cap.nodes_of[id(operand)] = (self._leaf(cap, operand.ref), 0)
                else:
                    cap.nodes_of[id(operand)] = (rec.fn_id(operand.ref), operand.output_nr)
        cap.ops.sort(key=lambda o: o.seq)

    def _leaf(self, cap: Capture, t: torch.Tensor) -> str:
        nid = self.ex.recorder.leaf_id(t)
        if nid not in cap.leaves:
            node = self.ex.recorder.nodes.get(nid)
            cap.leaves[nid] = Leaf(
                nid,
                list(node.names) if node else [],
                self._copy(cap, t),
                None if t.grad is None else self._copy(cap, t.grad),
            )
        return nid

    def _const(self, cap: Capture, operand: Operand, names: dict[int, str]) -> None:
        if id(operand) not in cap.consts:
            name = names.get(id(operand.origin), "")
            cap.consts[id(operand)] = (self._copy(cap, operand.ref), name)

    def _copy(self, cap: Capture, t: torch.Tensor) -> np.ndarray:
        cap.elements += t.numel()
        if cap.elements > self.settings.manual_max_elements:
            raise ManualUnavailable(
                limit_text(
                    "manual_max_elements",
                    self.settings.manual_max_elements,
                    "exceeded: the values this pass starts from are too many to write into a file",
                )
            )
        return to_numpy(t)


def _operands(op: OpRecord) -> list[Operand]:
    out: list[Operand] = []
    for a in [*op.args, *op.kwargs.values()]:
        items = a if isinstance(a, (list, tuple)) else [a]
        out.extend(x for x in items if isinstance(x, Operand))
    return out


def capture_pass(
    source: str, device: str, seed: int, settings: Settings, pass_index: int
) -> Capture:
    """Run the program again and capture pass ``pass_index``."""
    tape = OpTape()
    probe = _Probe(pass_index, tape, settings)
    _, why = rerun(source, device, seed, settings, probe, context=tape, explain=False)
    cap = probe.capture
    if cap is None:
        raise ManualUnavailable(
            f"the program made no backward pass {pass_index + 1}"
            + (f" (it raised {why})" if why else "")
        )
    if why:
        raise ManualUnavailable(
            f"pass {pass_index + 1} did not finish: the program raised {why}", cap.line
        )
    passes = probe.ex.recorder.passes
    if pass_index >= len(passes) or not passes[pass_index].recorded:
        raise ManualUnavailable(f"pass {pass_index + 1}'s steps were not recorded")
    cap.order = [step.node for step in passes[pass_index].steps]
    if not cap.order:
        raise ManualUnavailable(
            f"pass {pass_index + 1} did not finish: its backward() raised "
            "before any step ran (the program caught the error)",
            cap.line,
        )
    hooked = [
        d.line
        for d in probe.ex.diagnostics.items
        if d.code == "hook_changed_gradient" and d.node in passes[pass_index].node_ids
    ]
    if hooked:
        raise ManualUnavailable(
            f"in pass {pass_index + 1} a hook the program registered (line "
            f"{hooked[0]}) replaced a gradient: manual-backprop code "
            "follows the chain rule alone",
            hooked[0],
        )
    return cap
