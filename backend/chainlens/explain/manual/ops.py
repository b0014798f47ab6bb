"""The numpy translation of each ATen op that makes an autograd node: its forward as an
expression, and the chain-rule line that gives each input's gradient from the output's.

A rule reads the call (operands as variable names, the other arguments as values) and
returns ``Code``. The gradient expressions are the ones PyTorch's derivatives.yaml uses,
written the way a course writes them (``grad_a = grad_y @ b.T``), so the generated file
computes what autograd computed, operation for operation.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from ..derivatives import (
    BINARIES,
    NP,
    PRODUCTS,
    UNARIES,
    Binary,
    Product,
    Sym,
    Unary,
    number_code,
)


def np_dtype(dtype: torch.dtype | np.dtype) -> str:
    """The numpy spelling of a torch or numpy dtype (``np.float32``; ``np.bool_``, which
    numpy 1 and 2 both have)."""
    name = dtype.name if isinstance(dtype, np.dtype) else str(dtype).removeprefix("torch.")
    return "np.bool_" if name == "bool" else f"np.{name}"


class Ref(str):
    """An operand as code: its variable name, with the tensor's shape and dtype, and
    for one that requires grad the node (and output) its gradient goes to."""

    shape: tuple[int, ...]
    dtype: torch.dtype
    node: tuple[str, int] | None

    def __new__(
        cls,
        name: str,
        shape: tuple[int, ...],
        dtype: torch.dtype,
        node: tuple[str, int] | None = None,
    ) -> Ref:
        ref = super().__new__(cls, name)
        ref.shape, ref.dtype, ref.node = shape, dtype, node
        return ref

    @property
    def ndim(self) -> int:
        return len(self.shape)


@dataclass
class Call:
    """One node's ATen call, ready to be written as code."""

    op: str
    args: list[Any]
    kwargs: dict[str, Any]
    y: str
    shape: tuple[int, ...]
    #: the upstream gradient of each output, as code (zeros where none flowed)
    upstream: list[str]

    @property
    def g(self) -> str:
        return self.upstream[0]

    @property
    def aux(self) -> str:
        return f"{self.y}_aux"

    def arg(self, i: int, name: str = "", default: Any = None) -> Any:
        if i < len(self.args):
            return self.args[i]
        return self.kwargs.get(name, default)


@dataclass
class Code:
    forward: str
    #: input position (or (position, item) inside a list argument) -> its gradient
    grads: dict[Any, str]
    note: str
    helpers: tuple[str, ...] = ()
    #: the forward gives (y, aux): what the backward needs besides y (indices, statistics)
    aux: bool = False
    #: elementwise with broadcasting: each gradient is summed back to its input's shape
    broadcast: bool = False


Rule = Callable[[Call], Code]
#: Ops whose outputs are a list of pieces, each with its own gradient.
PIECES = {"split.Tensor", "split_with_sizes.default", "unbind.int"}
NUMPY_RULES: dict[str, Rule] = {}


def rule(*ops: str) -> Callable[[Rule], Rule]:
    def register(fn: Rule) -> Rule:
        for op in ops:
            NUMPY_RULES[op] = fn
        return fn

    return register


