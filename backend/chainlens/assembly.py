"""The run's last stage: what the recorder holds, as the wire's dicts (``schema``'s
``...Dict``s, ready for orjson). The stream sends each node, step and pass from here
as it happens; ``run`` puts the Run together once the program has ended.

Views are handed out empty and filled when the summarizer flushes (``tracing.summaries``):
a Run's thousands of tensors are summarised a batch at a time.
"""

from __future__ import annotations

from typing import Any

import torch

from .explain.diagnostics import Diagnostics
from .explain.jacobians import received_by_leaves
from .schema import (
    CutEdgeDict,
    ErrorInfo,
    NodeDict,
    PassDict,
    RunDict,
    StepDict,
    TensorViewDict,
    VariableDict,
)
from .tracing.recorder import NodeRecord, PassRecord, Recorder, StepRecord
from .tracing.summaries import Summarizer, number


class Assembler:
    def __init__(
        self,
        recorder: Recorder,
        summarize: Summarizer,
        diagnostics: Diagnostics,
        freed: dict[str, int | None],
    ) -> None:
        """``freed``: which pass freed each node's saved tensors (``BackwardCalls.freed``,
        filled as backward calls fail)."""
        self.recorder = recorder
        self.summarize = summarize
        self.diagnostics = diagnostics
        self.freed = freed

    def node(self, rec: NodeRecord) -> NodeDict:
        label = rec.op or rec.grad_fn
        if rec.kind == "leaf":
            label = rec.names[0] if rec.names else "leaf"
        return {
            "id": rec.id,
            "kind": rec.kind,
            "grad_fn": rec.grad_fn,
            "op": rec.op,
            "label": label,
            "names": list(rec.names),
            "line": rec.line,
            "module": rec.module,
            "call": rec.call,
            "inputs": list(rec.inputs),
            "saved": (
                {k: self.summarize(t) for k, v in rec.saved.items() if (t := v.current) is not None}
                if rec.saved
                else None
            ),
            "value": self.summarize(rec.value),
            "grad": self.summarize(rec.grad),
            "freed_by": self.freed.get(rec.id),
            "file": rec.file,
        }

    def leaf_values(self, p: PassRecord) -> dict[str, TensorViewDict]:
        """``Pass.leaf_values``: each stepped leaf's value when the pass's forward ran."""
        return {nid: self.summarize(v) for nid, v in self.recorder.leaf_values(p).items()}

    def step(self, step: StepRecord) -> StepDict:
        return {
            "node": step.node,
            "grad_output": self.summarize(step.grad_outputs[0] if step.grad_outputs else None),
            "grad_inputs": [self.summarize(g) for g in step.grad_inputs],
            "formula": step.formula,
        }

    def run(
        self,
        run_id: str,
        device: str,
        error: ErrorInfo | None,
        stdout: str,
        names: dict[str, Any],
        max_recorded_passes: int,
    ) -> RunDict:
        """The Run, once the program has ended: ``names`` are the program's globals
        (its tensors are the Run's variables)."""
        s = self.summarize
        rec = self.recorder
        self.diagnostics.unreached_leaves(names)
        recorded = [p for p in rec.passes if p.recorded]
        # Views are handed out empty and filled by flush: the step dicts are built as their
        # gradients are registered (every upstream one, which the NaN diagnostic reads).
        steps = [[self.step(st) for st in p.steps] for p in rec.passes]
        for p in recorded:
            for st in p.steps:
                for g in st.grad_outputs[1:]:
                    s(g)
        s.flush()
        if s.nonfinite_seen:
            self.diagnostics.non_finite(recorded, lambda g: Summarizer.finite(s(g)))
        nodes = [self.node(r) for r in rec.nodes.values()]
        passes: list[PassDict] = [
            {
                "index": p.index,
                "root": p.root if p.root in rec.nodes else None,
                "gradient": s(p.gradient),
                "steps": p_steps,
                "line": p.line,
                "loss": None if p.loss is None else number(p.loss),
                "recorded": p.recorded,
                "jacobian": received_by_leaves(p),
                "leaf_values": self.leaf_values(p),
            }
            for p, p_steps in zip(rec.passes, steps, strict=True)
        ]
        variables = self.variables(names)
        s.flush()
        if rec.dropped_passes:
            self.diagnostics.passes_truncated(
                len(rec.losses), max_recorded_passes, last=not rec.last_pass_skipped
            )
        return {
            "id": run_id,
            "status": "error" if error else "ok",
            "device": device,
            "error": error.model_dump() if error else None,
            "stdout": stdout,
            "variables": variables,
            "nodes": nodes,
            "passes": passes,
            "diagnostics": [d.model_dump() for d in self.diagnostics.items],
            "timings_ms": {},
            "cut_edges": [
                CutEdgeDict(source=c.source, op=c.op, line=c.line, reason=c.reason)
                for c in rec.cuts.values()
                if c.source in rec.nodes
            ],
            "losses": [None if v is None else number(v) for v in rec.losses],
        }

    def variables(self, names: dict[str, Any]) -> dict[str, VariableDict]:
        """``Run.variables``: the program's names bound to tensors at its end."""
        rec = self.recorder
        out: dict[str, VariableDict] = {}
        for name, value in names.items():
            if isinstance(value, torch.Tensor):
                nid = rec.node_of(value) if (value.requires_grad or value.grad_fn) else None
                grad = value.grad if value.is_leaf or value.retains_grad else None
                out[name] = {
                    "node": nid if nid in rec.nodes else None,
                    "value": self.summarize(value),
                    "grad": self.summarize(grad),
                    "is_leaf": value.is_leaf,
                    "requires_grad": value.requires_grad,
                }
        return out
