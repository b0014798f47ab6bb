"""The backward calls a program makes: counted against the limit, recorded as passes,
a vector root's Jacobian taken first, and, when one fails, the node it failed at.

``BackwardCalls`` is the interpreter's ``on_backward`` hook: every ``backward()``,
``autograd.backward`` and ``autograd.grad`` goes through it, and so does the backward
the engine runs for a program that never called one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .errors import LimitExceeded, error_context
from .explain.diagnostics import Diagnostics
from .explain.explainer import Explainer
from .explain.jacobians import pass_jacobian
from .settings import Settings
from .tracing.recorder import PassRecord, Recorder, saved_names


def _roots_and_gradient(
    op: str, args: tuple, kwargs: dict, target: Any
) -> tuple[list[torch.Tensor], torch.Tensor | None]:
    """What a backward call starts from, and the gradient it was given (the first one's,
    for several roots), from its arguments as the program passed them."""
    if op == "backward":
        roots = [target]
        gradient = args[0] if args else kwargs.get("gradient")
    else:
        first = args[0] if args else kwargs.get("tensors", kwargs.get("outputs"))
        roots = list(first) if isinstance(first, (list, tuple)) else [first]
        position, name = (1, "grad_tensors") if op == "autograd.backward" else (2, "grad_outputs")
        gradient = args[position] if len(args) > position else kwargs.get(name)
        if isinstance(gradient, (list, tuple)):
            gradient = gradient[0] if gradient else None
    tensors = [r for r in roots if isinstance(r, torch.Tensor)]
    return tensors, gradient if isinstance(gradient, torch.Tensor) else None


class BackwardCalls:
    def __init__(
        self,
        settings: Settings,
        recorder: Recorder,
        explainer: Explainer,
        diagnostics: Diagnostics,
        line: Callable[[], int | None],
        last_inplace: Callable[[], Any],
        probe: Any = None,
    ) -> None:
        """``line``: the program's line now; ``last_inplace``: the tensor the program
        last changed in place (the gate's); ``probe``: a re-run's, told of each pass."""
        self.settings = settings
        self.recorder = recorder
        self.explainer = explainer
        self.diagnostics = diagnostics
        self.line = line
        self.last_inplace = last_inplace
        self.probe = probe
        self.calls = 0
        self._culprit: str | None = None
        #: Node id -> the pass whose backward freed its saved tensors, for the nodes a
        #: second backward found freed (``Node.freed_by``).
        self.freed: dict[str, int | None] = {}

    def __call__(self, op: str, fn: Callable, args: tuple, kwargs: dict, target: Any) -> Any:
        """``ProgramHooks.on_backward``: the program calls ``op`` (``backward``,
        ``autograd.backward``, ``autograd.grad``); ``fn`` runs it."""
        self.calls += 1
        if self.calls > self.settings.max_backward_calls:
            raise LimitExceeded(
                "max_backward_calls",
                self.settings.max_backward_calls,
                "the program called backward too many times",
                self.line(),
            )
        roots, gradient = _roots_and_gradient(op, args, kwargs, target)
        if not any(r.requires_grad for r in roots):
            return fn(*args, **kwargs)
        p = self.recorder.begin_pass(roots, gradient)
        if self.probe is not None:
            self.probe.at_pass(p.index, p.node_ids, roots, gradient)
        leaves = [(t, nid) for t, nid in self._leaves_in(p)]
        if gradient is not None and len(roots) == 1 and roots[0].numel() > 1:
            with self.recorder.pause():
                p.jacobian = pass_jacobian(roots[0], gradient, leaves)
        had_grad = {nid for t, nid in leaves if t.grad is not None and bool(t.grad.any())}
        try:
            result = fn(*args, **kwargs)
        except RuntimeError as e:
            if "modified by an inplace" in str(e):
                self._culprit = next(iter(self._unreadable_saved("modified by an inplace")), None)
            elif "second time" in str(e):
                self._mark_freed(p)
            raise
        finally:
            self.recorder.end_pass()
            self.explainer.end_pass()
        if op != "autograd.grad":
            for _, nid in leaves:
                if nid in had_grad:
                    rec = self.recorder.nodes.get(nid)
                    name = rec.names[0] if rec and rec.names else "the leaf"
                    self.diagnostics.grad_accumulated(name, nid, self.line())
            if kwargs.get("create_graph"):
                self.recorder.after_create_graph(t for t, _ in leaves)
        else:
            self.recorder.record_outputs(result, "autograd.grad")
        return result

    def _leaves_in(self, p: PassRecord) -> list[tuple[torch.Tensor, str]]:
        out = []
        for t in self.recorder.leaf_tensors():
            nid = self.recorder.node_of(t)
            if nid in p.node_ids:
                out.append((t, nid))
        return out

    def error_node(self, exc: BaseException) -> str | None:
        """The node an exception is about: the leaf changed in place, the node whose saved
        tensor was modified, the backward root, or the tensor the failing call was given
        (the [1, 400] input of an nn.Linear(256, 120))."""
        text = str(exc)
        rec = self.recorder
        target = self.last_inplace()
        if "leaf Variable" in text and isinstance(target, torch.Tensor) and target.requires_grad:
            return rec.node_of(target)
        if ("modified by an inplace" in text or "second time" in text) and self._culprit:
            return self._culprit
        if rec.passes and (
            "scalar outputs" in text or "second time" in text or "modified by an inplace" in text
        ):
            return rec.passes[-1].root
        operand = error_context(exc).operand  # what the failing call was given
        if isinstance(operand, torch.Tensor) and (operand.requires_grad or operand.grad_fn):
            return rec.node_of(operand)
        return None

    def _unreadable_saved(self, why: str) -> list[str]:
        """Read the failed pass's saved tensors, nearest the root first: the nodes whose
        read raises with ``why`` (modified in place; freed by an earlier backward)."""
        found = []
        for fn in self.recorder.pass_fns:
            for attr in saved_names(fn):
                try:
                    getattr(fn, attr)
                except RuntimeError as e:
                    if why in str(e) and (nid := self.recorder.id_of_fn(fn)):
                        found.append(nid)
                        break
        return found

    def _mark_freed(self, failed: PassRecord) -> None:
        """A second backward through one graph: each node whose saved tensors are gone, and
        the pass that freed them (the last one before that went through it). The first,
        nearest the root, is the one backward stopped at."""
        freed = self._unreadable_saved("already been freed")
        earlier = [p for p in self.recorder.passes if p.index < failed.index]
        for nid in freed:
            self.freed[nid] = next((p.index for p in reversed(earlier) if nid in p.node_ids), None)
        self._culprit = freed[0] if freed else None
