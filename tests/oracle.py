"""The oracle: run a program as plain Python + torch, and compare a Run with it.

Tests may ``exec`` (the server never does): this is the reference chainlens
must match, value for value, gradient for gradient, error for error.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import random
import re
import traceback
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from chainlens.scope import torch_globals

ADDRESS = re.compile(r" at 0x[0-9a-f]+")


@dataclass
class Oracle:
    stdout: str
    variables: dict[str, torch.Tensor] = field(default_factory=dict)
    error: tuple[str, str, int | None] | None = None


def first_line(e: BaseException) -> str:
    text = str(e).strip()
    if isinstance(e, KeyError) and e.args:
        text = repr(e.args[0])
    return text.splitlines()[0] if text else type(e).__name__


def run_plain(source: str, seed: int = 0, device: str = "cpu") -> Oracle:
    """``device`` as chainlens takes it: factory functions create tensors there."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    buf = io.StringIO()
    ns: dict[str, Any] = {"__name__": "__main__"}  # as a script runs
    error = None
    on_device = torch.device(device) if device != "cpu" else contextlib.nullcontext()
    # (torch_globals: the program's print options or anomaly mode must not outlive it)
    with contextlib.redirect_stdout(buf), warnings.catch_warnings(), on_device, torch_globals():
        warnings.simplefilter("ignore")
        try:
            exec(compile(source, "<program>", "exec"), ns)  # noqa: S102 - the oracle
        except Exception as e:  # noqa: BLE001
            line = None
            for frame in traceback.extract_tb(e.__traceback__):
                if frame.filename == "<program>":
                    line = frame.lineno
            error = (type(e).__name__, first_line(e), line)
    tensors = {k: v for k, v in ns.items() if isinstance(v, torch.Tensor)}
    return Oracle(buf.getvalue(), tensors, error)


def decode(values: Any) -> Any:
    if isinstance(values, list):
        return [decode(v) for v in values]
    if isinstance(values, str):
        return float(values)
    return values


DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "int64": torch.int64,
    "bool": torch.bool,
    "int32": torch.int32,
    "float16": torch.float16,
    "uint8": torch.uint8,
}


def assert_view_equals(view: Any, t: torch.Tensor, what: str) -> None:
    """The TensorView must describe exactly this tensor."""
    assert view.device == str(t.device), f"{what}: device {view.device} != {t.device}"
    t = t.detach().cpu()
    assert view.shape == list(t.shape), f"{what}: shape {view.shape} != {list(t.shape)}"
    assert view.dtype == str(t.dtype).removeprefix("torch."), f"{what}: dtype"
    assert view.numel == t.numel()
    if t.numel() <= 64:
        got = torch.tensor(decode(view.values), dtype=DTYPES.get(view.dtype, t.dtype))
        torch.testing.assert_close(
            got.reshape(t.shape), t, rtol=0, atol=0, equal_nan=True, msg=f"{what}: values differ"
        )
    elif t.is_floating_point() and torch.isfinite(t).all():
        assert view.stats.min == float(t.min()), f"{what}: min"
        assert view.stats.max == float(t.max()), f"{what}: max"
        assert abs(view.stats.mean - float(t.double().mean())) <= 1e-6 * (1 + abs(view.stats.mean))


def assert_matches(run: Any, oracle: Oracle, *, check_stdout: bool = True) -> None:
    """Every variable's value and .grad, the error, and stdout, as plain PyTorch gives them."""
    if oracle.error is None:
        assert run.status == "ok", f"chainlens failed where torch did not: {run.error}"
    else:
        assert run.status == "error", f"torch raised {oracle.error}, chainlens did not"
        etype, message, line = oracle.error
        assert run.error.type == etype, (run.error, oracle.error)
        assert run.error.message == message, (run.error.message, message)
        if line is not None:
            assert run.error.line == line, (run.error.line, line)
    if check_stdout:
        assert ADDRESS.sub("", run.stdout) == ADDRESS.sub("", oracle.stdout)
    for name, t in oracle.variables.items():
        assert name in run.variables, f"variable {name} missing"
        v = run.variables[name]
        assert v.is_leaf == t.is_leaf and v.requires_grad == t.requires_grad, name
        assert_view_equals(v.value, t, f"{name}")
        grad = t.grad if (t.is_leaf or t.retains_grad) else None
        if grad is None:
            assert v.grad is None, f"{name}.grad should be None"
        else:
            assert v.grad is not None, f"{name}.grad missing"
            assert_view_equals(v.grad, grad, f"{name}.grad")
    assert set(run.variables) == set(oracle.variables)


# ------------------------------------------------------------------ every pass, as it ran


@dataclass
class PlainStep:
    """One node the engine ran, as plain PyTorch's hooks saw it."""

    grad_fn: str
    grad_outputs: list[torch.Tensor | None]
    grad_inputs: list[torch.Tensor | None]
    #: the node's forward output when the program saw it (a leaf: its value when this
    #: pass's forward first used it); None for a node made inside a library call
    value: torch.Tensor | None
    saved: dict[str, torch.Tensor]
    #: what it saved besides tensors (a convolution's stride), lists as lists
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class PlainPass:
    loss: float | None
    steps: list[PlainStep] = field(default_factory=list)


