"""Each derivative that is an array expression of the operands, written once, beside its
forward (micrograd's habit): the element-by-element functions and the matrix products.

A step's formula (``formulas.py``) recomputes the derivative in float64 from the node's
saved tensors; the manual-backprop file (``manual/ops.py``) writes it as a numpy line.
Both read it from here: an entry's ``forward`` and ``local`` are written against ``xp``,
an array namespace, and the operands. Given torch tensors (``xp`` = torch) they compute
numbers; given ``Sym`` names (``xp`` = ``NP``) they write the code that computes them.

``local`` and ``grad_*`` read only what PyTorch saves for the node's backward (``self``
as ``x``, ``result`` as ``y``, as derivatives.yaml does), so the file computes what
autograd computed, and a formula can always be recomputed from the node. The ops whose
gradients are bookkeeping over shapes and indices (reductions, views, indexing,
convolutions, pooling, softmax, the losses, the norms) keep a rule on each side:
``formulas.py`` recomputes them with torch's own backward functions where it can, and
``manual/helpers.py`` writes them out as loops and im2col a reader can follow.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: Python's binding strengths, weakest first: where a ``Sym`` needs parentheses.
COMPARE, SUM, PRODUCT, UNARY, POWER, ATOM = range(6)


def number_code(v: Any) -> str:
    """A number as numpy code: ``np.inf`` and ``np.nan`` where Python's repr has none."""
    if isinstance(v, float) and not math.isfinite(v):
        return "np.nan" if v != v else ("np.inf" if v > 0 else "-np.inf")
    return repr(v)


class Sym:
    """numpy code that composes like the array it stands for: ``g * (1 - y * y)``,
    parenthesised only where Python would bind otherwise."""

    __slots__ = ("code", "binds")

    def __init__(self, code: str, binds: int = ATOM) -> None:
        self.code = code
        self.binds = binds

    def __str__(self) -> str:
        return self.code

    def __repr__(self) -> str:
        return f"Sym({self.code!r})"

    @staticmethod
    def of(v: Any) -> Sym:
        """A ``Sym``, or a number as a literal."""
        if isinstance(v, Sym):
            return v
        code = number_code(v)
        return Sym(code, UNARY if code.startswith("-") else ATOM)

    def _wrap(self, binds: int) -> str:
        return f"({self.code})" if self.binds < binds else self.code

    def _binary(self, op: str, other: Any, binds: int, reverse: bool = False) -> Sym:
        left, right = (Sym.of(other), self) if reverse else (self, Sym.of(other))
        # the right operand of a left-associative operator binds tighter than itself
        # (a - (b - c)); ``**`` is right-associative: its left operand does
        lo, ro = (binds + 1, binds) if op == "**" else (binds, binds + 1)
        return Sym(f"{left._wrap(lo)} {op} {right._wrap(ro)}", binds)

    def __add__(self, o: Any) -> Sym:
        return self._binary("+", o, SUM)

    def __radd__(self, o: Any) -> Sym:
        return self._binary("+", o, SUM, True)

    def __sub__(self, o: Any) -> Sym:
        return self._binary("-", o, SUM)

    def __rsub__(self, o: Any) -> Sym:
        return self._binary("-", o, SUM, True)

    def __mul__(self, o: Any) -> Sym:
        return self._binary("*", o, PRODUCT)

    def __rmul__(self, o: Any) -> Sym:
        return self._binary("*", o, PRODUCT, True)

    def __truediv__(self, o: Any) -> Sym:
        return self._binary("/", o, PRODUCT)

    def __rtruediv__(self, o: Any) -> Sym:
        return self._binary("/", o, PRODUCT, True)

    def __pow__(self, o: Any) -> Sym:
        return self._binary("**", o, POWER)

    def __neg__(self) -> Sym:
        return Sym(f"-{self._wrap(UNARY)}", UNARY)

    def __gt__(self, o: Any) -> Sym:
        return self._binary(">", o, COMPARE)

    def __matmul__(self, o: Any) -> Sym:
        return self._binary("@", o, PRODUCT)

    @property
    def T(self) -> Sym:  # noqa: N802 - numpy's and torch's name for it
        return Sym(f"{self._wrap(ATOM)}.T")


class _Numpy:
    """``xp`` for ``Sym``s: each function call written as numpy code."""

    def __getattr__(self, name: str) -> Callable[..., Sym]:
        def call(*args: Any) -> Sym:
            return Sym(f"np.{name}(" + ", ".join(str(Sym.of(a)) for a in args) + ")")

        return call


NP = _Numpy()


@dataclass(frozen=True)
class Unary:
    """y = f(x), element by element."""

    name: str
    #: the autograd node a step's formula explains
    grad_fn: str
    #: the ATen ops the manual file translates (the in-place ones too)
    aten: tuple[str, ...]
    #: y from x (the manual file's forward line: written with ``NP``)
    forward: Callable[[Any, Any], Any]
    #: ∂y/∂x from x and y (``o.x``, ``o.y``: only the one PyTorch saves is read)
    local: Callable[[Any, Any], Any]
    latex: str
    text: str
    note: str = ""