def lit(v: Any) -> str:
    """A Python literal for an argument: numbers, tuples, None, dtypes (an operand is
    its name already)."""
    if isinstance(v, Ref):
        return str(v)
    if isinstance(v, torch.dtype):
        return np_dtype(v)
    if isinstance(v, float):
        return number_code(v)
    if isinstance(v, (list, tuple)):
        return "(" + ", ".join(lit(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    return repr(v)


def dims(dim: Any, ndim: int) -> tuple[int, ...]:
    """Reduced dims as non-negative axes (all of them when ``dim`` is None or empty)."""
    if dim is None or (isinstance(dim, (list, tuple)) and len(dim) == 0):
        return tuple(range(ndim))
    items = dim if isinstance(dim, (list, tuple)) else [dim]
    return tuple(sorted(d % max(ndim, 1) for d in items))


def key(ndim_before: int, item: str) -> str:
    """An index expression ``[:, :, item]`` picking ``item`` along dim ``ndim_before``."""
    return "[" + ", ".join([":"] * ndim_before + [item]) + "]"


def two(v: Any) -> tuple[int, int]:
    if isinstance(v, (list, tuple)):
        return (int(v[0]), int(v[-1])) if v else (0, 0)
    return (int(v), int(v))


# ------------------------------------------------------------------ elementwise
def _scaled(alpha: Any, name: str) -> str:
    return name if alpha == 1 else f"{lit(alpha)} * {name}"


@rule("add.Tensor", "add.Scalar", "add_.Tensor", "add_.Scalar")
def _add(c: Call) -> Code:
    a, b, alpha = c.arg(0), c.arg(1), c.arg(2, "alpha", 1)
    return Code(
        f"{a} + {_scaled(alpha, lit(b) if not isinstance(b, Ref) else b)}",
        {0: c.g, 1: _scaled(alpha, c.g)},
        "∂(a + b)/∂a = ∂(a + b)/∂b = 1: the gradient passes through unchanged",
        broadcast=True,
    )


@rule("sub.Tensor", "sub.Scalar", "sub_.Tensor", "sub_.Scalar")
def _sub(c: Call) -> Code:
    a, b, alpha = c.arg(0), c.arg(1), c.arg(2, "alpha", 1)
    return Code(
        f"{a} - {_scaled(alpha, lit(b) if not isinstance(b, Ref) else b)}",
        {0: c.g, 1: f"-{_scaled(alpha, c.g)}"},
        "∂(a − b)/∂a = 1, ∂(a − b)/∂b = −1",
        broadcast=True,
    )


@rule("rsub.Tensor", "rsub.Scalar")
def _rsub(c: Call) -> Code:
    a, b, alpha = c.arg(0), c.arg(1), c.arg(2, "alpha", 1)
    return Code(
        f"{lit(b) if not isinstance(b, Ref) else b} - {_scaled(alpha, a)}",
        {0: f"-{_scaled(alpha, c.g)}", 1: c.g},
        "∂(b − a)/∂a = −1",
        broadcast=True,
    )


def _v(x: Any) -> str:
    return x if isinstance(x, Ref) else lit(x)


def _sym(x: Any) -> Sym:
    """An operand (its name) or an argument (a literal) as a ``derivatives`` expression."""
    return Sym(x) if isinstance(x, Ref) else Sym.of(x)


def _binary(d: Binary) -> Rule:
    """``derivatives``' entry as code: each gradient is the upstream times the local
    derivative, summed back to its operand's shape by the writer."""

    def apply(c: Call) -> Code:
        a, b, g = _sym(c.arg(0)), _sym(c.arg(1)), Sym(c.g)
        o = SimpleNamespace(a=a, b=b)
        return Code(
            str(d.forward(a, b, NP)),
            {0: str(g * d.local_a(o, NP)), 1: str(g * d.local_b(o, NP))},
            d.text,
            broadcast=True,
        )

    return apply


for _d2 in BINARIES:
    rule(*_d2.aten)(_binary(_d2))


@rule("pow.Tensor_Scalar")
def _pow(c: Call) -> Code:
    a, e = c.arg(0), c.arg(1)
    local = f"{lit(e)} * {a}" if e == 2 else f"{lit(e)} * {a} ** {lit(e - 1)}"
    return Code(
        f"{a} ** {lit(e)}",
        {0: f"{c.g} * ({local})" if e else f"np.zeros_like({a})"},
        f"∂(a^{e})/∂a = {e}·a^{e - 1}" if e else "a⁰ = 1 does not depend on a",
    )


@rule("pow.Tensor_Tensor", "pow.Scalar")
def _pow_tensor(c: Call) -> Code:
    a, b, y = _v(c.arg(0)), _v(c.arg(1)), c.y
    return Code(
        f"{a} ** {b}",
        {
            0: f"{c.g} * {b} * {a} ** ({b} - 1)",
            1: f"np.where(({a} == 0) & ({b} >= 0), 0, {c.g} * {y} * np.log({a}))",
        },
        "∂(a^b)/∂a = b·a^(b−1), ∂(a^b)/∂b = a^b·ln a",
        broadcast=True,
    )


def _unary(d: Unary) -> Rule:
    """``derivatives``' entry as code: y from a, and the upstream times ∂y/∂a."""

    def apply(c: Call) -> Code:
        a = Sym(c.arg(0))
        o = SimpleNamespace(x=a, y=Sym(c.y))
        return Code(str(d.forward(a, NP)), {0: str(Sym(c.g) * d.local(o, NP))}, f"∂y/∂a = {d.text}")

    return apply


for _d in UNARIES:
    rule(*_d.aten)(_unary(_d))


@rule("clone.default")
def _clone(c: Call) -> Code:
    return Code(f"{c.arg(0)}.copy()", {0: c.g}, "a copy: the gradient passes through")


@rule("gelu.default", "gelu_.default")
def _gelu(c: Call) -> Code:
    a = c.arg(0)
    if c.kwargs.get("approximate", c.arg(1, "approximate", "none")) == "tanh":
        k = "np.sqrt(2 / np.pi)"
        inner = f"{k} * ({a} + 0.044715 * {a} ** 3)"
        return Code(
            f"0.5 * {a} * (1 + np.tanh({inner}))",
            {
                0: f"{c.g} * (0.5 * (1 + np.tanh({inner})) + 0.5 * {a} * (1 - np.tanh({inner}) ** 2)"
                f" * {k} * (1 + 3 * 0.044715 * {a} ** 2))"
            },
            "GELU (tanh form), differentiated",
        )
    return Code(
        f"gelu({a})",
        {0: f"{c.g} * gelu_grad({a})"},
        "∂(a·Φ(a))/∂a = Φ(a) + a·φ(a)",
        ("gelu", "gelu_grad"),
    )


@rule("leaky_relu.default", "leaky_relu_.default")
def _leaky(c: Call) -> Code:
    a, slope = c.arg(0), c.arg(1, "negative_slope", 0.01)
    return Code(
        f"np.where({a} > 0, {a}, {a} * {lit(slope)})",
        {0: f"np.where({a} > 0, {c.g}, {c.g} * {lit(slope)})"},
        f"slope 1 where a > 0, {slope} elsewhere",
    )


@rule("elu.default", "elu_.default")
def _elu(c: Call) -> Code:
    a = c.arg(0)
    alpha, scale, inner = c.arg(1, "alpha", 1), c.arg(2, "scale", 1), c.arg(3, "input_scale", 1)
    neg = f"{lit(scale)} * {lit(alpha)} * np.exp({a} * {lit(inner)})"
    return Code(
        f"np.where({a} > 0, {_scaled(scale, a)}, {neg} - {lit(scale)} * {lit(alpha)})",
        {0: f"np.where({a} > 0, {_scaled(scale, c.g)}, {c.g} * {neg} * {lit(inner)})"},
        "slope 1 above 0, α·eᵃ below",
    )


@rule("log_sigmoid_forward.default")
def _log_sigmoid(c: Call) -> Code:
    a = c.arg(0)
    return Code(
        f"np.minimum({a}, 0) - np.log1p(np.exp(-np.abs({a})))",
        {0: f"{c.g} * (1 - 1 / (1 + np.exp(-{a})))"},
        "∂ln σ(a)/∂a = 1 − σ(a)",
    )


@rule("threshold.default", "threshold_.default")
def _threshold(c: Call) -> Code:
    a, th, value = c.arg(0), c.arg(1), c.arg(2)
    return Code(
        f"np.where({a} <= {lit(th)}, {lit(value)}, {a})",
        {0: f"np.where({a} <= {lit(th)}, 0, {c.g})"},
        f"the gradient passes where a > {th}",
    )


@rule("softplus.default")
def _softplus(c: Call) -> Code:
    a, beta, th = c.arg(0), c.arg(1, "beta", 1), c.arg(2, "threshold", 20)
    ba = f"{a} * {lit(beta)}"
    return Code(
        f"np.where({ba} > {lit(th)}, {a}, np.log1p(np.exp({ba})) / {lit(beta)})",
        {0: f"np.where({ba} > {lit(th)}, {c.g}, {c.g} / (1 + np.exp(-{ba})))"},
        "∂softplus(a)/∂a = σ(β·a)",
    )


@rule("clamp.default", "clamp_.default", "clamp_min.default", "clamp_max.default")
def _clamp(c: Call) -> Code:
    a = c.arg(0)
    if c.op.startswith("clamp_min"):
        lo, hi = c.arg(1), None
    elif c.op.startswith("clamp_max"):
        lo, hi = None, c.arg(1)
    else:
        lo, hi = c.arg(1, "min"), c.arg(2, "max")
    mask = (
        " & ".join(
            ([f"({a} >= {lit(lo)})"] if lo is not None else [])
            + ([f"({a} <= {lit(hi)})"] if hi is not None else [])
        )
        or "True"
    )
    return Code(
        f"np.clip({a}, {lit(lo)}, {lit(hi)})",
        {0: f"{c.g} * ({mask})"},
        "the gradient passes where a is inside the bounds, 0 where it was clamped",
    )


@rule("hardtanh.default", "hardtanh_.default")
def _hardtanh(c: Call) -> Code:
    a, lo, hi = c.arg(0), c.arg(1, "min_val", -1), c.arg(2, "max_val", 1)
    return Code(
        f"np.clip({a}, {lit(lo)}, {lit(hi)})",
        {0: f"{c.g} * (({a} > {lit(lo)}) & ({a} < {lit(hi)}))"},
        f"slope 1 strictly between {lo} and {hi}, 0 outside",
    )


@rule("where.self")
def _where(c: Call) -> Code:
    cond, a, b = _v(c.arg(0)), _v(c.arg(1)), _v(c.arg(2))
    return Code(
        f"np.where({cond}, {a}, {b})",
        {1: f"np.where({cond}, {c.g}, 0)", 2: f"np.where({cond}, 0, {c.g})"},
        "each element's gradient goes to the input it was taken from",
        broadcast=True,
    )


@rule("maximum.default", "minimum.default")
def _maximum(c: Call) -> Code:
    a, b = c.arg(0), c.arg(1)
    fn, wins = ("maximum", ">") if c.op.startswith("maximum") else ("minimum", "<")
    return Code(
        f"np.{fn}({a}, {b})",
        {
            0: f"np.where({a} == {b}, {c.g} / 2, np.where({a} {wins} {b}, {c.g}, 0))",
            1: f"np.where({a} == {b}, {c.g} / 2, np.where({b} {wins} {a}, {c.g}, 0))",
        },
        "the gradient goes to the winner; ties split it in half",
        broadcast=True,
    )


@rule("masked_fill.Scalar", "masked_fill_.Scalar", "masked_fill.Tensor")
def _masked_fill(c: Call) -> Code:
    a, mask, value = c.arg(0), c.arg(1), _v(c.arg(2))
    return Code(
        f"np.where({mask}, {value}, {a})",
        {0: f"np.where({mask}, 0, {c.g})"},
        "filled positions no longer depend on a: their gradient is 0",
    )


@rule("_to_copy.default")
def _to_copy(c: Call) -> Code:
    a, dtype = c.arg(0), c.kwargs.get("dtype")
    target = np_dtype(dtype if dtype is not None else a.dtype)
    return Code(
        f"{a}.astype({target})",
        {0: f"{c.g}.astype({np_dtype(a.dtype)})"},
        "a type or device change: the gradient is converted back",
    )


# ------------------------------------------------------------------ reductions
def _spread(c: Call, a: Ref, axes: tuple[int, ...], keepdim: bool, value: str) -> str:
    """``value`` (shaped like the reduced output) broadcast back over the reduced dims."""
    if not keepdim and axes and c.shape not in (a.shape, ()):
        value = f"np.expand_dims({value}, {lit(axes)})"
    return f"np.broadcast_to({value}, {lit(a.shape)})"


def _axis(axes: tuple[int, ...], a: Ref, keep: bool) -> str:
    """The arguments of a numpy reduction (none for a reduction over everything)."""
    if len(axes) == a.ndim and not keep:
        return ""
    return f"axis={lit(axes)}" + (", keepdims=True" if keep else "")


@rule("sum.default", "sum.dim_IntList")
def _sum(c: Call) -> Code:
    a = c.arg(0)
    axes = dims(c.arg(1, "dim"), a.ndim) if c.op.endswith("IntList") else tuple(range(a.ndim))
    keep = bool(c.arg(2, "keepdim", False))
    return Code(
        f"{a}.sum({_axis(axes, a, keep)})",
        {0: _spread(c, a, axes, keep, c.g)},
        "∂(Σa)/∂aᵢ = 1: the gradient is copied to every summed element",
    )


@rule("mean.default", "mean.dim")
def _mean(c: Call) -> Code:
    a = c.arg(0)
    axes = dims(c.arg(1, "dim"), a.ndim) if c.op == "mean.dim" else tuple(range(a.ndim))
    keep = bool(c.arg(2, "keepdim", False))
    n = math.prod(a.shape[d] for d in axes) if a.shape else 1
    return Code(
        f"{a}.mean({_axis(axes, a, keep)})",
        {0: _spread(c, a, axes, keep, f"{c.g} / {n}")},
        f"mean divides by n = {n}: each element gets 1/{n} of the gradient",
    )


@rule("var.correction", "std.correction")
def _var(c: Call) -> Code:
    a = c.arg(0)
    axes = dims(c.arg(1, "dim"), a.ndim)
    ddof = c.kwargs.get("correction", 1)
    ddof = 1 if ddof is None else ddof
    keep = bool(c.kwargs.get("keepdim", False))
    n = math.prod(a.shape[d] for d in axes) if a.shape else 1
    centered = f"({a} - {a}.mean({_axis(axes, a, True)}))"
    var = f"{a}.var({_axis(axes, a, keep)}{', ' if _axis(axes, a, keep) else ''}ddof={ddof})"
    if c.op.startswith("std"):
        return Code(
            f"np.sqrt({var})",
            {0: f"{_spread(c, a, axes, keep, f'{c.g} / {c.y}')} * {centered} / {n - ddof}"},
            f"∂std/∂aᵢ = (aᵢ − mean)/((n − {ddof})·std), n = {n}",
        )
    return Code(
        var,
        {0: f"{_spread(c, a, axes, keep, c.g)} * 2 * {centered} / {n - ddof}"},
        f"∂var/∂aᵢ = 2(aᵢ − mean)/(n − {ddof}), n = {n}",
    )


@rule("prod.default")
def _prod(c: Call) -> Code:
    a = c.arg(0)
    return Code(
        f"{a}.prod()",
        {0: f"{c.g} * prod_others({a})"},
        "∂(Πa)/∂aᵢ = the product of all the other elements",
        ("prod_others",),
    )


@rule("max.default", "min.default", "amax.default", "amin.default")
def _max_all(c: Call) -> Code:
    a = c.arg(0)
    fn = "max" if "max" in c.op else "min"
    if c.op.startswith("am"):
        axes = dims(c.arg(1, "dim"), a.ndim)
        keep = bool(c.arg(2, "keepdim", False))
        win = f"({a} == {_spread(c, a, axes, keep, c.y)})"
        share = _spread(c, a, axes, keep, c.g)
        count = f"{win}.sum(axis={lit(axes)}, keepdims=True)"
        return Code(
            f"{a}.{fn}(axis={lit(axes)}{', keepdims=True' if keep else ''})",
            {0: f"{share} * {win} / {count}"},
            f"the {fn} routes the gradient to the winners, shared evenly on ties",
        )
    return Code(
        f"{a}.{fn}()",
        {0: f"{c.g} * ({a} == {c.y}) / np.sum({a} == {c.y})"},
        f"the {fn} routes the gradient to the winner, shared evenly on ties",
    )


@rule("max.dim", "min.dim")
def _max_dim(c: Call) -> Code:
    a = c.arg(0)
    axis = dims(c.arg(1, "dim"), a.ndim)[0]
    keep = bool(c.arg(2, "keepdim", False))
    fn = "max_along" if c.op.startswith("max") else "min_along"
    return Code(
        f"{fn}({a}, {axis}, {keep})",
        {0: f"along_grad({c.g}, {a}, {c.aux}, {axis}, {keep})"},
        f"only the chosen element along dim {axis} gets the gradient",
        (fn, "along_grad"),
        aux=True,
    )


@rule("linalg_vector_norm.default")
def _norm(c: Call) -> Code:
    a = c.arg(0)
    order = c.arg(1, "ord", 2)
    if order != 2:
        raise NotImplementedError(f"a vector norm of order {order}")
    axes = dims(c.arg(2, "dim"), a.ndim)
    keep = bool(c.arg(3, "keepdim", False))
    ratio = _spread(
        c, a, axes, keep, f"np.where({c.y} == 0, 0, {c.g} / np.where({c.y} == 0, 1, {c.y}))"
    )
    return Code(
        f"np.sqrt(({a} * {a}).sum(axis={lit(axes)}{', keepdims=True' if keep else ''}))",
        {0: f"{a} * {ratio}"},
        "∂‖a‖/∂a = a/‖a‖ (0 where the norm is 0)",
    )


# ------------------------------------------------------------------ matrices
def _product(d: Product) -> Rule:
    """``derivatives``' entry as code, with the shapes in the comment."""

    def apply(c: Call) -> Code:
        a, b = c.arg(0), c.arg(1)
        o = SimpleNamespace(a=Sym(a), b=Sym(b))
        g = Sym(c.g)
        return Code(
            str(d.forward(o.a, o.b, NP)),
            {0: str(d.grad_a(g, o, NP)), 1: str(d.grad_b(g, o, NP))},
            f"{d.text}; {list(a.shape)} and {list(b.shape)} -> {list(c.shape)}",
        )

    return apply


for _p in PRODUCTS:
    rule(*_p.aten)(_product(_p))


@rule("addmm.default")
def _addmm(c: Call) -> Code:
    bias, a, b = c.arg(0), c.arg(1), c.arg(2)
    beta, alpha = c.arg(3, "beta", 1), c.arg(4, "alpha", 1)
    gb = _scaled(beta, c.g)
    return Code(
        f"{_scaled(beta, bias)} + {_scaled(alpha, f'{a} @ {b}')}",
        {
            0: gb if tuple(bias.shape) == c.shape else f"unbroadcast({gb}, {lit(bias.shape)})",
            1: _scaled(alpha, f"{c.g} @ {b}.T"),
            2: _scaled(alpha, f"{a}.T @ {c.g}"),
        },
        f"Y = bias + A·B: ∂L/∂A = ∂L/∂Y·Bᵀ, ∂L/∂B = Aᵀ·∂L/∂Y; the bias was broadcast over "
        f"the {c.shape[0] if c.shape else 1} rows, so its gradient is their sum",
        ("unbroadcast",) if tuple(bias.shape) != c.shape else (),
    )


def _mT(x: str, ndim: int) -> str:
    """A matrix (or a batch of them), transposed."""
    return f"{x}.T" if ndim == 2 else f"{x}.swapaxes(-1, -2)"


@rule("linalg_inv_ex.default")
def _inv(c: Call) -> Code:
    a = c.arg(0)
    yT = _mT(c.y, a.ndim)
    return Code(
        f"np.linalg.inv({a})", {0: f"-{yT} @ {c.g} @ {yT}"}, "Y = A⁻¹: ∂L/∂A = −Yᵀ·∂L/∂Y·Yᵀ"
    )


@rule("_linalg_det.default")
def _det(c: Call) -> Code:
    a = c.arg(0)
    scale = f"{c.g} * {c.y}" if a.ndim == 2 else f"({c.g} * {c.y})[..., None, None]"
    return Code(
        f"np.linalg.det({a})",
        {0: f"{scale} * {_mT(f'np.linalg.inv({a})', a.ndim)}"},
        "∂det(A)/∂A = det(A)·A⁻ᵀ",
    )


@rule("_linalg_solve_ex.default")
def _solve(c: Call) -> Code:
    a, b = c.arg(0), c.arg(1)
    if not c.arg(2, "left", True):
        raise NotImplementedError("solve with the unknown on the right")
    vector = b.ndim == a.ndim - 1
    if vector and a.ndim != 2:
        raise NotImplementedError("a batch of solves for vectors")
    gb = f"np.linalg.solve({_mT(a, a.ndim)}, {c.g})"
    return Code(
        f"np.linalg.solve({a}, {b})",
        {0: f"-np.outer({gb}, {c.y})" if vector else f"-{gb} @ {_mT(c.y, a.ndim)}", 1: gb},
        "X = A⁻¹B: ∂L/∂B = A⁻ᵀ·∂L/∂X, and ∂L/∂A = −∂L/∂B·Xᵀ",
    )


# ------------------------------------------------------------------ shapes
def _reshape_rule(note: str) -> Rule:
    def apply(c: Call) -> Code:
        a = c.arg(0)
        return Code(f"{a}.reshape({lit(c.shape)})", {0: f"{c.g}.reshape({lit(a.shape)})"}, note)

    return apply


rule(
    "view.default",
    "_unsafe_view.default",
    "reshape.default",
    "unsqueeze.default",
    "squeeze.default",
    "squeeze.dim",
    "squeeze.dims",
    "unsqueeze_.default",
    "alias.default",
    "flatten.using_ints",
    "_reshape_alias.default",
)(_reshape_rule("a reshape moves no numbers: the gradient is reshaped back"))


@rule("repeat.default")
def _repeat(c: Call) -> Code:
    a, reps = c.arg(0), tuple(c.arg(1))
    return Code(
        f"np.tile({a}, {lit(reps)})",
        {0: f"untile({c.g}, {lit(a.shape)}, {lit(reps)})"},
        "every copy feeds the loss: the copies' gradients are summed",
        ("untile",),
    )


@rule("t.default")
def _t(c: Call) -> Code:
    a = c.arg(0)
    return Code(f"{a}.T", {0: f"{c.g}.T"}, "the gradient of a transpose is transposed back")


@rule("transpose.int")
def _transpose(c: Call) -> Code:
    a = c.arg(0)
    d0, d1 = (d % a.ndim for d in (c.arg(1), c.arg(2)))
    return Code(
        f"np.swapaxes({a}, {d0}, {d1})",
        {0: f"np.swapaxes({c.g}, {d0}, {d1})"},
        f"dims {d0} and {d1} swapped back",
    )


@rule("permute.default")
def _permute(c: Call) -> Code:
    a = c.arg(0)
    order = tuple(d % a.ndim for d in c.arg(1))
    inverse = tuple(sorted(range(len(order)), key=order.__getitem__))
    return Code(
        f"np.transpose({a}, {lit(order)})",
        {0: f"np.transpose({c.g}, {lit(inverse)})"},
        f"the inverse permutation {inverse} puts the gradient back",
    )


@rule("expand.default")
def _expand(c: Call) -> Code:
    a = c.arg(0)
    return Code(
        f"np.broadcast_to({a}, {lit(c.shape)})",
        {0: f"unbroadcast({c.g}, {lit(a.shape)})"},
        "expanded copies all feed the loss: their gradients are summed",
        ("unbroadcast",),
    )


@rule("select.int")
def _select(c: Call) -> Code:
    a = c.arg(0)
    d = c.arg(1) % a.ndim
    item = key(d, str(c.arg(2)))
    return Code(
        f"{a}{item}",
        {0: f"scatter({c.g}, {lit(a.shape)}, np.s_{item})"},
        "the selected slice gets the gradient, everything else 0",
        ("scatter",),
    )


@rule("slice.Tensor")
def _slice(c: Call) -> Code:
    a = c.arg(0)
    d = c.arg(1, "dim", 0) % a.ndim
    start, end, step = c.arg(2, "start"), c.arg(3, "end"), c.arg(4, "step", 1)
    size = a.shape[d]
    text = (
        f"{'' if start in (None, 0) else start}:"
        f"{'' if end is None or end >= size else end}{'' if step == 1 else f':{step}'}"
    )
    item = key(d, text)
    return Code(
        f"{a}{item}",
        {0: f"scatter({c.g}, {lit(a.shape)}, np.s_{item})"},
        "the sliced elements get the gradient, everything else 0",
        ("scatter",),
    )


@rule("index.Tensor")
def _index(c: Call) -> Code:
    a, indices = c.arg(0), c.arg(1)
    parts = [str(i) if i is not None else ":" for i in indices]
    item = "[" + ", ".join(parts) + "]"
    return Code(
        f"{a}{item}",
        {0: f"scatter({c.g}, {lit(a.shape)}, np.s_{item})"},
        "indexing: each picked element gets its gradient (added up where picked twice)",
        ("scatter",),
    )


@rule("cat.default")
def _cat(c: Call) -> Code:
    tensors = c.arg(0)
    d = c.arg(1, "dim", 0) % len(c.shape)
    grads, start = {}, 0
    for j, t in enumerate(tensors):
        n = t.shape[d] if t.ndim > d else 0
        grads[(0, j)] = f"{c.g}{key(d, f'{start}:{start + n}')}"
        start += n
    return Code(
        f"np.concatenate([{', '.join(tensors)}], axis={d})",
        grads,
        f"each input gets its own slice of the gradient along dim {d}",
    )


@rule("stack.default")
def _stack(c: Call) -> Code:
    tensors = c.arg(0)
    d = c.arg(1, "dim", 0) % len(c.shape)
    return Code(
        f"np.stack([{', '.join(tensors)}], axis={d})",
        {(0, j): f"{c.g}{key(d, str(j))}" for j in range(len(tensors))},
        f"each input gets its own index of the gradient along dim {d}",
    )


@rule("split.Tensor", "split_with_sizes.default", "unbind.int")
def _split(c: Call) -> Code:
    a = c.arg(0)
    if c.op.startswith("unbind"):
        d = c.arg(1, "dim", 0) % a.ndim
        return Code(
            f"list(np.moveaxis({a}, {d}, 0))",
            {0: f"np.stack([{', '.join(c.upstream)}], axis={d})"},
            f"the pieces' gradients stacked back along dim {d}",
        )
    d = c.arg(2, "dim", 0) % a.ndim
    size = c.arg(1)
    sizes = (
        list(size)
        if isinstance(size, (list, tuple))
        else [min(size, a.shape[d] - s) for s in range(0, a.shape[d], size)]
    )
    cuts = [sum(sizes[: i + 1]) for i in range(len(sizes) - 1)]
    return Code(
        f"np.split({a}, {lit(cuts)}, axis={d})",
        {0: f"np.concatenate([{', '.join(c.upstream)}], axis={d})"},
        f"the pieces' gradients put back side by side along dim {d}",
    )


# ------------------------------------------------------------------ layers
@rule("convolution.default")
def _conv(c: Call) -> Code:
    x, w, b = c.arg(0), c.arg(1), c.arg(2)
    stride, padding, dilation = c.arg(3), c.arg(4), c.arg(5)
    transposed, groups = c.arg(6), c.arg(8)
    if transposed or groups != 1 or any(v != 1 for v in dilation) or x.ndim != 4:
        raise NotImplementedError(
            "a convolution other than a plain 2-d one (groups, dilation, transposed or 1-d/3-d)"
        )
    s, p = lit(two(stride)), lit(two(padding))
    grads = {
        0: f"conv2d_grad_input({c.g}, {x}, {w}, {s}, {p})",
        1: f"conv2d_grad_weight({c.g}, {x}, {w}, {s}, {p})",
    }
    if isinstance(b, Ref):
        grads[2] = f"{c.g}.sum(axis=(0, 2, 3))"
    return Code(
        f"conv2d({x}, {w}, {b if isinstance(b, Ref) else 'None'}, {s}, {p})",
        grads,
        "∂L/∂w: each output's gradient times the patch it read, summed; ∂L/∂x: "
        "the same gradients times the weights, added back onto the patches; "
        "∂L/∂b: summed over batch and positions",
        ("conv2d", "conv2d_grad_input", "conv2d_grad_weight", "im2col"),
    )


@rule("max_pool2d_with_indices.default")
def _max_pool(c: Call) -> Code:
    x = c.arg(0)
    kernel = two(c.arg(1))
    stride = two(c.arg(2) or kernel)
    padding = two(c.arg(3, "padding", 0))
    if any(v != 1 for v in two(c.arg(4, "dilation", 1))) or c.arg(5, "ceil_mode", False):
        raise NotImplementedError("max pooling with dilation or ceil_mode")
    args = f"{lit(kernel)}, {lit(stride)}, {lit(padding)}"
    return Code(
        f"max_pool2d({x}, {args})",
        {0: f"max_pool2d_grad({c.g}, {x}, {c.aux}, {args})"},
        "each window's gradient goes to the element that was its max",
        ("max_pool2d", "max_pool2d_grad", "im2col"),
        aux=True,
    )


@rule("avg_pool2d.default")
def _avg_pool(c: Call) -> Code:
    x = c.arg(0)
    kernel = two(c.arg(1))
    stride = two(c.arg(2) or kernel)
    if (
        two(c.arg(3, "padding", 0)) != (0, 0)
        or c.arg(4, "ceil_mode", False)
        or c.arg(6, "divisor_override") is not None
    ):
        raise NotImplementedError("average pooling with padding, ceil_mode or a divisor")
    return Code(
        f"avg_pool2d({x}, {lit(kernel)}, {lit(stride)})",
        {0: f"avg_pool2d_grad({c.g}, {x}, {lit(kernel)}, {lit(stride)})"},
        f"each window's gradient is shared evenly by its {kernel[0] * kernel[1]} inputs",
        ("avg_pool2d", "avg_pool2d_grad", "im2col"),
    )


@rule("upsample_nearest2d.default", "upsample_bilinear2d.default")
def _upsample2d(c: Call) -> Code:
    """Nearest: each output copies one input. Bilinear: each blends four (its arguments
    have ``align_corners`` before the scales)."""
    bilinear = c.op.startswith("upsample_bilinear")
    x, size = c.arg(0), lit(tuple(c.arg(1, "output_size")))
    first = 3 if bilinear else 2
    args = (
        f"{size}, "
        + (f"{lit(bool(c.arg(2, 'align_corners')))}, " if bilinear else "")
        + lit((c.arg(first, "scales_h"), c.arg(first + 1, "scales_w")))
    )
    fn = "upsample_bilinear2d" if bilinear else "upsample_nearest2d"
    return Code(
        f"{fn}({x}, {args})",
        {0: f"{fn}_grad({c.g}, {x}.shape, {args})"},
        "each output blends four inputs: each of them gets the output's gradient times "
        "its weight in the blend"
        if bilinear
        else "each output copies its nearest input: an input's gradient sums the gradients "
        "of the outputs that copied it",
        ("linear_source" if bilinear else "nearest_index", fn, f"{fn}_grad"),
    )


@rule("_softmax.default", "_safe_softmax.default")
def _softmax(c: Call) -> Code:
    """``_safe_softmax`` (attention's, in nn.MultiheadAttention) differs only where a whole
    row is masked: zeros there, whose gradient is zero too."""
    a = c.arg(0)
    d = c.arg(1) % a.ndim
    safe = c.op.startswith("_safe")
    if safe and c.arg(2, "dtype") is not None:
        raise NotImplementedError("_safe_softmax with a dtype")
    fn = "safe_softmax" if safe else "softmax"
    return Code(
        f"{fn}({a}, {d})",
        {0: f"{c.y} * ({c.g} - ({c.g} * {c.y}).sum(axis={d}, keepdims=True))"},
        "softmax's Jacobian diag(s) − s·sᵀ, applied: s ⊙ (g − Σ g⊙s)",
        ("softmax", "safe_softmax") if safe else ("softmax",),
    )


@rule("_log_softmax.default")
def _log_softmax(c: Call) -> Code:
    a = c.arg(0)
    d = c.arg(1) % a.ndim
    return Code(
        f"log_softmax({a}, {d})",
        {0: f"{c.g} - np.exp({c.y}) * {c.g}.sum(axis={d}, keepdims=True)"},
        "∂ log softmax: g − softmax(a)·Σg",
        ("log_softmax",),
    )


@rule("nll_loss_forward.default")
def _nll(c: Call) -> Code:
    x, target, weight = c.arg(0), c.arg(1), c.arg(2)
    reduction, ignore = c.arg(3), c.arg(4)
    if weight is not None:
        raise NotImplementedError("NLL loss with class weights")
    return Code(
        f"nll_loss({x}, {target}, {reduction}, {ignore})",
        {0: f"nll_loss_grad({c.g}, {x}, {target}, {reduction}, {ignore}, {c.aux})"},
        "−1 at each target's log-probability"
        + (", divided by the batch size" if reduction == 1 else ""),
        ("nll_loss", "nll_loss_grad"),
        aux=True,
    )


_REDUCE = {0: ("", ""), 1: (".mean()", "the mean"), 2: (".sum()", "the sum")}


@rule("mse_loss.default")
def _mse(c: Call) -> Code:
    a, b = _v(c.arg(0)), _v(c.arg(1))
    reduction = c.arg(2, "reduction", 1)
    n = math.prod(a.shape) if reduction == 1 and isinstance(a, Ref) else 1
    scale = f" / {n}" if reduction == 1 else ""
    return Code(
        f"(({a} - {b}) ** 2){_REDUCE[reduction][0]}",
        {0: f"2 * ({a} - {b}) * {c.g}{scale}", 1: f"-2 * ({a} - {b}) * {c.g}{scale}"},
        "∂(a − b)²/∂a = 2(a − b)" + (f", over n = {n} for the mean" if n != 1 else ""),
    )


@rule("binary_cross_entropy.default")
def _bce(c: Call) -> Code:
    x, t, weight = c.arg(0), _v(c.arg(1)), c.arg(2)
    reduction = c.arg(3, "reduction", 1)
    if weight is not None:
        raise NotImplementedError("binary cross-entropy with weights")
    n = math.prod(x.shape) if reduction == 1 else 1
    return Code(
        f"(-({t} * np.maximum(np.log({x}), -100) + (1 - {t}) * "
        f"np.maximum(np.log(1 - {x}), -100))){_REDUCE[reduction][0]}",
        {
            0: f"{c.g} * ({x} - {t}) / np.maximum((1 - {x}) * {x}, 1e-12)"
            + (f" / {n}" if n != 1 else "")
        },
        "∂BCE/∂x = (x − t)/(x(1 − x))",
    )


@rule("binary_cross_entropy_with_logits.default")
def _bce_logits(c: Call) -> Code:
    x, t, weight, pos = c.arg(0), _v(c.arg(1)), c.arg(2), c.arg(3)
    reduction = c.arg(4, "reduction", 1)
    if weight is not None or pos is not None:
        raise NotImplementedError("binary cross-entropy with weights")
    n = math.prod(x.shape) if reduction == 1 else 1
    return Code(
        f"((1 - {t}) * {x} + np.maximum(-{x}, 0) + np.log(np.exp(-np.maximum(-{x}, 0))"
        f" + np.exp(-{x} - np.maximum(-{x}, 0)))){_REDUCE[reduction][0]}",
        {0: f"{c.g} * (1 / (1 + np.exp(-{x})) - {t})" + (f" / {n}" if n != 1 else "")},
        "∂BCE(σ(x))/∂x = σ(x) − t",
    )


@rule(
    "native_batch_norm.default",
    "_native_batch_norm_legit.default",
    "_native_batch_norm_legit_functional.default",
    "_batch_norm_with_update.default",
)
def _batch_norm(c: Call) -> Code:
    x, w, b = c.arg(0), c.arg(1), c.arg(2)
    training = c.arg(5, "training", True) if c.op.startswith("native") else True
    eps = c.args[-1]
    if not training:
        raise NotImplementedError("batch norm in eval mode")
    w_ = w if isinstance(w, Ref) else "None"
    grads = {0: f"batch_norm_grad_input({c.g}, {x}, {w_}, {c.aux})"}
    axes = lit((0,) + tuple(range(2, x.ndim)))
    if isinstance(w, Ref):
        grads[1] = f"({c.g} * batch_norm_xhat({x}, {c.aux})).sum(axis={axes})"
        grads[2] = f"{c.g}.sum(axis={axes})"
    return Code(
        f"batch_norm({x}, {w_}, {b if isinstance(b, Ref) else 'None'}, {lit(eps)})",
        grads,
        "x̂ = (x − μ)/σ over the batch: ∂L/∂x also flows through μ and σ, "
        "which every element of the channel shares",
        ("batch_norm", "batch_norm_grad_input", "batch_norm_xhat"),
        aux=True,
    )


@rule("native_layer_norm.default")
def _layer_norm(c: Call) -> Code:
    x, shape, w, b, eps = c.arg(0), c.arg(1), c.arg(2), c.arg(3), c.arg(4)
    n = len(shape)
    w_ = w if isinstance(w, Ref) else "None"
    axes = lit(tuple(range(x.ndim - n)))
    grads = {0: f"layer_norm_grad_input({c.g}, {x}, {n}, {w_}, {c.aux})"}
    if isinstance(w, Ref):
        grads[2] = f"({c.g} * layer_norm_xhat({x}, {c.aux})).sum(axis={axes})"
    if isinstance(b, Ref):
        grads[3] = f"{c.g}.sum(axis={axes})"
    return Code(
        f"layer_norm({x}, {n}, {w_}, {b if isinstance(b, Ref) else 'None'}, {lit(eps)})",
        grads,
        "x̂ = (x − μ)/σ over each row: ∂L/∂x also flows through the row's μ and σ",
        ("layer_norm", "layer_norm_grad_input", "layer_norm_xhat"),
        aux=True,
    )


@rule("gather.default")
def _gather(c: Call) -> Code:
    a, index = c.arg(0), c.arg(2)
    d = c.arg(1) % a.ndim
    return Code(
        f"{a}[along({index}, {d})]",
        {0: f"scatter_add(np.zeros({lit(a.shape)}, dtype={c.g}.dtype), {d}, {index}, {c.g})"},
        f"each gathered element's gradient goes back to where it was read along dim "
        f"{d} (added up where read twice)",
        ("along", "scatter_add"),
    )


@rule("scatter_add.default")
def _scatter_add(c: Call) -> Code:
    a, index, src = c.arg(0), c.arg(2), c.arg(3)
    d = c.arg(1) % a.ndim
    return Code(
        f"scatter_add({a}, {d}, {index}, {src})",
        {0: c.g, 3: f"gather_grad({c.g}, {d}, {index}, {lit(src.shape)})"},
        "the input passes its gradient through; each added element gets the gradient "
        f"of the place it was added to along dim {d}",
        ("scatter_add", "gather_grad"),
    )


@rule("index_add.default")
def _index_add(c: Call) -> Code:
    a, index, src, alpha = c.arg(0), c.arg(2), c.arg(3), c.arg(4, "alpha", 1)
    d = c.arg(1) % a.ndim
    return Code(
        f"index_add({a}, {d}, {index}, {src}, {lit(alpha)})",
        {0: c.g, 3: _scaled(alpha, f"np.take({c.g}, {index}, axis={d})")},
        f"the input passes its gradient through; each added slice gets the gradient "
        f"of the slice it was added to along dim {d}",
        ("index_add",),
    )


@rule("index_select.default")
def _index_select(c: Call) -> Code:
    a, index = c.arg(0), c.arg(2)
    d = c.arg(1) % a.ndim
    return Code(
        f"np.take({a}, {index}, axis={d})",
        {0: f"index_select_grad({c.g}, {d}, {index}, {lit(a.shape)})"},
        f"each selected slice's gradient goes back to its place along dim {d}",
        ("index_select_grad",),
    )


@rule("embedding.default")
def _embedding(c: Call) -> Code:
    w, idx = c.arg(0), c.arg(1)
    pad = c.arg(2, "padding_idx", -1)
    return Code(
        f"{w}[{idx}]",
        {0: f"embedding_grad({c.g}, {idx}, {w.shape[0]}, {pad})"},
        "each looked-up row gets its gradient, added up over repeats",
        ("embedding_grad",),
    )


def _helper_sources() -> dict[str, str]:
    """Each helper's source, by name, in the order helpers.py defines them."""
    from . import helpers as module

    return {
        n: inspect.getsource(f)
        for n, f in vars(module).items()
        if inspect.isfunction(f) and f.__module__ == module.__name__
    }


#: Read once, when this module is imported: a worker runs as user nobody and may not be
#: able to read the source tree it was imported from (a checkout in a 0700 directory).
HELPER_SOURCES = _helper_sources()


def needed(helpers: Sequence[str]) -> list[str]:
    """``helpers`` and the helpers they call, in the order helpers.py defines them."""
    want, todo = set(), list(helpers)
    while todo:
        name = todo.pop()
        if name in want:
            continue
        want.add(name)
        source = HELPER_SOURCES[name]
        todo.extend(n for n in HELPER_SOURCES if n != name and re.search(rf"\b{n}\(", source))
    return [n for n in HELPER_SOURCES if n in want]
