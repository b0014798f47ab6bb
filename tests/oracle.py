"""The oracle: run a program as plain Python + torch, and compare a Run with it.

Tests may ``exec`` (the server never does): this is the reference chainlens
must match, value for value, gradient for gradient, error for error.
"""

from __future__ import annotations

import contextlib
import io
import random
import re
import traceback
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from chainlens.engine import torch_globals

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
    ns: dict[str, Any] = {"__name__": "__oracle__"}
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


DTYPES = {"float32": torch.float32, "float64": torch.float64, "int64": torch.int64,
          "bool": torch.bool, "int32": torch.int32, "float16": torch.float16,
          "uint8": torch.uint8}


def assert_view_equals(view: Any, t: torch.Tensor, what: str) -> None:
    """The TensorView must describe exactly this tensor."""
    assert view.device == str(t.device), f"{what}: device {view.device} != {t.device}"
    t = t.detach().cpu()
    assert view.shape == list(t.shape), f"{what}: shape {view.shape} != {list(t.shape)}"
    assert view.dtype == str(t.dtype).removeprefix("torch."), f"{what}: dtype"
    assert view.numel == t.numel()
    if t.numel() <= 64:
        got = torch.tensor(decode(view.values), dtype=DTYPES.get(view.dtype, t.dtype))
        torch.testing.assert_close(got.reshape(t.shape), t, rtol=0, atol=0, equal_nan=True,
                                   msg=f"{what}: values differ")
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
