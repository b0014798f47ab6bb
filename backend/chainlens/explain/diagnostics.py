"""Diagnostics: each classic backprop mistake, named on its line and node, with a fix.

The engine reports events (an exception, a rebound leaf, a ``.grad`` read on a
non-leaf, a second accumulation); this module turns each into the one-sentence
explanation and the code that fixes it.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from typing import Any, Literal

import torch

from ..errors import error_context
from ..schema import Diagnostic
from ..tracing.recorder import PassRecord, Recorder


def _diag(
    code: str,
    severity: Literal["error", "warning", "info"],
    message: str,
    line: int | None,
    node: str | None,
    hint: str,
) -> Diagnostic:
    return Diagnostic(
        code=code,
        severity=severity,
        message=message,
        line=line,
        node=node,
        hint=hint,
    )


_MIXED_DEVICES = (
    "The operation mixed tensors on different devices (CPU and GPU).",
    "Move them to one device first: x = x.to(device) for every input and model.to(device).",
)

# (code, text in the exception's message, explanation, fix)
_ERRORS: list[tuple[str, str, str, str]] = [
    (
        "non_scalar_backward",
        "grad can be implicitly created only for scalar outputs",
        "backward() was called on a tensor with more than one element, so PyTorch does not know "
        "which vector to multiply the Jacobian by.",
        "Reduce it to a scalar first (loss = y.sum() or y.mean()), or pass the vector: "
        "y.backward(gradient=torch.ones_like(y)).",
    ),
    (
        "inplace_on_leaf",
        "leaf Variable that requires grad is being used in an in-place operation",
        "An in-place operation changed a leaf tensor that requires grad; autograd cannot record a "
        "change to the very tensor it must compute the gradient for.",
        "Update parameters inside `with torch.no_grad():` (w -= lr * w.grad), or use an "
        "out-of-place op (x = x + 1).",
    ),
    (
        "inplace_modified_saved",
        "modified by an inplace operation",
        "A tensor that a node saved for backward was changed in place after it was saved, so the "
        "gradient would be computed from the wrong numbers.",
        "Use the out-of-place version of the op (x = x * 2 instead of x *= 2), or .clone() the "
        "tensor before changing it.",
    ),
    (
        "integer_requires_grad",
        "floating point",
        "Only floating-point (and complex) tensors can require gradients: an integer tensor has no "
        "infinitesimal change to differentiate with respect to.",
        "Create it as a float: torch.tensor([1., 2., 3.], requires_grad=True) or "
        "dtype=torch.float32.",
    ),
    ("device_mismatch", "Expected all tensors to be on the same device", *_MIXED_DEVICES),
    ("device_mismatch", "type (torch.cuda.", *_MIXED_DEVICES),  # a convolution's input, weight
    (
        "device_mismatch",
        "Torch not compiled with CUDA enabled",
        "The program asked for a CUDA tensor, but this server has no CUDA.",
        "Use device = 'cuda' if torch.cuda.is_available() else 'cpu'.",
    ),
    (
        "backward_twice",
        "backward through the graph a second time",
        "backward() ran through a graph whose saved tensors were already freed by an earlier "
        "backward().",
        "Recompute the forward pass before each backward(), or pass retain_graph=True to the first "
        "backward() if you really need to go through the same graph twice.",
    ),
    (
        "no_grad_path",
        "does not require grad and does not have a grad_fn",
        "backward() was called on a tensor that no input requiring grad reaches: it was computed "
        "under torch.no_grad(), from detached tensors, or from inputs without requires_grad=True.",
        "Create the inputs with requires_grad=True and compute the loss outside torch.no_grad().",
    ),
]


def _matmul(m: re.Match[str], op: str | None) -> tuple[str, str]:
    a, b, c, d = m.groups()
    if op in ("Linear", "linear"):  # (F.linear multiplies by the weight's transpose: in x out)
        return (
            f"nn.Linear({c}, {d}) got inputs with {b} features: a layer's in_features must "
            "equal the last dimension of its input.",
            f"Build it as nn.Linear({b}, {d}), or check the reshape before it (a conv net's "
            "x.view(x.size(0), -1) has channels × height × width features).",
        )
    return (
        f"A {a}×{b} matrix was multiplied by a {c}×{d} one: the inner sizes, {b} and {c}, "
        "must be equal.",
        "Transpose or reshape one side (w.T), so that the left one's columns match the right "
        "one's rows; print both .shape to compare.",
    )


def _broadcast(m: re.Match[str], op: str | None) -> tuple[str, str]:
    a, b, dim = m.groups()
    return (
        f"Tensors of sizes {a} and {b} in dimension {dim} were combined: there the sizes must "
        "be equal, or one of them 1 (broadcasting).",
        "Reshape, slice or unsqueeze one side so the shapes line up (print both .shape to "
        "compare); a (N, 1) prediction against an (N,) target wants target.view(-1, 1).",
    )


def _channels(m: re.Match[str], op: str | None) -> tuple[str, str]:
    weight, shape, wanted, got = m.groups()
    return (
        f"The convolution expects {wanted} input channels (its weight is [{weight}]) but got "
        f"an input of shape [{shape}], which has {got}.",
        f"Build the layer with in_channels={got} (the first argument of nn.Conv2d), or give "
        f"the input {wanted} channels: a batch of images is N × C × H × W.",
    )


def _view(m: re.Match[str], op: str | None) -> tuple[str, str]:
    shape, n = m.groups()
    return (
        f"A tensor of {n} elements cannot be viewed as [{shape}]: the new shape must hold "
        "exactly as many elements.",
        "Keep the batch dimension and let PyTorch infer the rest, x.view(x.size(0), -1), or "
        "check the product of the sizes you give.",
    )


#: The names PyTorch's messages give dtypes, as the program writes them.
_DTYPE_NAMES = {
    "double": "float64",
    "float": "float32",
    "half": "float16",
    "long": "int64",
    "int": "int32",
    "short": "int16",
    "byte": "uint8",
    "char": "int8",
}


def _dtype(name: str) -> str:
    return _DTYPE_NAMES.get(name.lower(), name.lower())


def _float_dtypes(m: re.Match[str], op: str | None) -> tuple[str, str]:
    a, b = m.groups()
    return (
        f"The operation mixed {_dtype(a)} and {_dtype(b)} tensors: its inputs must share one "
        "dtype.",
        "Convert one side, e.g. x = x.float() for float32: numpy arrays are float64 (and "
        "torch.from_numpy keeps that), while layers' weights are float32.",
    )


def _target_dtype(m: re.Match[str], op: str | None) -> tuple[str, str]:
    return (
        f"The loss takes class indices (int64) as its target, but got {_dtype(m.group(1))} values.",
        "Pass target.long(), one class index per sample; for per-class probabilities, pass a "
        "float target with the same shape as the input.",
    )


def _cast(m: re.Match[str], op: str | None) -> tuple[str, str]:
    result, out = m.groups()
    return (
        f"An in-place operation would store a {_dtype(result)} result in an {_dtype(out)} tensor.",
        "Make the tensor floating point first (x = x.float()), or use the out-of-place "
        "operation (x = x * 0.5).",
    )


#: (code, a pattern of PyTorch's message, the builder of what happened and its fix from the
#: match and the library call that raised, where an exception names one)
MessageTable = list[
    tuple[str, re.Pattern[str], Callable[[re.Match[str], str | None], tuple[str, str]]]
]

#: Shape and dtype errors, told with the numbers in PyTorch's own message.
_ERROR_MESSAGES: MessageTable = [
    (
        "shape_mismatch",
        re.compile(r"shapes cannot be multiplied \((\d+)x(\d+) and (\d+)x(\d+)\)"),
        _matmul,
    ),
    (
        "shape_mismatch",
        re.compile(
            r"size of tensor a \((\d+)\) must match the size of tensor b "
            r"\((\d+)\) at non-singleton dimension (\d+)"
        ),
        _broadcast,
    ),
    (
        "shape_mismatch",
        re.compile(
            r"weight of size \[([\d, ]+)\], expected input\[([\d, ]+)\] to "
            r"have (\d+) channels, but got (\d+) channels"
        ),
        _channels,
    ),
    (
        "shape_mismatch",
        re.compile(r"shape '\[([-\d, ]+)\]' is invalid for input of size (\d+)"),
        _view,
    ),
    (
        "dtype_mismatch",
        re.compile(r"must have the same dtype, but got (\w+) and (\w+)"),
        _float_dtypes,
    ),
    (
        "dtype_mismatch",
        re.compile(
            r"Input type \(([a-z]+)\) and \w+ type \(([a-z]+)\) should be "
            "the same"
        ),
        _float_dtypes,
    ),
    ("dtype_mismatch", re.compile(r"expected scalar type (\w+) but found (\w+)"), _float_dtypes),
    (
        "dtype_mismatch",
        re.compile(r"expected target dtype to be Long.*but got (\w+)"),
        _target_dtype,
    ),
    (
        "dtype_mismatch",
        re.compile(
            r"result type (\w+) can't be cast to the desired output type "
            r"(\w+)"
        ),
        _cast,
    ),
]


def _loss_broadcast(m: re.Match[str], op: str | None) -> tuple[str, str]:
    target, pred = m.groups()
    return (
        f"The loss compared a prediction of shape {pred} with a target of shape {target}: "
        "they broadcast against each other, so each prediction is compared with every target "
        "and the loss (and its gradient) is not the one meant. PyTorch only warns.",
        "Give both the same shape: pred.squeeze(1), or target.view(-1, 1) (torch.unsqueeze "
        "to add the missing dimension).",
    )


def _implicit_dim(m: re.Match[str], op: str | None) -> tuple[str, str]:
    return (
        f"{m.group(1)} was called without dim=, so PyTorch guessed the dimension to normalise "
        "over (a deprecated guess, which for a batch is not always the one meant).",
        f"Say it: dim=1 for a batch of rows of scores (F.{m.group(1)}(x, dim=1), or dim=1 "
        "given to the layer), dim=-1 for the last dimension.",
    )


#: PyTorch's warnings that a program runs but computes something else than meant, which it
#: otherwise only prints.
_WARNING_MESSAGES: MessageTable = [
    (
        "loss_broadcast",
        re.compile(
            r"Using a target size \(torch\.Size\((\[[\d, ]*\])\)\) that is "
            r"different to the input size \(torch\.Size\((\[[\d, ]*\])\)\)"
        ),
        _loss_broadcast,
    ),
    ("implicit_dim", re.compile(r"Implicit dimension choice for (\w+)"), _implicit_dim),
]


def _explain_message(
    table: MessageTable, text: str, op: str | None = None
) -> tuple[str, str, str] | None:
    """(code, what happened, fix) for the first pattern of ``table`` in ``text``."""
    for code, pattern, told in table:
        match = pattern.search(text)
        if match:
            return (code, *told(match, op))
    return None


class Diagnostics:
    """Collects the run's diagnostics; ``emit`` streams each as it is found."""

    def __init__(
        self, recorder: Recorder, emit: Callable[[Diagnostic], None] | None = None
    ) -> None:
        self.items: list[Diagnostic] = []
        self.recorder = recorder
        self.emit = emit
        self._seen: set[tuple[str, Any]] = set()

    def add(self, d: Diagnostic, key: Any = None) -> bool:
        """Keep ``d`` unless the same one (code, and ``key`` or line and node) is kept
        already; whether it was new."""
        k = (d.code, key if key is not None else (d.line, d.node))
        if k in self._seen:
            return False
        self._seen.add(k)
        self.items.append(d)
        if self.emit is not None:
            self.emit(d)
        return True

    def from_exception(self, exc: BaseException, line: int | None, node: str | None) -> None:
        owner = error_context(exc).grad_of
        if owner is not None:
            self.add(
                _diag(
                    "grad_is_none",
                    "error",
                    f"{owner}.grad is None: no backward() has reached {owner} yet (or it does not "
                    "require grad), so there is no gradient to read or zero.",
                    line,
                    node,
                    f"Call loss.backward() before using {owner}.grad, or zero it only when "
                    f"it exists: if {owner}.grad is not None: {owner}.grad.zero_() "
                    "(optimizer.zero_grad() does this for you).",
                )
            )
            return
        text = str(exc)
        for code, needle, what, fix in _ERRORS:
            if needle in text and (code != "integer_requires_grad" or "require gradients" in text):
                self.add(_diag(code, "error", what, line, node, fix))
                return
        told = _explain_message(_ERROR_MESSAGES, text, error_context(exc).op)
        if told:
            code, what, fix = told
            self.add(_diag(code, "error", what, line, node, fix))

    def watch_warnings(
        self, line: Callable[[], int | None], forward: Callable[..., None] | None = None
    ) -> None:
        """Inside a ``warnings.catch_warnings()``: the warnings in ``_WARNING_MESSAGES``
        become diagnostics on the line that caused them (``line`` reads where the code is),
        once per line however often a loop repeats them. A run ignores every other warning;
        ``forward`` (a recording's: the user's own ``showwarning``) shows the others as the
        user's filters would, and each explained one once per line."""
        for _, pattern, _ in _WARNING_MESSAGES:
            warnings.filterwarnings("always", message=pattern.pattern)  # (matched at the start)

        def show(message: Warning | str, *args: Any, **kwargs: Any) -> None:
            told = _explain_message(_WARNING_MESSAGES, str(message))
            new = False
            if told:
                code, what, fix = told
                new = self.add(_diag(code, "warning", what, line(), None, fix))
            if forward is not None and (new or not told):
                forward(message, *args, **kwargs)

        warnings.showwarning = show

    def non_scalar_auto(self, node: str | None, line: int | None, shape: list[int]) -> None:
        self.add(
            _diag(
                "non_scalar_backward",
                "info",
                f"The program's last value is a tensor of shape {shape}, not a scalar, so chainlens "
                "did not run backward from it.",
                line,
                node,
                "End with loss = y.sum() (or .mean()), or call y.backward(v) with a "
                "vector v of the same shape.",
            )
        )

    def leaf_overwritten(self, name: str, leaf_node: str | None, line: int | None) -> None:
        self.add(
            _diag(
                "leaf_overwritten",
                "warning",
                f"'{name}' was a leaf tensor that requires grad; line {line} rebound the name to a "
                f"computed tensor, so {name}.grad now reads a non-leaf (None) while the original "
                "leaf still gets the gradient.",
                line,
                leaf_node,
                f"Keep the leaf under its own name ({name}_in = {name} * 2), or update "
                f"it in place under torch.no_grad(): with torch.no_grad(): {name} -= lr * {name}.grad",
            ),
            key=(name, line),
        )

    def nonleaf_grad(self, node: str | None, line: int | None) -> None:
        self.add(
            _diag(
                "nonleaf_grad_access",
                "warning",
                "The .grad of a non-leaf tensor was read; PyTorch only fills .grad on leaves, so it "
                "is None.",
                line,
                node,
                "Call t.retain_grad() before backward() to keep it, or read the leaf's "
                ".grad instead.",
            )
        )

    def hook_changed_gradient(self, owner: str, node: str | None, line: int | None) -> None:
        self.add(
            _diag(
                "hook_changed_gradient",
                "info",
                f"The hook registered on {owner} (line {line}) returned a gradient, which replaced "
                f"the one flowing into {owner}: from its node on, the steps show the hook's "
                "gradient, not the sum of what its consumers passed.",
                line,
                node,
                "That is what a hook that returns a tensor does; to only look at the "
                "gradient, return None from the hook (or call t.retain_grad() and read t.grad).",
            ),
            key=(node, line),
        )

    def grad_accumulated(self, name: str, node: str | None, line: int | None) -> None:
        self.add(
            _diag(
                "grad_accumulated",
                "info",
                f"backward() added to the gradient already in {name}.grad: gradients accumulate "
                "across backward calls.",
                line,
                node,
                f"Zero it between steps: {name}.grad.zero_() or optimizer.zero_grad().",
            ),
            key=name,
        )

    def custom_backward_mismatch(
        self, cls: str, node: str | None, line: int | None, analytic: list, numeric: list
    ) -> None:
        def short(values: list) -> str:
            flat = torch.tensor(values, dtype=torch.float64).reshape(-1)[:8].tolist()
            more = " …" if torch.tensor(values).numel() > 8 else ""
            return "[" + ", ".join(f"{v:.4g}" for v in flat) + more + "]"

        pairs = "; ".join(
            f"input {i}: backward gave {short(a)}, finite differences give {short(n)}"
            for i, (a, n) in enumerate(zip(analytic, numeric, strict=True))
        )
        self.add(
            _diag(
                "custom_backward_mismatch",
                "error",
                f"{cls}.backward does not match the derivative of {cls}.forward: {pairs}.",
                line,
                node,
                f"Fix {cls}.backward so it returns grad_output times the derivative of "
                "forward for each input (the numbers above are what it should return).",
            ),
            key=f"{cls}:{line}",
        )

    def unreached_leaf(self, name: str, node: str | None, line: int | None) -> None:
        self.add(
            _diag(
                "no_grad_path",
                "warning",
                f"{name} requires grad but backward() never reached it (its path to the loss was "
                "cut by torch.no_grad(), .detach(), .data or a non-differentiable op), so "
                f"{name}.grad is None.",
                line,
                node,
                "Compute the loss from it outside torch.no_grad() and without .detach()/.data.",
            ),
            key=name,
        )

    def unreached_leaves(self, names: dict[str, Any]) -> None:
        """Leaves bound to a name that require grad but that no pass reached."""
        rec = self.recorder
        if not rec.passes or not rec.cuts:
            return
        reached = set().union(*(p.node_ids for p in rec.passes))
        cut_sources = {c.source for c in rec.cuts.values()}
        for name, value in names.items():
            if (
                isinstance(value, torch.Tensor)
                and value.is_leaf
                and value.requires_grad
                and value.grad is None
            ):
                nid = rec.node_of(value)
                if nid not in reached and nid in cut_sources:
                    self.unreached_leaf(name, nid, rec.nodes[nid].line)

    def passes_truncated(self, passes: int, limit: int, last: bool = True) -> None:
        """``last``: whether the last pass is recorded (see ``engine.run_wire``)."""
        recorded = (
            f"the first {limit - 1} and the last are recorded step by step"
            if last
            else f"the first {limit - 1} are recorded step by step, not the last (its loop "
            "was expected to run again, and recording it would have meant running the "
            "program a second time, too long)"
        )
        self.add(
            Diagnostic(
                code="passes_truncated",
                severity="info",
                message=f"The program ran {passes} backward passes; {recorded} "
                f"(limit max_recorded_passes={limit}); every pass's loss "
                "is in the loss curve.",
                line=None,
                node=None,
                hint="Lower the number of iterations to see every pass.",
            )
        )

    def non_finite(
        self, passes: list[PassRecord], is_finite: Callable[[torch.Tensor], bool]
    ) -> None:
        """The first node, in engine order, whose downstream gradient turned non-finite
        from a finite upstream gradient."""
        for p in passes:
            for step in p.steps:
                upstream_ok = all(g is None or is_finite(g) for g in step.grad_outputs)
                if not upstream_ok:
                    continue
                for g in step.grad_inputs:
                    if g is not None and not is_finite(g):
                        nan = any(
                            bool(torch.isnan(x).any())
                            for st in p.steps
                            for x in st.grad_inputs
                            if x is not None
                        )
                        rec = self.recorder.nodes.get(step.node)
                        fn = rec.grad_fn if rec else "a node"
                        code = "nan_gradient" if nan else "inf_gradient"
                        hint = (
                            "If this is sqrt(sum(x**2)) at x = 0, use torch.norm(x) (or "
                            "torch.linalg.vector_norm), whose gradient at 0 is 0; otherwise "
                            "add a small eps inside sqrt/log/division."
                            if fn
                            in ("SqrtBackward0", "PowBackward0", "DivBackward0", "LogBackward0")
                            else "Check this op's inputs for values where its derivative is "
                            "undefined (0 for sqrt/log, division by 0)."
                        )
                        self.add(
                            _diag(
                                code,
                                "error",
                                f"{fn} turned a finite upstream gradient into "
                                f"{'NaN' if bool(torch.isnan(g).any()) else 'infinity'}: its local "
                                "derivative is not finite at these inputs"
                                + (
                                    " (and inf × 0 became NaN further down)."
                                    if nan and not bool(torch.isnan(g).any())
                                    else "."
                                ),
                                rec.line if rec else None,
                                step.node,
                                hint,
                            ),
                            key=p.index,
                        )
                        return
