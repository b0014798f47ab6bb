"""Local derivatives: for each grad_fn type, the chain-rule formula a course writes, and
its numbers recomputed from the node's saved tensors.

Each rule takes a ``Ctx`` (the node executing in backward, its upstream gradient and
the downstream gradients the engine produced) and returns the formula in LaTeX and
plain text plus its own downstream gradients, computed in float64 from the formula.
``explain`` compares those with the engine's: ``verified`` is true only when every
gradient the engine produced is reproduced within tolerance. A rule that cannot
read what it needs returns None, and the Jacobian of the node is shown instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn import grad as nn_grad

from .derivatives import BINARIES, MM, MUL, PRODUCTS, UNARIES, Binary, Product, Unary

F64 = torch.float64
#: Formulas are recomputed (and verified) when the node's tensors are this small...
MAX_VERIFY_ELEMENTS = 100_000
#: ...for this many steps and elements per run: past that a step shows its formula only
#: (recomputing costs about as much as the backward step itself).
RUN_BUDGET_STEPS = 600
RUN_BUDGET_ELEMENTS = 2_000_000
#: ...and a step is not recomputed once this many steps of its kind (the same grad_fn on
#: the same shapes) reproduced the engine's gradients: an RNN unrolled 500 times has
#: 3,000 steps of six kinds, and the 33rd tanh step would check what the first 32 did.
SAME_KIND_VERIFIED = 32
#: Jacobians are built and shown for nodes with at most this many entries (outputs x inputs).
MAX_JACOBIAN_ENTRIES = 4096
#: Scalar steps also show the formula with the step's numbers substituted.
RTOL, ATOL = 1e-4, 1e-6

Grads = list[torch.Tensor | None]


def host64(t: torch.Tensor) -> torch.Tensor:
    """A detached copy on the CPU, floating point as float64: formulas are recomputed
    there, whatever device the run is on."""
    return t.detach().to("cpu", F64) if t.is_floating_point() else t.detach().cpu()


@dataclass
class Ctx:
    """What a rule may read: the node, its saved values, upstream and downstream. Each
    tensor is converted to float64 once, however often a rule reads it."""

    node: Any
    upstream: tuple[torch.Tensor | None, ...]
    downstream: tuple[torch.Tensor | None, ...]
    _read: dict[str, Any] = field(default_factory=dict, repr=False)

    def saved(self, name: str) -> Any:
        if name in self._read:
            return self._read[name]
        value = getattr(self.node, f"_saved_{name}")
        if isinstance(value, torch.Tensor):
            value = host64(value)
        self._read[name] = value
        return value

    @cached_property
    def g(self) -> torch.Tensor:
        """The upstream gradient ∂L/∂y (the first output's), in float64."""
        if self.upstream[0] is None:
            raise ValueError("no gradient for the first output")
        return host64(self.upstream[0])

    def shape(self, i: int) -> torch.Size | None:
        d = self.downstream[i] if i < len(self.downstream) else None
        return d.shape if d is not None else None


#: The letters of a rule for y = f(x); of one for y = a ∘ b.
UNARY: dict[str, int | str] = {"x": 0, "X": 0, "y": "out", "Y": "out"}
BINARY: dict[str, int | str] = {"a": 0, "b": 1, "y": "out"}


@dataclass
class Explained:
    latex: str
    text: str
    grads: Grads
    note: str = ""
    #: For ops that act element by element: each input's local derivative, element by
    #: element (None where it does not apply, e.g. a broadcast operand), so a step can show
    #: upstream × local = downstream with the numbers at any rank.
    local: list[torch.Tensor | None] | None = None
    #: The upstream gradient as it reaches each input element, where that is not the
    #: upstream itself (a sum or mean copies it to every element it reduced).
    spread: torch.Tensor | None = None
    #: Which tensor each letter of ``latex`` stands for (an input's position, or "out"),
    #: so the page can write the program's names where the rule has generic letters.
    letters: dict[str, int | str] = field(default_factory=lambda: dict(UNARY))


Rule = Callable[[Ctx], Explained | None]
#: What a rule may raise on a node it cannot read (a saved tensor freed or absent): the
#: step is then explained without it.
RULE_ERRORS = (RuntimeError, TypeError, ValueError, AttributeError, IndexError)
GRAD_FN_RULES: dict[str, Rule] = {}


def rule(*names: str) -> Callable[[Rule], Rule]:
    def register(fn: Rule) -> Rule:
        for n in names:
            GRAD_FN_RULES[n] = fn
        return fn

    return register


# ------------------------------------------------------------------ helpers
def unbroadcast(t: torch.Tensor, shape: torch.Size | None) -> tuple[torch.Tensor, list[int]]:
    """Sums ``t`` down to ``shape`` (undoing broadcasting); also which dims were summed."""
    if shape is None or t.shape == shape:
        return t, []
    lead = t.dim() - len(shape)
    dims = list(range(lead)) + [
        lead + i for i, s in enumerate(shape) if s == 1 and t.shape[lead + i] != 1
    ]
    out = t.sum(dim=dims, keepdim=True) if dims else t
    return out.reshape(shape), dims


def _same_shape(
    ctx: Ctx, full: torch.Size, locals_: list[torch.Tensor | None]
) -> list[torch.Tensor | None]:
    """Local derivatives, element by element, for the operands that were not broadcast (a
    broadcast operand's gradient is a sum: its elements have no single local factor)."""
    return [loc if ctx.shape(i) == full else None for i, loc in enumerate(locals_)]


def broadcast_note(ctx: Ctx, full: torch.Size, names: Sequence[str]) -> str:
    notes = []
    for i, n in enumerate(names):
        shape = ctx.shape(i)
        if shape is not None and shape != full:
            _, dims = unbroadcast(torch.zeros(full), shape)
            which = ", ".join(map(str, dims))
            notes.append(
                f"{n} was broadcast from {list(shape)} to {list(full)}: its gradient "
                f"is summed over dimension{'s' if len(dims) > 1 else ''} {which}."
            )
    return " ".join(notes)


def elementwise(
    latex: str, text: str, local: Callable[[Ctx], torch.Tensor | None], note: str = ""
) -> Rule:
    """y = f(x) elementwise: ∂L/∂x = ∂L/∂y ⊙ f'(x)."""

    def apply(ctx: Ctx) -> Explained | None:
        slope = local(ctx)
        if slope is None:
            return None
        return Explained(
            rf"\frac{{\partial L}}{{\partial x}} = \frac{{\partial L}}{{\partial y}} \odot {latex}",
            f"dL/dx = dL/dy * {text}",
            [ctx.g * slope],
            note,
            local=[slope],
        )

    return apply


# ------------------------------------------------------------- elementwise
class _Saved:
    """A node's saved tensors under the names ``derivatives`` reads: ``x``/``a`` its
    input (``self``), ``y`` its output (``result``), ``b`` the other operand (``other``,
    or the name a product saves it by); None for an operand PyTorch did not save."""

    def __init__(self, ctx: Ctx, other: str = "other") -> None:
        self._ctx = ctx
        self._other = other

    @property
    def x(self) -> Any:
        return self._ctx.saved("self")

    @property
    def y(self) -> Any:
        return self._ctx.saved("result")

    @property
    def a(self) -> Any:
        return _operand(self._ctx, "self")

    @property
    def b(self) -> Any:
        return _operand(self._ctx, self._other)


def _operand(ctx: Ctx, name: str) -> torch.Tensor | None:
    """A saved operand in float64, or None where PyTorch saved none (the other operand
    needs no gradient) or saved a number."""
    value = getattr(ctx.node, f"_saved_{name}", None)
    return ctx.saved(name) if isinstance(value, torch.Tensor) else None


def _derivative(local: Callable[[Any, Any], Any], ctx: Ctx) -> torch.Tensor | None:
    """A ``derivatives`` local derivative at this node, one float64 value per element of
    the upstream gradient; None where it reads an operand PyTorch did not save."""
    try:
        value = local(_Saved(ctx), torch)
    except TypeError:  # (an operand it reads is None)
        return None
    if value is None:
        return None
    value = torch.as_tensor(value).to(F64)
    return value.expand(torch.broadcast_shapes(value.shape, ctx.g.shape))


def _unary(d: Unary) -> Rule:
    return elementwise(d.latex, d.text, lambda ctx: _derivative(d.local, ctx), d.note)


for _d in UNARIES:
    GRAD_FN_RULES[_d.grad_fn] = _unary(_d)


GRAD_FN_RULES["ThresholdBackward0"] = elementwise(
    r"\mathbb{1}[x > \theta]",
    "1[x > threshold]",
    lambda c: (c.saved("self") > c.saved("threshold")).to(F64),
)
GRAD_FN_RULES["LeakyReluBackward0"] = elementwise(
    r"\begin{cases}1 & x > 0\\ \alpha & x \le 0\end{cases}",
    "1 if x > 0 else slope",
    lambda c: torch.where(c.saved("self") > 0, 1.0, float(c.saved("negative_slope"))).to(F64),
)
GRAD_FN_RULES["AbsBackward0"] = elementwise(
    r"\operatorname{sign}(x)", "sign(x)", lambda c: c.saved("self").sign()
)


@rule("GeluBackward0")
def _gelu(ctx: Ctx) -> Explained:
    x = ctx.saved("self")
    if ctx.saved("approximate") == "tanh":
        k = math.sqrt(2 / math.pi)
        inner = k * (x + 0.044715 * x**3)
        t = inner.tanh()
        local = 0.5 * (1 + t) + 0.5 * x * (1 - t**2) * k * (1 + 3 * 0.044715 * x**2)
        latex = r"\tfrac12(1+\tanh u) + \tfrac12 x (1-\tanh^2 u)\,u',\ u = \sqrt{2/\pi}(x + 0.044715x^3)"
    else:
        cdf = 0.5 * (1 + torch.erf(x / math.sqrt(2)))
        pdf = torch.exp(-(x**2) / 2) / math.sqrt(2 * math.pi)
        local = cdf + x * pdf
        latex = r"\Phi(x) + x\,\varphi(x)"
    return Explained(
        rf"\frac{{\partial L}}{{\partial x}} = \frac{{\partial L}}{{\partial y}} \odot \left({latex}\right)",
        "dL/dx = dL/dy * (Phi(x) + x phi(x))",
        [ctx.g * local],
    )


@rule("SoftplusBackward0")
def _softplus(ctx: Ctx) -> Explained:
    x, beta, thr = ctx.saved("self"), float(ctx.saved("beta")), float(ctx.saved("threshold"))
    local = torch.where(x * beta > thr, torch.ones_like(x), torch.sigmoid(beta * x))
    return Explained(
        r"\frac{\partial L}{\partial x} = \frac{\partial L}{\partial y} \odot \sigma(\beta x)",
        "dL/dx = dL/dy * sigmoid(beta x)",
        [ctx.g * local],
        "Past the threshold softplus is the identity, so its slope is 1 there.",
    )


@rule("ClampBackward1", "ClampMinBackward0", "ClampMaxBackward0")
def _clamp(ctx: Ctx) -> Explained:
    x = ctx.saved("self")
    lo = getattr(ctx.node, "_saved_min", None)
    hi = getattr(ctx.node, "_saved_max", None)
    mask = torch.ones_like(x, dtype=torch.bool)
    if lo is not None:
        mask &= x >= float(lo)
    if hi is not None:
        mask &= x <= float(hi)
    return Explained(
        r"\frac{\partial L}{\partial x} = \frac{\partial L}{\partial y} \odot \mathbb{1}[\min \le x \le \max]",
        "dL/dx = dL/dy * 1[min <= x <= max]",
        [ctx.g * mask.to(F64)],
        "Clamped elements do not move with x: their gradient is 0.",
    )


@rule("PowBackward0")
def _pow(ctx: Ctx) -> Explained:
    x, n = ctx.saved("self"), float(ctx.saved("exponent"))
    local = n * x ** (n - 1) if n != 0 else torch.zeros_like(x)
    slope = power_slope(n)
    return Explained(
        rf"\frac{{\partial L}}{{\partial x}} = \frac{{\partial L}}{{\partial y}} \odot {slope[0]}",
        f"dL/dx = dL/dy * {slope[1]}",
        [ctx.g * local],
        local=[local],
    )


def power_slope(n: float) -> tuple[str, str]:
    """d(xⁿ)/dx as a course writes it, in LaTeX and text: 2·x, not 2x¹; 3·x², 1/(2·√x)
    is left to sqrt's own rule."""
    if n == 0:
        return "0", "0"
    if n == 1:
        return "1", "1"
    if n == 2:
        return r"2\cdot x", "2*x"
    return rf"{n:g}\cdot x^{{{n - 1:g}}}", f"{n:g}*x^{n - 1:g}"


@rule("PowBackward1")
def _pow_tensor(ctx: Ctx) -> Explained:
    a, b, y = ctx.saved("self"), ctx.saved("exponent"), ctx.saved("result")
    full = torch.broadcast_shapes(a.shape, b.shape)
    ga = unbroadcast(ctx.g * b * a ** (b - 1), ctx.shape(0))[0]
    gb = unbroadcast(ctx.g * y * torch.where(a > 0, a.log(), torch.zeros_like(a)), ctx.shape(1))[0]
    return Explained(
        r"\frac{\partial L}{\partial a} = \bar y \odot b\,a^{b-1},\quad "
        r"\frac{\partial L}{\partial b} = \bar y \odot a^{b} \ln a",
        "dL/da = dL/dy * b a^(b-1); dL/db = dL/dy * a^b ln a",
        [ga, gb],
        broadcast_note(ctx, full, ["a", "b"]),
        letters=BINARY,
    )


# -------------------------------------------------------------- arithmetic
@rule("AddBackward0", "SubBackward0")
def _add(ctx: Ctx) -> Explained:
    alpha = float(ctx.saved("alpha"))
    sub = type(ctx.node).__name__.startswith("Sub")
    sign = -alpha if sub else alpha
    full = ctx.g.shape
    grads: list[torch.Tensor | None] = [
        unbroadcast(ctx.g, ctx.shape(0))[0],
        unbroadcast(ctx.g * sign, ctx.shape(1))[0],
    ]
    op = "-" if sub else "+"
    latex = (
        r"y = a "
        + op
        + r" b:\quad \frac{\partial L}{\partial a} = \frac{\partial L}{\partial y},\quad "
        r"\frac{\partial L}{\partial b} = "
        + ("-" if sub else "")
        + r"\frac{\partial L}{\partial y}"
    )
    return Explained(
        latex,
        f"y = a {op} b: dL/da = dL/dy, dL/db = {'-' if sub else ''}dL/dy",
        grads,
        broadcast_note(ctx, full, ["a", "b"]),
        local=_same_shape(
            ctx, full, [torch.ones(full, dtype=F64), torch.full(full, sign, dtype=F64)]
        ),
        letters=BINARY,
    )


def _binary(d: Binary) -> Rule:
    """y = a ∘ b with broadcasting: each operand's gradient is the upstream times its
    local derivative, summed back to the operand's shape."""

    def apply(ctx: Ctx) -> Explained | None:
        locals_ = [_derivative(d.local_a, ctx), _derivative(d.local_b, ctx)]
        if all(loc is None for loc in locals_):
            return None
        full = ctx.g.shape
        grads: Grads = [
            None if loc is None else unbroadcast(ctx.g * loc, ctx.shape(i))[0]
            for i, loc in enumerate(locals_)
        ]
        note = broadcast_note(ctx, full, ["a", "b"])
        if locals_[1] is None and d is MUL:
            note = (
                "Only b was saved: a's partner needs no gradient. (Dropout's backward is this "
                "product too, with b its mask scaled by 1/(1-p).) " + note
            ).strip()
        return Explained(
            d.latex,
            d.text,
            grads,
            note,
            local=_same_shape(ctx, full, locals_),
            letters=BINARY,
        )

    return apply


for _d2 in BINARIES:
    GRAD_FN_RULES[_d2.grad_fn] = _binary(_d2)


@rule("MaximumBackward0", "MinimumBackward0")
def _maximum(ctx: Ctx) -> Explained:
    a, b = ctx.saved("self"), ctx.saved("other")
    is_max = type(ctx.node).__name__.startswith("Max")
    win = (a > b) if is_max else (a < b)
    tie = (a == b).to(F64) * 0.5
    ga = unbroadcast(ctx.g * (win.to(F64) + tie), ctx.shape(0))[0]
    gb = unbroadcast(ctx.g * ((~win & (a != b)).to(F64) + tie), ctx.shape(1))[0]
    word = "larger" if is_max else "smaller"
    return Explained(
        r"\frac{\partial L}{\partial a} = \frac{\partial L}{\partial y} \odot \mathbb{1}[a \text{ wins}],\quad "
        r"\frac{\partial L}{\partial b} = \frac{\partial L}{\partial y} \odot \mathbb{1}[b \text{ wins}]",
        f"the gradient goes to the {word} input; ties split it in half",
        [ga, gb],
        f"Each element's gradient is routed to the {word} of the two inputs.",
        letters=BINARY,
    )


@rule("WhereBackward0")
def _where(ctx: Ctx) -> Explained:
    cond = ctx.saved("condition").to(torch.bool)
    ga = unbroadcast(torch.where(cond, ctx.g, 0.0), ctx.shape(0))[0]
    gb = unbroadcast(torch.where(cond, 0.0, ctx.g), ctx.shape(1))[0]
    return Explained(
        r"\frac{\partial L}{\partial a} = \frac{\partial L}{\partial y} \odot \mathbb{1}[c],\quad "
        r"\frac{\partial L}{\partial b} = \frac{\partial L}{\partial y} \odot \mathbb{1}[\lnot c]",
        "dL/da = dL/dy where c, dL/db = dL/dy elsewhere",
        [ga, gb],
        letters=BINARY,
    )


# -------------------------------------------------------------- reductions
def _expand_reduced(
    g: torch.Tensor, shape: torch.Size, dims: Sequence[int] | None, keepdim: bool
) -> torch.Tensor:
    if dims is None or len(dims) == 0:
        return g.reshape([1] * len(shape)).expand(shape) if g.dim() == 0 else g.expand(shape)
    if not keepdim:
        for d in sorted(d % len(shape) for d in dims):
            g = g.unsqueeze(d)
    return g.expand(shape)


@rule("SumBackward0", "SumBackward1")
def _sum(ctx: Ctx) -> Explained:
    shape = torch.Size(ctx.saved("self_sym_sizes"))
    dims = getattr(ctx.node, "_saved_dim", None)
    keep = bool(getattr(ctx.node, "_saved_keepdim", False))
    over = "every element" if not dims else f"dimension {', '.join(map(str, dims))}"
    spread = _expand_reduced(ctx.g, shape, dims, keep)
    return Explained(
        r"y = \sum_i x_i:\quad \frac{\partial L}{\partial x_i} = \frac{\partial L}{\partial y}",
        "dL/dx_i = dL/dy (copied to every summed element)",
        [spread.clone()],
        f"A sum over {over}: each input element gets the upstream gradient unchanged.",
        local=[torch.ones(shape, dtype=F64)],
        spread=spread,
    )


@rule("MeanBackward0", "MeanBackward1")
def _mean(ctx: Ctx) -> Explained:
    shape = torch.Size(ctx.saved("self_sym_sizes"))
    dims = getattr(ctx.node, "_saved_dim", None)
    keep = bool(getattr(ctx.node, "_saved_keepdim", False))
    n = math.prod(shape) if not dims else math.prod(shape[d] for d in dims)
    spread = _expand_reduced(ctx.g, shape, dims, keep)
    return Explained(
        rf"y = \frac{{1}}{{n}}\sum_i x_i:\quad \frac{{\partial L}}{{\partial x_i}} = \frac{{1}}{{n}}\frac{{\partial L}}{{\partial y}},\ n = {n}",
        f"dL/dx_i = dL/dy / n, n = {n}",
        [spread / n],
        f"The mean divides by n = {n}, so each element gets 1/{n} of the upstream gradient.",
        local=[torch.full(shape, 1 / n, dtype=F64)],
        spread=spread,
    )


@rule("MaxBackward1", "MinBackward1")
def _max_all(ctx: Ctx) -> Explained:
    x, y = ctx.saved("self"), ctx.saved("result")
    hit = (x == y).to(F64)
    return Explained(
        r"\frac{\partial L}{\partial x_i} = \frac{\partial L}{\partial y}\,\frac{\mathbb{1}[x_i = y]}{\#\{j: x_j = y\}}",
        "the whole gradient goes to the winning element (shared among ties)",
        [ctx.g * hit / hit.sum()],
        "max routes the gradient to the element that won; every other element gets 0.",
    )


@rule("MaxBackward0", "MinBackward0")
def _max_dim(ctx: Ctx) -> Explained:
    shape = torch.Size(ctx.saved("self_sym_sizes"))
    dim, keep = int(ctx.saved("dim")), bool(ctx.saved("keepdim"))
    idx = ctx.saved("indices")
    g = ctx.g if keep else ctx.g.unsqueeze(dim)
    i = idx if keep else idx.unsqueeze(dim)
    out = torch.zeros(shape, dtype=F64).scatter(dim, i, g)
    return Explained(
        r"\frac{\partial L}{\partial x_{i}} = \frac{\partial L}{\partial y}\ \text{at the argmax along the dimension, else } 0",
        "the gradient goes to the argmax of each slice",
        [out],
        f"max over dimension {dim} routes each slice's gradient to its winner.",
    )


@rule("LinalgVectorNormBackward0")
def _norm(ctx: Ctx) -> Explained | None:
    if float(ctx.saved("ord")) != 2.0 or ctx.saved("dim") is not None:
        return None
    x, y = ctx.saved("self"), ctx.saved("result")
    grad = ctx.g * x / y if float(y) != 0 else torch.zeros_like(x)
    return Explained(
        r"y = \lVert x\rVert_2:\quad \frac{\partial L}{\partial x} = \frac{\partial L}{\partial y}\,\frac{x}{\lVert x\rVert_2}",
        "dL/dx = dL/dy * x / ||x||",
        [grad],
        "At x = 0 the norm has no slope; PyTorch defines its gradient there as 0.",
    )


# ---------------------------------------------------------- matrix products
def _product(d: Product) -> Rule:
    """A matrix product's gradients, from the operands PyTorch saved (one it did not
    save leaves that operand's gradient unknown)."""

    def apply(ctx: Ctx) -> Explained:
        o = _Saved(ctx, d.other)
        grads: Grads = [
            None if o.b is None else d.grad_a(ctx.g, o, torch),
            None if o.a is None else d.grad_b(ctx.g, o, torch),
        ]
        note = ""
        if d is MM and o.a is not None and o.b is not None:
            (m, k), n = o.a.shape, o.b.shape[1]
            note = f"Shapes: [{m}×{k}] = [{m}×{n}]·[{n}×{k}]."
        return Explained(d.latex, d.text, grads, note, letters=dict(d.letters))

    return apply


for _p in PRODUCTS:
    GRAD_FN_RULES[_p.grad_fn] = _product(_p)


@rule("AddmmBackward0")
def _addmm(ctx: Ctx) -> Explained:
    a, b = ctx.saved("mat1"), ctx.saved("mat2")  # None when the other side needs no grad
    alpha, beta = float(ctx.saved("alpha")), float(ctx.saved("beta"))
    gbias = unbroadcast(ctx.g * beta, ctx.shape(0))[0]
    note = "This is a Linear layer: Y = b + X Wᵀ, with mat2 = Wᵀ."
    if ctx.shape(0) is not None and ctx.shape(0) != ctx.g.shape:
        note += " The bias was broadcast over the batch: its gradient sums dL/dY over the rows."
    return Explained(
        r"Y = \beta\,b + \alpha\,XW:\quad \frac{\partial L}{\partial b} = \beta\sum_{\text{rows}}\frac{\partial L}{\partial Y},\quad "
        r"\frac{\partial L}{\partial X} = \alpha\frac{\partial L}{\partial Y}W^{\top},\quad "
        r"\frac{\partial L}{\partial W} = \alpha X^{\top}\frac{\partial L}{\partial Y}",
        "dL/db = sum over rows of dL/dY; dL/dX = dL/dY @ W.T; dL/dW = X.T @ dL/dY",
        [
            gbias,
            alpha * ctx.g @ b.T if b is not None else None,
            alpha * a.T @ ctx.g if a is not None else None,
        ],
        note,
        letters={"b": 0, "X": 1, "W": 2, "Y": "out"},
    )


# ----------------------------------------------------- shape and indexing
def _reshape_back(latex: str, text: str) -> Rule:
    def apply(ctx: Ctx) -> Explained:
        shape = ctx.shape(0)
        return Explained(
            latex,
            text,
            [ctx.g.reshape(shape) if shape is not None else None],
            "Moving numbers around has derivative 1 for each one: the gradient is "
            "the upstream gradient put back in the input's shape.",
        )

    return apply


GRAD_FN_RULES["ViewBackward0"] = _reshape_back(
    r"\frac{\partial L}{\partial x} = \operatorname{reshape}\left(\frac{\partial L}{\partial y}, \text{shape}(x)\right)",
    "dL/dx = reshape(dL/dy, x.shape)",
)
GRAD_FN_RULES["UnsafeViewBackward0"] = GRAD_FN_RULES["ViewBackward0"]
GRAD_FN_RULES["ReshapeAliasBackward0"] = GRAD_FN_RULES["ViewBackward0"]
GRAD_FN_RULES["UnsqueezeBackward0"] = _reshape_back(
    r"\frac{\partial L}{\partial x} = \operatorname{squeeze}\left(\frac{\partial L}{\partial y}\right)",
    "dL/dx = squeeze(dL/dy)",
)
for _n in ("SqueezeBackward0", "SqueezeBackward1", "SqueezeBackward2", "SqueezeBackward4"):
    GRAD_FN_RULES[_n] = _reshape_back(
        r"\frac{\partial L}{\partial x} = \operatorname{unsqueeze}\left(\frac{\partial L}{\partial y}\right)",
        "dL/dx = unsqueeze(dL/dy)",
    )
GRAD_FN_RULES["CloneBackward0"] = elementwise("1", "1", lambda c: torch.ones_like(c.g))
GRAD_FN_RULES["AliasBackward0"] = GRAD_FN_RULES["CloneBackward0"]
GRAD_FN_RULES["ToCopyBackward0"] = GRAD_FN_RULES["CloneBackward0"]


@rule("TBackward0")
def _t(ctx: Ctx) -> Explained:
    return Explained(
        r"Y = X^{\top}:\quad \frac{\partial L}{\partial X} = \left(\frac{\partial L}{\partial Y}\right)^{\top}",
        "dL/dX = (dL/dY).T",
        [ctx.g.t() if ctx.g.dim() == 2 else ctx.g],
    )


@rule("TransposeBackward0", "TransposeBackward1")
def _transpose(ctx: Ctx) -> Explained:
    d0, d1 = int(ctx.saved("dim0")), int(ctx.saved("dim1"))
    return Explained(
        rf"\frac{{\partial L}}{{\partial X}} = \operatorname{{transpose}}\left(\frac{{\partial L}}{{\partial Y}}, {d0}, {d1}\right)",
        f"dL/dX = dL/dY.transpose({d0}, {d1})",
        [ctx.g.transpose(d0, d1)],
    )


@rule("PermuteBackward0")
def _permute(ctx: Ctx) -> Explained:
    dims = [int(d) for d in ctx.saved("dims")]
    inverse = [0] * len(dims)
    for i, d in enumerate(dims):
        inverse[d % len(dims)] = i
    return Explained(
        rf"\frac{{\partial L}}{{\partial X}} = \operatorname{{permute}}\left(\frac{{\partial L}}{{\partial Y}}, {tuple(inverse)}\right)",
        f"dL/dX = dL/dY.permute{tuple(inverse)} (the inverse permutation)",
        [ctx.g.permute(inverse)],
    )


@rule("ExpandBackward0")
def _expand(ctx: Ctx) -> Explained:
    shape = torch.Size(ctx.saved("self_sym_sizes"))
    grad, dims = unbroadcast(ctx.g, shape)
    return Explained(
        r"\frac{\partial L}{\partial x} = \sum_{\text{expanded dims}} \frac{\partial L}{\partial y}",
        "dL/dx = dL/dy summed over the expanded dimensions",
        [grad],
        f"expand copied x {int(ctx.g.numel() // max(1, math.prod(shape)))} times along "
        f"dimension{'s' if len(dims) > 1 else ''} {', '.join(map(str, dims))}: the copies' gradients add up.",
    )


@rule("SelectBackward0")
def _select(ctx: Ctx) -> Explained:
    shape = torch.Size(ctx.saved("self_sym_sizes"))
    dim, index = int(ctx.saved("dim")), int(ctx.saved("index"))
    out = torch.zeros(shape, dtype=F64)
    out.select(dim, index).copy_(ctx.g)
    return Explained(
        rf"\frac{{\partial L}}{{\partial x}}[{index}] = \frac{{\partial L}}{{\partial y}},\ \text{{0 elsewhere}}",
        f"dL/dx is dL/dy at index {index} of dimension {dim}, 0 elsewhere",
        [out],
    )


@rule("SliceBackward0")
def _slice(ctx: Ctx) -> Explained:
    shape = torch.Size(ctx.saved("self_sym_sizes"))
    dim, start, end, step = (int(ctx.saved(k)) for k in ("dim", "start", "end", "step"))
    out = torch.zeros(shape, dtype=F64)
    idx = [slice(None)] * len(shape)
    idx[dim] = slice(start, min(end, shape[dim]), step)
    out[tuple(idx)] = ctx.g
    return Explained(
        r"\frac{\partial L}{\partial x} = \frac{\partial L}{\partial y}\ \text{in the slice, 0 elsewhere}",
        "dL/dx is dL/dy inside the slice, 0 outside",
        [out],
    )


@rule("IndexBackward0")
def _index(ctx: Ctx) -> Explained:
    shape = torch.Size(ctx.saved("self_sym_sizes"))
    indices = ctx.saved("indices")
    idx: tuple[Any, ...] = tuple(
        host64(i) if isinstance(i, torch.Tensor) else slice(None) for i in indices
    )
    out = torch.zeros(shape, dtype=F64).index_put(idx, ctx.g, accumulate=True)
    return Explained(
        r"\frac{\partial L}{\partial x}[i] = \sum_{k:\ \text{idx}_k = i}\frac{\partial L}{\partial y_k}",
        "dL/dx adds dL/dy back at the indexed positions (repeated indices add up)",
        [out],
    )


@rule("MaskedFillBackward0")
def _masked_fill(ctx: Ctx) -> Explained:
    mask = ctx.saved("mask").to(torch.bool)
    gx = unbroadcast(torch.where(mask, 0.0, ctx.g), ctx.shape(0))[0]
    value_shape = ctx.shape(1)
    gv = (
        torch.where(mask, ctx.g, 0.0).sum().reshape(value_shape)
        if value_shape is not None
        else None
    )
    return Explained(
        r"\frac{\partial L}{\partial x} = \frac{\partial L}{\partial y} \odot \mathbb{1}[\lnot\,\text{mask}]",
        "filled positions no longer depend on x: their gradient is 0",
        [gx, gv],
    )


@rule("CatBackward0")
def _cat(ctx: Ctx) -> Explained:
    dim = int(ctx.saved("dim"))
    sizes = [
        s[dim] if s is not None else 0 for s in (ctx.shape(i) for i in range(len(ctx.downstream)))
    ]
    d = dim % ctx.g.dim()
    parts = list(ctx.g.split(sizes, dim=d)) if all(s is not None for s in sizes) else []
    return Explained(
        r"\frac{\partial L}{\partial x_k} = \text{the } k\text{-th block of } \frac{\partial L}{\partial y}",
        f"dL/dy is split back along dimension {dim}",
        parts or [None] * len(ctx.downstream),
        letters={"y": "out"},
    )


@rule("StackBackward0")
def _stack(ctx: Ctx) -> Explained:
    dim = int(ctx.saved("dim"))
    return Explained(
        r"\frac{\partial L}{\partial x_k} = \frac{\partial L}{\partial y}[k]",
        f"dL/dy is unstacked along dimension {dim}",
        list(ctx.g.unbind(dim)),
        letters={"y": "out"},
    )


@rule("SplitBackward0", "SplitWithSizesBackward0")
def _split(ctx: Ctx) -> Explained:
    shape = torch.Size(ctx.saved("self_sym_sizes"))
    dim = int(ctx.saved("dim"))
    size = getattr(ctx.node, "_saved_split_size", None)
    sizes = (
        [min(size, shape[dim] - i) for i in range(0, shape[dim], size)]
        if size is not None
        else list(ctx.saved("split_sizes"))
    )
    parts = []
    for k, s in enumerate(sizes):
        up = ctx.upstream[k] if k < len(ctx.upstream) else None
        shp = list(shape)
        shp[dim] = s
        parts.append(host64(up) if up is not None else torch.zeros(shp, dtype=F64))
    return Explained(
        r"\frac{\partial L}{\partial x} = \operatorname{cat}_k \frac{\partial L}{\partial y_k}",
        "the pieces' gradients are concatenated (0 for pieces not used)",
        [torch.cat(parts, dim)],
        letters={"x": 0},
    )


# ------------------------------------------------------------------ layers
@rule("SoftmaxBackward0")
def _softmax(ctx: Ctx) -> Explained:
    y, dim = ctx.saved("result"), int(ctx.saved("dim"))
    grad = y * (ctx.g - (ctx.g * y).sum(dim, keepdim=True))
    return Explained(
        r"\frac{\partial y_i}{\partial x_j} = y_i(\delta_{ij} - y_j):\quad "
        r"\frac{\partial L}{\partial x} = y \odot \left(\frac{\partial L}{\partial y} - \sum_j \frac{\partial L}{\partial y_j} y_j\right)",
        "dL/dx = y * (dL/dy - sum(dL/dy * y))",
        [grad],
        "The softmax Jacobian diag(y) − y yᵀ, applied to the upstream gradient.",
    )


@rule("LogSoftmaxBackward0")
def _log_softmax(ctx: Ctx) -> Explained:
    y, dim = ctx.saved("result"), int(ctx.saved("dim"))
    grad = ctx.g - y.exp() * ctx.g.sum(dim, keepdim=True)
    return Explained(
        r"\frac{\partial L}{\partial x} = \frac{\partial L}{\partial y} - \operatorname{softmax}(x)\sum_j\frac{\partial L}{\partial y_j}",
        "dL/dx = dL/dy - softmax(x) * sum(dL/dy)",
        [grad],
    )


_REDUCTIONS = {0: "none", 1: "mean", 2: "sum"}


@rule("NllLossBackward0")
def _nll(ctx: Ctx) -> Explained | None:
    if ctx.saved("weight") is not None:
        return None
    x, target = ctx.saved("self"), ctx.saved("target").long()
    reduction = _REDUCTIONS[int(ctx.saved("reduction"))]
    ignore = int(ctx.saved("ignore_index"))
    ignore = ignore - 2**64 if ignore >= 2**63 else ignore
    valid = target != ignore
    safe = torch.where(valid, target, 0)
    out = torch.zeros_like(x)
    if x.dim() == 1:
        out[safe] = -ctx.g * valid.to(F64)
        n = 1
    else:
        n = int(valid.sum()) if reduction == "mean" else 1
        g = ctx.g if reduction == "none" else ctx.g.expand(target.shape)
        out.scatter_(1, safe.unsqueeze(1), (-g * valid.to(F64)).unsqueeze(1))
    out = out / max(n, 1) if reduction == "mean" else out
    return Explained(
        r"L = -\frac{1}{N}\sum_n x_{n,t_n}:\quad \frac{\partial L}{\partial x_{n,c}} = -\frac{1}{N}\mathbb{1}[c = t_n]",
        "dL/dx is -1/N at each sample's target class, 0 elsewhere",
        [out, None],
        "With log_softmax before it this is cross-entropy: together they give softmax(x) − onehot(t), over N.",
        letters={"x": 0},
    )


@rule("MseLossBackward0")
def _mse(ctx: Ctx) -> Explained:
    a, t = ctx.saved("self"), ctx.saved("target")
    reduction = _REDUCTIONS[int(ctx.saved("reduction"))]
    n = a.numel() if reduction == "mean" else 1
    grad = 2 * (a - t) * ctx.g / n
    return Explained(
        rf"L = \frac{{1}}{{N}}\sum (a - t)^2:\quad \frac{{\partial L}}{{\partial a}} = \frac{{2}}{{N}}(a - t),\ N = {n}",
        f"dL/da = 2 (a - t) / N, N = {n}",
        [grad, -grad if ctx.shape(1) is not None else None],
        letters={"a": 0, "t": 1},
    )


@rule("BinaryCrossEntropyBackward0")
def _bce(ctx: Ctx) -> Explained | None:
    if ctx.saved("weight") is not None:
        return None
    p, t = ctx.saved("self"), ctx.saved("target")
    n = p.numel() if _REDUCTIONS[int(ctx.saved("reduction"))] == "mean" else 1
    eps = 1e-12
    grad = ctx.g * (p - t) / ((1 - p) * p).clamp_min(eps) / n
    return Explained(
        r"L = -\frac{1}{N}\sum t\ln p + (1-t)\ln(1-p):\quad \frac{\partial L}{\partial p} = \frac{1}{N}\frac{p - t}{p(1-p)}",
        "dL/dp = (p - t) / (p (1 - p)) / N",
        [grad, None],
        letters={"p": 0, "t": 1},
    )


@rule("BinaryCrossEntropyWithLogitsBackward0")
def _bce_logits(ctx: Ctx) -> Explained | None:
    if ctx.saved("weight") is not None or ctx.saved("pos_weight") is not None:
        return None
    x, t = ctx.saved("self"), ctx.saved("target")
    n = x.numel() if _REDUCTIONS[int(ctx.saved("reduction"))] == "mean" else 1
    return Explained(
        r"\frac{\partial L}{\partial x} = \frac{1}{N}(\sigma(x) - t)",
        "dL/dx = (sigmoid(x) - t) / N",
        [ctx.g * (torch.sigmoid(x) - t) / n, None],
        letters={"x": 0, "t": 1},
    )


@rule("ConvolutionBackward0")
def _conv(ctx: Ctx) -> Explained | None:
    if ctx.saved("transposed"):
        return None
    x, w = ctx.saved("input"), ctx.saved("weight")
    stride, padding, dilation = (list(ctx.saved(k)) for k in ("stride", "padding", "dilation"))
    groups = int(ctx.saved("groups"))
    nd = x.dim() - 2
    fns = {
        1: (nn_grad.conv1d_input, nn_grad.conv1d_weight),
        2: (nn_grad.conv2d_input, nn_grad.conv2d_weight),
    }
    if nd not in fns:
        return None
    gin, gw = fns[nd]
    g = ctx.g
    dx = gin(x.shape, w, g, stride, padding, dilation, groups)
    dw = gw(x, w.shape, g, stride, padding, dilation, groups)
    db = g.sum(dim=[0, *range(2, g.dim())]) if ctx.shape(2) is not None else None
    return Explained(
        r"\frac{\partial L}{\partial W} = X \star \frac{\partial L}{\partial Y},\quad "
        r"\frac{\partial L}{\partial X} = \frac{\partial L}{\partial Y} \ast_{\text{full}} \operatorname{rot180}(W),\quad "
        r"\frac{\partial L}{\partial b_c} = \sum_{n,h,w}\frac{\partial L}{\partial Y_{n,c,h,w}}",
        "dL/dW = correlate(X, dL/dY); dL/dX = full convolution of dL/dY with W flipped; "
        "dL/db = dL/dY summed over batch and positions",
        [dx, dw, db],
        "Each weight touched every position it slid over, so its gradient sums over them.",
        letters={"X": 0, "W": 1, "b": 2, "Y": "out"},
    )


@rule("MaxPool2DWithIndicesBackward0")
def _max_pool(ctx: Ctx) -> Explained:
    x, idx = ctx.saved("self"), ctx.saved("result1")
    flat = torch.zeros(*x.shape[:-2], x.shape[-2] * x.shape[-1], dtype=F64)
    flat.scatter_add_(-1, idx.flatten(-2), ctx.g.flatten(-2))
    return Explained(
        r"\frac{\partial L}{\partial x_i} = \sum_{\text{windows where } x_i \text{ won}} \frac{\partial L}{\partial y}",
        "each window's gradient goes to the element that was its max",
        [flat.reshape(x.shape)],
        "Max pooling routes each window's gradient to its winner; the others get 0.",
    )


@rule("AvgPool2DBackward0")
def _avg_pool(ctx: Ctx) -> Explained | None:
    if ctx.saved("divisor_override") is not None:
        return None
    x = ctx.saved("self").clone().requires_grad_(True)
    k, s, p = ctx.saved("kernel_size"), ctx.saved("stride") or None, ctx.saved("padding")
    with torch.enable_grad():
        y = F.avg_pool2d(
            x, k, s, p, bool(ctx.saved("ceil_mode")), bool(ctx.saved("count_include_pad"))
        )
        (dx,) = torch.autograd.grad(y, x, ctx.g)
    n = math.prod(k) if isinstance(k, (tuple, list)) else k * k
    return Explained(
        rf"\frac{{\partial L}}{{\partial x_i}} = \sum_{{\text{{windows}} \ni i}} \frac{{1}}{{{n}}}\frac{{\partial L}}{{\partial y}}",
        f"each window spreads its gradient evenly, 1/{n} to each element",
        [dx],
    )


@rule("NativeBatchNormBackward0")
def _batch_norm(ctx: Ctx) -> Explained | None:
    if not ctx.saved("training"):
        return None
    x, w = ctx.saved("input"), ctx.saved("weight")
    mean, invstd = ctx.saved("result1"), ctx.saved("result2")
    dims = [0, *range(2, x.dim())]
    shape = [1, -1] + [1] * (x.dim() - 2)
    m = x.numel() // x.shape[1]
    xhat = (x - mean.reshape(shape)) * invstd.reshape(shape)
    g = ctx.g
    gamma = w.reshape(shape) if w is not None else 1.0
    dx = (
        gamma
        * invstd.reshape(shape)
        / m
        * (m * g - g.sum(dims, keepdim=True) - xhat * (g * xhat).sum(dims, keepdim=True))
    )
    dw = (g * xhat).sum(dims) if w is not None else None
    db = g.sum(dims) if ctx.shape(2) is not None else None
    return Explained(
        r"\hat x = \frac{x-\mu}{\sigma},\ y = \gamma\hat x + \beta:\quad "
        r"\frac{\partial L}{\partial x} = \frac{\gamma}{m\sigma}\left(m\,\bar y - \sum \bar y - \hat x \sum \bar y \hat x\right),\quad "
        r"\frac{\partial L}{\partial \gamma} = \sum \bar y\,\hat x,\quad \frac{\partial L}{\partial \beta} = \sum \bar y",
        "dL/dx = gamma/(m sigma) (m g - sum g - xhat sum(g xhat)); dL/dgamma = sum(g xhat); dL/dbeta = sum g",
        [dx, dw, db],
        f"Statistics over m = {m} values per channel: every x moves the mean and variance too.",
    )


@rule("NativeLayerNormBackward0")
def _layer_norm(ctx: Ctx) -> Explained:
    x, w = ctx.saved("input"), ctx.saved("weight")
    mean, rstd = ctx.saved("result1"), ctx.saved("result2")
    k = len(ctx.saved("normalized_shape"))
    dims = list(range(x.dim() - k, x.dim()))
    n = math.prod(x.shape[-k:])
    xhat = (x - mean) * rstd
    g = ctx.g
    gw = g * w if w is not None else g
    dx = (
        rstd
        / n
        * (n * gw - gw.sum(dims, keepdim=True) - xhat * (gw * xhat).sum(dims, keepdim=True))
    )
    lead = list(range(x.dim() - k))
    dw = (g * xhat).sum(lead) if w is not None and ctx.shape(1) is not None else None
    db = g.sum(lead) if ctx.shape(2) is not None else None
    return Explained(
        r"\frac{\partial L}{\partial x} = \frac{1}{n\sigma}\left(n\,\hat g - \sum \hat g - \hat x \sum \hat g \hat x\right),\ \hat g = \gamma \odot \bar y",
        "dL/dx = 1/(n sigma) (n g' - sum g' - xhat sum(g' xhat)), g' = gamma * dL/dy",
        [dx, dw, db],
        f"Normalised over the last {n} values of each row.",
    )


@rule("EmbeddingBackward0")
def _embedding(ctx: Ctx) -> Explained:
    idx = ctx.saved("indices").long()
    rows = int(ctx.saved("weight_sym_argsize_0"))
    g = ctx.g.reshape(-1, ctx.g.shape[-1])
    out = torch.zeros(rows, g.shape[-1], dtype=F64).index_add_(0, idx.reshape(-1), g)
    pad = int(ctx.saved("padding_idx"))
    if pad < 2**63 and 0 <= pad < rows:
        out[pad] = 0
    return Explained(
        r"\frac{\partial L}{\partial W_r} = \sum_{k:\ \text{idx}_k = r} \frac{\partial L}{\partial y_k}",
        "each looked-up row gets the gradients of the positions that used it",
        [out],
        letters={"W": 0, "y": "out"},
    )


# ----------------------------------------------------------------- explain
#: Up to this many elements a comparison runs on Python floats: a dozen numpy calls on a
#: tiny array cost ~90 µs, most of a small step's explanation.
CLOSE_SMALL = 64


def _close_small(a: list[float], b: list[float]) -> bool:
    scale = max((abs(y) for y in b if math.isfinite(y)), default=0.0)
    tol = ATOL + RTOL * scale
    return all(
        x == y or abs(x - y) <= tol or (x != x and y != y) for x, y in zip(a, b, strict=False)
    )


def _close(mine: torch.Tensor, theirs: torch.Tensor) -> bool:
    """Equal within float32 tolerance, relative to the largest finite value (numpy: on
    small tensors a handful of torch calls would cost more than the formula)."""
    if mine.numel() != theirs.numel():
        return False
    if theirs.numel() <= CLOSE_SMALL:
        return _close_small(
            mine.detach().cpu().reshape(-1).tolist(), theirs.detach().cpu().reshape(-1).tolist()
        )
    b = theirs.detach().cpu().numpy().reshape(-1)
    if b.dtype in (np.float32, np.float64):
        # The common case in four reductions and one copy: the largest difference, taken
        # in the engine's own dtype (rounding ours to it costs far less than the
        # tolerance), against the largest value; max and min are NaN where a NaN is.
        hi, lo = float(b.max()), float(b.min())
        if math.isfinite(hi) and math.isfinite(lo):
            d = mine.detach().cpu().numpy().astype(b.dtype, order="C").reshape(-1)
            np.subtract(d, b, out=d)
            tol = ATOL + RTOL * max(hi, -lo)
            return float(d.max()) <= tol and -float(d.min()) <= tol
    b = b.astype(np.float64, copy=False)
    a = mine.detach().cpu().numpy().reshape(-1)
    finite = np.isfinite(b)
    scale = float(np.abs(b[finite]).max()) if finite.any() else 0.0
    with np.errstate(invalid="ignore"):
        ok = (np.abs(a - b) <= ATOL + RTOL * scale) | (a == b) | (np.isnan(a) & np.isnan(b))
    return bool(ok.all())


def verify(grads: Grads, downstream: Sequence[torch.Tensor | None]) -> bool:
    """True when each gradient the engine produced is reproduced by the formula."""
    compared = 0
    for i, theirs in enumerate(downstream):
        if theirs is None:
            continue
        mine = grads[i] if i < len(grads) else None
        if mine is None or not _close(mine, theirs):
            return False
        compared += 1
    return compared > 0


def size_of(ctx: Ctx) -> int:
    return sum(t.numel() for t in (*ctx.upstream, *ctx.downstream) if t is not None)


def jacobian(ctx: Ctx) -> dict[str, Any] | None:
    """The node's Jacobian, one VJP per output element (calling the node itself), when
    small; downstream = Jᵀ · upstream recomputed from it."""
    outs = list(ctx.upstream)
    if len(outs) != 1 or outs[0] is None:
        return None
    ins = list(ctx.downstream)
    n_out = outs[0].numel()
    n_in = sum(d.numel() for d in ins if d is not None)
    if n_out == 0 or n_in == 0 or n_out * n_in > MAX_JACOBIAN_ENTRIES:
        return None
    rows = []
    basis = torch.zeros(n_out, dtype=outs[0].dtype, device=outs[0].device)
    for i in range(n_out):
        basis.zero_()
        basis[i] = 1
        res = ctx.node(basis.reshape(outs[0].shape))
        res = res if isinstance(res, tuple) else (res,)
        rows.append(
            torch.cat(
                [
                    (
                        r.detach().to(F64).reshape(-1).cpu()
                        if r is not None
                        else torch.zeros(d.numel(), dtype=F64)
                    )
                    for r, d in zip(res, ins, strict=False)
                    if d is not None
                ]
            )
        )
    J = torch.stack(rows)  # [n_out, n_in]
    vjp = J.T @ outs[0].detach().to(F64).reshape(-1).cpu()
    grads: Grads = []
    offset = 0
    for d in ins:
        if d is None:
            grads.append(None)
            continue
        grads.append(vjp[offset : offset + d.numel()].reshape(d.shape))
        offset += d.numel()
    return {"J": J, "grads": grads}