UNARIES = [
    Unary(
        "neg", "NegBackward0", ("neg.default",), lambda x, xp: -x, lambda o, xp: -1, "(-1)", "(-1)"
    ),
    Unary(
        "exp",
        "ExpBackward0",
        ("exp.default", "exp_.default"),
        lambda x, xp: xp.exp(x),
        lambda o, xp: o.y,
        "e^{x} = y",
        "exp(x) = y",
    ),
    Unary(
        "log",
        "LogBackward0",
        ("log.default",),
        lambda x, xp: xp.log(x),
        lambda o, xp: 1 / o.x,
        r"\frac{1}{x}",
        "1/x",
    ),
    Unary(
        "log1p",
        "Log1pBackward0",
        ("log1p.default",),
        lambda x, xp: xp.log1p(x),
        lambda o, xp: 1 / (1 + o.x),
        r"\frac{1}{1 + x}",
        "1/(1 + x)",
    ),
    Unary(
        "sqrt",
        "SqrtBackward0",
        ("sqrt.default",),
        lambda x, xp: xp.sqrt(x),
        lambda o, xp: 1 / (2 * o.y),
        r"\frac{1}{2\sqrt{x}} = \frac{1}{2y}",
        "1/(2 sqrt(x))",
        "At x = 0 the derivative 1/(2√x) is infinite.",
    ),
    Unary(
        "rsqrt",
        "RsqrtBackward0",
        ("rsqrt.default",),
        lambda x, xp: 1 / xp.sqrt(x),
        lambda o, xp: -0.5 * o.y**3,
        r"-\frac{1}{2}x^{-3/2} = -\frac{y^3}{2}",
        "-y^3/2",
    ),
    Unary(
        "reciprocal",
        "ReciprocalBackward0",
        ("reciprocal.default",),
        lambda x, xp: 1 / x,
        lambda o, xp: -(o.y * o.y),
        r"-\frac{1}{x^2} = -y^2",
        "-y^2",
    ),
    Unary(
        "sin",
        "SinBackward0",
        ("sin.default",),
        lambda x, xp: xp.sin(x),
        lambda o, xp: xp.cos(o.x),
        r"\cos x",
        "cos(x)",
    ),
    Unary(
        "cos",
        "CosBackward0",
        ("cos.default",),
        lambda x, xp: xp.cos(x),
        lambda o, xp: -xp.sin(o.x),
        r"(-\sin x)",
        "-sin(x)",
    ),
    Unary(
        "tanh",
        "TanhBackward0",
        ("tanh.default", "tanh_.default"),
        lambda x, xp: xp.tanh(x),
        lambda o, xp: 1 - o.y * o.y,
        r"(1 - \tanh^2 x) = (1 - y^2)",
        "(1 - y^2)",
    ),
    Unary(
        "sigmoid",
        "SigmoidBackward0",
        ("sigmoid.default", "sigmoid_.default"),
        lambda x, xp: 1 / (1 + xp.exp(-x)),
        lambda o, xp: o.y * (1 - o.y),
        r"\sigma(x)(1-\sigma(x)) = y(1-y)",
        "y(1 - y)",
    ),
    Unary(
        "relu",
        "ReluBackward0",
        ("relu.default", "relu_.default"),
        lambda x, xp: xp.maximum(x, 0),
        lambda o, xp: o.y > 0,
        r"\mathbb{1}[y > 0]",
        "1[y > 0]",
        "ReLU passes the gradient where its output was positive and blocks it (0) "
        "elsewhere: the mask.",
    ),
    Unary(
        "abs",
        "AbsBackward0",
        ("abs.default",),
        lambda x, xp: xp.abs(x),
        lambda o, xp: xp.sign(o.x),
        r"\operatorname{sign}(x)",
        "sign(x)",
    ),
    Unary(
        "silu",
        "SiluBackward0",
        ("silu.default", "silu_.default"),
        lambda x, xp: x / (1 + xp.exp(-x)),
        lambda o, xp: (1 / (1 + xp.exp(-o.x))) * (1 + o.x * (1 - 1 / (1 + xp.exp(-o.x)))),
        r"\sigma(x)\,(1 + x(1 - \sigma(x)))",
        "sigmoid(x) (1 + x (1 - sigmoid(x)))",
    ),
]


@dataclass(frozen=True)
class Binary:
    """y = a ∘ b, element by element, with broadcasting."""

    name: str
    grad_fn: str
    aten: tuple[str, ...]
    #: y from a and b (written with ``NP``)
    forward: Callable[[Any, Any, Any], Any]
    #: ∂y/∂a and ∂y/∂b from ``o.a``, ``o.b`` (``self``, ``other``: PyTorch saves each
    #: only when the other operand needs a gradient)
    local_a: Callable[[Any, Any], Any]
    local_b: Callable[[Any, Any], Any]
    latex: str
    text: str


