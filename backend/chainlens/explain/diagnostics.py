"""Diagnostics: each classic backprop mistake, named on its line and node, with a fix.

The engine reports events (an exception, a rebound leaf, a ``.grad`` read on a
non-leaf, a second accumulation); this module turns each into the one-sentence
explanation and the code that fixes it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..schema import Diagnostic
from ..tracing.recorder import PassRecord, Recorder


def _diag(code: str, severity: str, message: str, line: int | None, node: str | None,
          hint: str) -> Diagnostic:
    return Diagnostic(code=code, severity=severity, message=message, line=line, node=node,  # type: ignore[arg-type]
                      hint=hint)


# (code, text in the exception's message, explanation, fix)
_ERRORS: list[tuple[str, str, str, str]] = [
    ("non_scalar_backward", "grad can be implicitly created only for scalar outputs",
     "backward() was called on a tensor with more than one element, so PyTorch does not know "
     "which vector to multiply the Jacobian by.",
     "Reduce it to a scalar first (loss = y.sum() or y.mean()), or pass the vector: "
     "y.backward(gradient=torch.ones_like(y))."),
    ("inplace_on_leaf", "leaf Variable that requires grad is being used in an in-place operation",
     "An in-place operation changed a leaf tensor that requires grad; autograd cannot record a "
     "change to the very tensor it must compute the gradient for.",
     "Update parameters inside `with torch.no_grad():` (w -= lr * w.grad), or use an "
     "out-of-place op (x = x + 1)."),
    ("inplace_modified_saved", "modified by an inplace operation",
     "A tensor that a node saved for backward was changed in place after it was saved, so the "
     "gradient would be computed from the wrong numbers.",
     "Use the out-of-place version of the op (x = x * 2 instead of x *= 2), or .clone() the "
     "tensor before changing it."),
    ("integer_requires_grad", "floating point",
     "Only floating-point (and complex) tensors can require gradients: an integer tensor has no "
     "infinitesimal change to differentiate with respect to.",
     "Create it as a float: torch.tensor([1., 2., 3.], requires_grad=True) or "
     "dtype=torch.float32."),
    ("device_mismatch", "Expected all tensors to be on the same device",
     "The operation mixed tensors on different devices (CPU and GPU).",
     "Move them to one device first: x = x.to(device) for every input and model.to(device)."),
    ("device_mismatch", "Torch not compiled with CUDA enabled",
     "The program asked for a CUDA tensor, but this server has no CUDA.",
     "Use device = 'cuda' if torch.cuda.is_available() else 'cpu'."),
    ("backward_twice", "backward through the graph a second time",
     "backward() ran through a graph whose saved tensors were already freed by an earlier "
     "backward().",
     "Recompute the forward pass before each backward(), or pass retain_graph=True to the first "
     "backward() if you really need to go through the same graph twice."),
    ("no_grad_path", "does not require grad and does not have a grad_fn",
     "backward() was called on a tensor that no input requiring grad reaches: it was computed "
     "under torch.no_grad(), from detached tensors, or from inputs without requires_grad=True.",
     "Create the inputs with requires_grad=True and compute the loss outside torch.no_grad()."),
]


class Diagnostics:
    """Collects the run's diagnostics; ``emit`` streams each as it is found."""

    def __init__(self, recorder: Recorder, emit: Callable[[Diagnostic], None] | None = None) -> None:
        self.items: list[Diagnostic] = []
        self.recorder = recorder
        self.emit = emit
        self._seen: set[tuple[str, Any]] = set()

    def add(self, d: Diagnostic, key: Any = None) -> None:
        k = (d.code, key if key is not None else (d.line, d.node))
        if k in self._seen:
            return
        self._seen.add(k)
        self.items.append(d)
        if self.emit is not None:
            self.emit(d)

    def from_exception(self, exc: BaseException, line: int | None, node: str | None) -> None:
        owner = getattr(exc, "chainlens_grad_of", None)
        if owner is not None:
            self.add(_diag(
                "grad_is_none", "error",
                f"{owner}.grad is None: no backward() has reached {owner} yet (or it does not "
                "require grad), so there is no gradient to read or zero.",
                line, node, f"Call loss.backward() before using {owner}.grad, or zero it only when "
                f"it exists: if {owner}.grad is not None: {owner}.grad.zero_() "
                "(optimizer.zero_grad() does this for you)."))
            return
        text = str(exc)
        for code, needle, what, fix in _ERRORS:
            if needle in text and (code != "integer_requires_grad" or "require gradients" in text):
                self.add(_diag(code, "error", what, line, node, fix))
                return

    def non_scalar_auto(self, node: str | None, line: int | None, shape: list[int]) -> None:
        self.add(_diag(
            "non_scalar_backward", "info",
            f"The program's last value is a tensor of shape {shape}, not a scalar, so chainlens "
            "did not run backward from it.",
            line, node, "End with loss = y.sum() (or .mean()), or call y.backward(v) with a "
            "vector v of the same shape."))

    def leaf_overwritten(self, name: str, leaf_node: str | None, line: int | None) -> None:
        self.add(_diag(
            "leaf_overwritten", "warning",
            f"'{name}' was a leaf tensor that requires grad; line {line} rebound the name to a "
            f"computed tensor, so {name}.grad now reads a non-leaf (None) while the original "
            "leaf still gets the gradient.",
            line, leaf_node, f"Keep the leaf under its own name ({name}_in = {name} * 2), or update "
            f"it in place under torch.no_grad(): with torch.no_grad(): {name} -= lr * {name}.grad"),
            key=(name, line))

    def nonleaf_grad(self, node: str | None, line: int | None) -> None:
        self.add(_diag(
            "nonleaf_grad_access", "warning",
            "The .grad of a non-leaf tensor was read; PyTorch only fills .grad on leaves, so it "
            "is None.",
            line, node, "Call t.retain_grad() before backward() to keep it, or read the leaf's "
            ".grad instead."))

    def hook_changed_gradient(self, owner: str, node: str | None, line: int | None) -> None:
        self.add(_diag(
            "hook_changed_gradient", "info",
            f"The hook registered on {owner} (line {line}) returned a gradient, which replaced "
            f"the one flowing into {owner}: from its node on, the steps show the hook's "
            "gradient, not the sum of what its consumers passed.",
            line, node, "That is what a hook that returns a tensor does; to only look at the "
            "gradient, return None from the hook (or call t.retain_grad() and read t.grad)."),
            key=(node, line))

    def grad_accumulated(self, name: str, node: str | None, line: int | None) -> None:
        self.add(_diag(
            "grad_accumulated", "info",
            f"backward() added to the gradient already in {name}.grad: gradients accumulate "
            "across backward calls.",
            line, node, f"Zero it between steps: {name}.grad.zero_() or optimizer.zero_grad()."),
            key=name)

    def custom_backward_mismatch(self, cls: str, node: str | None, line: int | None,
                                 analytic: list, numeric: list) -> None:
        def short(values: list) -> str:
            flat = torch.tensor(values, dtype=torch.float64).reshape(-1)[:8].tolist()
            more = " …" if torch.tensor(values).numel() > 8 else ""
            return "[" + ", ".join(f"{v:.4g}" for v in flat) + more + "]"
        pairs = "; ".join(f"input {i}: backward gave {short(a)}, finite differences give {short(n)}"
                          for i, (a, n) in enumerate(zip(analytic, numeric, strict=True)))
        self.add(_diag(
            "custom_backward_mismatch", "error",
            f"{cls}.backward does not match the derivative of {cls}.forward: {pairs}.",
            line, node, f"Fix {cls}.backward so it returns grad_output times the derivative of "
            "forward for each input (the numbers above are what it should return)."),
            key=f"{cls}:{line}")

    def unreached_leaf(self, name: str, node: str | None, line: int | None) -> None:
        self.add(_diag(
            "no_grad_path", "warning",
            f"{name} requires grad but backward() never reached it (its path to the loss was "
            "cut by torch.no_grad(), .detach(), .data or a non-differentiable op), so "
            f"{name}.grad is None.",
            line, node, "Compute the loss from it outside torch.no_grad() and without "
            ".detach()/.data."), key=name)

    def non_finite(self, passes: list[PassRecord], is_finite: Callable[[torch.Tensor], bool]) -> None:
        """The first node, in engine order, whose downstream gradient turned non-finite
        from a finite upstream gradient."""
        for p in passes:
            for step in p.steps:
                upstream_ok = all(g is None or is_finite(g) for g in step.grad_outputs)
                if not upstream_ok:
                    continue
                for g in step.grad_inputs:
                    if g is not None and not is_finite(g):
                        nan = any(bool(torch.isnan(x).any()) for st in p.steps
                                  for x in st.grad_inputs if x is not None)
                        rec = self.recorder.nodes.get(step.node)
                        fn = rec.grad_fn if rec else "a node"
                        code = "nan_gradient" if nan else "inf_gradient"
                        hint = ("If this is sqrt(sum(x**2)) at x = 0, use torch.norm(x) (or "
                                "torch.linalg.vector_norm), whose gradient at 0 is 0; otherwise "
                                "add a small eps inside sqrt/log/division."
                                if fn in ("SqrtBackward0", "PowBackward0", "DivBackward0",
                                          "LogBackward0") else
                                "Check this op's inputs for values where its derivative is "
                                "undefined (0 for sqrt/log, division by 0).")
                        self.add(_diag(
                            code, "error",
                            f"{fn} turned a finite upstream gradient into "
                            f"{'NaN' if bool(torch.isnan(g).any()) else 'infinity'}: its local "
                            "derivative is not finite at these inputs"
                            + (" (and inf × 0 became NaN further down)." if nan and not
                               bool(torch.isnan(g).any()) else "."),
                            rec.line if rec else None, step.node, hint), key=p.index)
                        return