class _PassWatcher(torch.overrides.TorchFunctionMode):
    """Plain PyTorch with a copy of every op's output taken right after the op, each
    leaf's value when a pass's forward first builds on it, and every backward call's
    steps read by node hooks: the moments at which chainlens shows its numbers."""

    def __init__(self) -> None:
        super().__init__()
        self.outputs: dict[Any, torch.Tensor] = {}  # grad_fn -> its output, copied
        self.leaf_values: list[dict[int, torch.Tensor]] = [{}]  # per pass, by id(leaf)
        self.passes: list[PlainPass] = []
        self._hooked: set[int] = set()
        self._keep: list[Any] = []  # grad_fns and leaves stay alive: their ids stay theirs

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        out = func(*args, **(kwargs or {}))
        self.saw(args, kwargs, out)
        return out

    def saw(self, args: Any, kwargs: dict | None, out: Any) -> None:
        """An op (or a custom Function's apply) gave ``out`` from these arguments."""
        outs = out if isinstance(out, (tuple, list)) else (out,)
        if torch.is_grad_enabled() and any(
            isinstance(o, torch.Tensor) and o.grad_fn is not None for o in outs
        ):
            ins = list(args) + list((kwargs or {}).values())
            for a in ins:
                for t in a if isinstance(a, (tuple, list)) else (a,):
                    if (
                        isinstance(t, torch.Tensor)
                        and t.is_leaf
                        and t.requires_grad
                        and id(t) not in self.leaf_values[-1]
                    ):
                        self.leaf_values[-1][id(t)] = t.detach().clone()
                        self._keep.append(t)
            for o in outs:
                if isinstance(o, torch.Tensor) and o.grad_fn is not None:
                    self.outputs[o.grad_fn] = o.detach().clone()
                    self._keep.append(o.grad_fn)

    def backward_called(self, roots: list[torch.Tensor]) -> None:
        first = roots[0] if roots else None
        loss = float(first.detach()) if first is not None and first.numel() == 1 else None
        p = PlainPass(loss)
        self.passes.append(p)
        epochs = list(reversed(self.leaf_values))  # this pass's forward first
        self.leaf_values.append({})
        stack = [r.grad_fn for r in roots if r.grad_fn is not None]
        seen: set[int] = set()
        while stack:
            fn = stack.pop()
            if id(fn) in seen:
                continue
            seen.add(id(fn))
            stack.extend(c for c, _ in fn.next_functions if c is not None)
            self._keep.append(fn)
            leaf = getattr(fn, "variable", None)
            # a leaf's value when a forward last built on it (a graph kept with
            # retain_graph=True was built on it in an earlier pass's forward)
            value = (
                next((e[id(leaf)] for e in epochs if id(leaf) in e), None)
                if leaf is not None
                else self.outputs.get(fn)
            )
            if leaf is not None:
                fn.register_prehook(self._leaf_hook(fn, value))
            elif id(fn) not in self._hooked:
                fn.register_hook(self._op_hook(fn))
            self._hooked.add(id(fn))

    def _leaf_hook(self, fn: Any, value: torch.Tensor | None):  # noqa: ANN202
        pass_ = self.passes[-1]

        def hook(grad_outputs):  # noqa: ANN001, ANN202
            if self.passes[-1] is pass_:
                pass_.steps.append(
                    PlainStep(type(fn).__name__, _copies(grad_outputs), [], value, {})
                )

        return hook

    def _op_hook(self, fn: Any):  # noqa: ANN202
        def hook(grad_inputs, grad_outputs):  # noqa: ANN001, ANN202
            saved, attrs = {}, {}
            for attr in dir(fn):
                if attr.startswith("_saved_"):
                    try:
                        v = getattr(fn, attr)
                    except RuntimeError:
                        continue
                    if isinstance(v, torch.Tensor):
                        saved[attr.removeprefix("_saved_")] = v.detach().clone()
                    elif isinstance(v, (bool, int, float, str, tuple, list)):
                        attrs[attr.removeprefix("_saved_")] = list(v) if isinstance(v, tuple) else v
            self.passes[-1].steps.append(
                PlainStep(
                    type(fn).__name__,
                    _copies(grad_outputs),
                    _copies(grad_inputs),
                    self.outputs.get(fn),
                    saved,
                    attrs,
                )
            )

        return hook


def _copies(grads: tuple) -> list[torch.Tensor | None]:
    return [None if g is None else g.detach().clone() for g in grads]


def run_plain_passes(source: str, seed: int = 0) -> list[PlainPass]:
    """Every backward pass of ``source`` in plain PyTorch, with the values of its nodes
    at the moments they had them."""
    watcher = _PassWatcher()
    backward, grad = torch.autograd.backward, torch.autograd.grad

    def watched_backward(tensors, *args, **kwargs):  # noqa: ANN001, ANN202
        roots = [tensors] if isinstance(tensors, torch.Tensor) else list(tensors)
        watcher.backward_called(roots)
        return backward(tensors, *args, **kwargs)

    def watched_grad(outputs, *args, **kwargs):  # noqa: ANN001, ANN202
        roots = [outputs] if isinstance(outputs, torch.Tensor) else list(outputs)
        watcher.backward_called(roots)
        return grad(outputs, *args, **kwargs)

    apply = inspect.getattr_static(torch.autograd.Function, "apply")  # the classmethod itself

    def watched_apply(cls, *args, **kwargs):  # noqa: ANN001, ANN202
        """Function.apply is out of TorchFunctionMode's sight: its outputs are seen here."""
        out = apply.__func__(cls, *args, **kwargs)
        watcher.saw(args, kwargs, out)
        return out

    torch.autograd.backward, torch.autograd.grad = watched_backward, watched_grad
    torch.autograd.Function.apply = classmethod(watched_apply)
    try:
        with watcher:
            run_plain(source, seed)
    finally:
        torch.autograd.backward, torch.autograd.grad = backward, grad
        torch.autograd.Function.apply = apply
    return watcher.passes