MUL = Binary(
    "mul",
    "MulBackward0",
    ("mul.Tensor", "mul.Scalar", "mul_.Tensor", "mul_.Scalar"),
    lambda a, b, xp: a * b,
    lambda o, xp: o.b,
    lambda o, xp: o.a,
    r"y = a \odot b:\quad \frac{\partial L}{\partial a} = \frac{\partial L}{\partial y} \odot b,"
    r"\quad \frac{\partial L}{\partial b} = \frac{\partial L}{\partial y} \odot a",
    "y = a*b: dL/da = dL/dy * b, dL/db = dL/dy * a",
)
DIV = Binary(
    "div",
    "DivBackward0",
    ("div.Tensor", "div.Scalar", "div_.Tensor", "div_.Scalar"),
    lambda a, b, xp: a / b,
    lambda o, xp: 1 / o.b,
    lambda o, xp: -o.a / (o.b * o.b),
    r"y = \frac{a}{b}:\quad \frac{\partial L}{\partial a} = \frac{\partial L}{\partial y}"
    r"\frac{1}{b},\quad \frac{\partial L}{\partial b} = -\frac{\partial L}{\partial y}"
    r"\frac{a}{b^2}",
    "y = a/b: dL/da = dL/dy / b, dL/db = -dL/dy * a / b^2",
)
BINARIES = [MUL, DIV]


@dataclass(frozen=True)
class Product:
    """A matrix product: each operand's gradient is the upstream multiplied by the other
    operand, transposed."""

    name: str
    grad_fn: str
    aten: tuple[str, ...]
    #: what PyTorch saves ``b`` as (``a`` is ``self``; read as ``o.a``, ``o.b``)
    other: str
    #: y from a and b (written with ``NP``)
    forward: Callable[[Any, Any, Any], Any]
    #: ∂L/∂a and ∂L/∂b from the upstream ``g`` and the operands
    grad_a: Callable[[Any, Any, Any], Any]
    grad_b: Callable[[Any, Any, Any], Any]
    latex: str
    text: str
    letters: dict[str, int | str]


MATRIX: dict[str, int | str] = {"A": 0, "B": 1, "Y": "out"}
MM = Product(
    "mm",
    "MmBackward0",
    ("mm.default",),
    "mat2",
    lambda a, b, xp: a @ b,
    lambda g, o, xp: g @ o.b.T,
    lambda g, o, xp: o.a.T @ g,
    r"Y = AB:\quad \frac{\partial L}{\partial A} = \frac{\partial L}{\partial Y}\,B^{\top},"
    r"\quad \frac{\partial L}{\partial B} = A^{\top}\frac{\partial L}{\partial Y}",
    "Y = A@B: dL/dA = dL/dY @ B.T, dL/dB = A.T @ dL/dY",
    MATRIX,
)
PRODUCTS = [
    MM,
    Product(
        "mv",
        "MvBackward0",
        ("mv.default",),
        "vec",
        lambda a, v, xp: a @ v,
        lambda g, o, xp: xp.outer(g, o.b),
        lambda g, o, xp: o.a.T @ g,
        r"y = Av:\quad \frac{\partial L}{\partial A} = \frac{\partial L}{\partial y}\,v^{\top},"
        r"\quad \frac{\partial L}{\partial v} = A^{\top}\frac{\partial L}{\partial y}",
        "dL/dA = outer(dL/dy, v), dL/dv = A.T @ dL/dy",
        {"A": 0, "v": 1, "y": "out"},
    ),
    Product(
        "dot",
        "DotBackward0",
        ("dot.default",),
        "tensor",
        lambda a, b, xp: xp.dot(a, b),
        lambda g, o, xp: g * o.b,
        lambda g, o, xp: g * o.a,
        r"y = a\cdot b:\quad \frac{\partial L}{\partial a} = \frac{\partial L}{\partial y}\,b,"
        r"\quad \frac{\partial L}{\partial b} = \frac{\partial L}{\partial y}\,a",
        "dL/da = dL/dy * b, dL/db = dL/dy * a",
        {"a": 0, "b": 1, "y": "out"},
    ),
    Product(
        "bmm",
        "BmmBackward0",
        ("bmm.default",),
        "mat2",
        lambda a, b, xp: a @ b,
        lambda g, o, xp: g @ xp.swapaxes(o.b, 1, 2),
        lambda g, o, xp: xp.swapaxes(o.a, 1, 2) @ g,
        r"Y_k = A_k B_k:\quad \frac{\partial L}{\partial A_k} = \frac{\partial L}{\partial Y_k}"
        r"B_k^{\top},\quad \frac{\partial L}{\partial B_k} = A_k^{\top}"
        r"\frac{\partial L}{\partial Y_k}",
        "per batch: dL/dA = dL/dY @ B.T, dL/dB = A.T @ dL/dY",
        MATRIX,
    ),
]
