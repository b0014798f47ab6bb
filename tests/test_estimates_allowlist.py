"""Every entry of the allow-list that computes, priced before it runs, against the real call.

``test_estimates.py`` draws shapes for the op families one by one; this file walks the
allow-lists themselves (``language/allowlist.py``): each torch function, tensor method,
nn layer (its constructor's parameters and its call), functional, numpy function,
``np.random`` and ``default_rng`` call, ndarray method and string method has a case that
builds its arguments from drawn sizes, and the gate's price (elements of the result,
operations) must never be below what the call really made (its elements; its operations
as PyTorch's FLOP counter counts them). Every entry not in a case table is named in
``NOT_PRICED`` with why it makes no data worth pricing, and a test holds the tables to
the allow-lists: adding a name to the language without a case here fails.
"""

from __future__ import annotations

import copy
import itertools
import operator
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

from chainlens.errors import LimitExceeded
from chainlens.language import allowlist
from chainlens.language.estimates import format_length, layer_parameters, str_result_length
from chainlens.language.gate import Gate
from chainlens.language.hooks import ProgramHooks
from chainlens.settings import Settings
from chainlens.tracing.recorder import Recorder

GATE = Gate(Settings(), Recorder(100, 2), ProgramHooks(on_backward=lambda *a: None))


@dataclass
class Call:
    """One call as the interpreter hands it to the gate: ``fn(*args, **kwargs)`` named
    ``op``, on ``target`` (a method's object) or through ``module`` (a layer called)."""

    fn: Callable[..., Any]
    args: list[Any]
    kwargs: dict[str, Any] = field(default_factory=dict)
    target: Any = None
    module: Any = None


class Draw:
    """Small random sizes and the operands made from them."""

    def __init__(self, data: Any) -> None:
        self.data = data
        #: (values drawn from hypothesis's seed, so that a failing case replays)
        self.values = torch.Generator().manual_seed(data.draw(st.integers(0, 2**16)))

    def n(self, lo: int = 1, hi: int = 5) -> int:
        return self.data.draw(st.integers(lo, hi))

    def shape(self, lo: int = 1, hi: int = 3) -> tuple[int, ...]:
        return tuple(self.n() for _ in range(self.n(lo, hi)))

    def x(self, shape: tuple[int, ...] | None = None) -> torch.Tensor:
        return torch.rand(shape if shape is not None else self.shape(), generator=self.values) + 0.5

    def pair(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Two operands that broadcast: one's shape a suffix of the other's, some sizes 1."""
        a = self.shape()
        k = self.n(0, len(a))
        b = tuple(1 if self.data.draw(st.booleans()) else d for d in a[len(a) - k :])
        if self.data.draw(st.booleans()):
            a, b = b, a
        return self.x(a), self.x(b)

    def ints(self, high: int, shape: Any) -> torch.Tensor:
        """Integers in [0, high): labels, indices."""
        return torch.randint(
            0, high, shape if isinstance(shape, tuple) else tuple(shape), generator=self.values
        )

    def dim(self, x: Any) -> int:
        return self.n(-max(x.ndim, 1), max(x.ndim, 1) - 1)

    def pick(self, options: list[Any]) -> Any:
        return self.data.draw(st.sampled_from(options))

    def a(self, shape: tuple[int, ...] | None = None) -> np.ndarray:
        return self.x(shape).numpy().astype(np.float64)


Builder = Callable[[Draw], tuple[list[Any], dict[str, Any]]]


def _names(text: str) -> list[str]:
    return text.split()


# ---------------------------------------------------------------- torch functions
# Each builder gives the arguments of ``torch.<name>``, its tensor operand first: the
# tensor method of the same name takes the same arguments with that tensor as its object.


def unary(d: Draw) -> tuple[list[Any], dict]:
    return [d.x()], {}


def binary(d: Draw) -> tuple[list[Any], dict]:
    return list(d.pair()), {}


def with_dim(d: Draw) -> tuple[list[Any], dict]:
    x = d.x()
    return [x, d.dim(x)], {}


def reduction(d: Draw) -> tuple[list[Any], dict]:
    x = d.x()
    if d.data.draw(st.booleans()):
        return [x], {}
    return [x, d.dim(x)], {"keepdim": d.data.draw(st.booleans())}


def matrix(d: Draw) -> tuple[list[Any], dict]:
    n = d.n(1, 4)
    return [torch.rand(*d.shape(0, 1), n, n) + torch.eye(n) * n], {}


def three(d: Draw) -> tuple[list[Any], dict]:
    a, b = d.pair()
    return [a, b, d.x(tuple(a.shape))], {}


def three_in_place(d: Draw) -> tuple[list[Any], dict]:
    """``x.addcmul_(a, b)``: x has the shape its operands broadcast to."""
    a, b = d.pair()
    return [torch.empty(torch.broadcast_shapes(a.shape, b.shape)), a, b], {}


def sizes(d: Draw) -> tuple[list[Any], dict]:
    return list(d.shape()), {}


def mask_fill(d: Draw) -> tuple[list[Any], dict]:
    x = d.x()
    return [x, x > 1.0, 0.0], {}


def index_of(x: torch.Tensor, dim: int, d: Draw, length: int | None = None) -> torch.Tensor:
    return d.ints(x.shape[dim], (length if length is not None else d.n(1, 8),))


def gather_like(d: Draw) -> tuple[list[Any], dict]:
    x = d.x()
    dim = d.dim(x)
    shape = tuple(d.n(1, 8) if i == dim % x.ndim else s for i, s in enumerate(x.shape))
    return [x, dim, d.ints(x.shape[dim], shape)], {}


def scatter_like(d: Draw) -> tuple[list[Any], dict]:
    x = d.x()
    dim = d.dim(x)
    index = d.ints(x.shape[dim], x.shape)
    return [x, dim, index, d.x(tuple(x.shape))], {}


def index_add(d: Draw) -> tuple[list[Any], dict]:
    x = d.x()
    dim = d.dim(x)
    index = index_of(x, dim, d)
    source = d.x(tuple(len(index) if i == dim % x.ndim else s for i, s in enumerate(x.shape)))
    return [x, dim, index, source], {}


def joins(d: Draw) -> tuple[list[Any], dict]:
    shape = d.shape()
    return [[d.x(shape) for _ in range(d.n(1, 4))]], {}


def matmul(d: Draw) -> tuple[list[Any], dict]:
    m, k, n = d.n(), d.n(), d.n()
    return [d.x((*d.shape(0, 2), m, k)), d.x((k, n))], {}


def vectors(d: Draw) -> tuple[list[Any], dict]:
    return [d.x((d.n(1, 8),)), d.x((d.n(1, 8),))], {}


TORCH_CASES: dict[str, Builder] = {
    **dict.fromkeys(
        _names("""
        abs exp exp2 log log2 log10 log1p expm1 sqrt rsqrt sin cos tan tanh sigmoid relu
        asin acos atan sinh cosh erf erfc lgamma square sign floor ceil round trunc frac neg
        reciprocal isnan isinf isfinite logical_not nan_to_num sigmoid_
        flatten unique sort argsort nonzero count_nonzero all any
        zeros_like ones_like empty_like rand_like randn_like numel is_tensor
        is_floating_point"""),
        unary,
    ),
    **dict.fromkeys(_names("inverse det"), matrix),
    **dict.fromkeys(_names("t trace"), lambda d: ([d.x((d.n(), d.n()))], {})),
    **dict.fromkeys(
        _names("""
        add sub mul div true_divide remainder fmod maximum minimum fmax fmin atan2 pow
        eq ne gt lt ge le isclose heaviside logical_and logical_or logical_xor dist allclose
        equal"""),
        binary,
    ),
    **dict.fromkeys(
        _names("""
        sum mean prod max min argmax argmin amax amin std var median mode"""),
        reduction,
    ),
    **dict.fromkeys(
        _names("softmax log_softmax logsumexp cumsum cumprod squeeze unsqueeze"), with_dim
    ),
    "flip": lambda d: (lambda x: ([x, (d.dim(x),)], {}))(d.x()),
    **dict.fromkeys(_names("cat concat stack hstack vstack"), joins),
    **dict.fromkeys(_names("lerp addcmul addcdiv"), three),
    "where": lambda d: (lambda a, b: ([a > 1.0, a, b], {}))(*d.pair()),
    "bernoulli": lambda d: ([d.x() - 0.5], {}),
    **dict.fromkeys(_names("zeros ones empty rand randn"), sizes),
    "tensor": lambda d: ([torch.rand(d.shape()).tolist()], {}),
    "as_tensor": lambda d: ([torch.rand(d.shape()).tolist()], {}),
    "from_numpy": lambda d: ([d.a()], {}),
    "full": lambda d: ([d.shape(), 0.5], {}),
    "full_like": lambda d: ([d.x(), 0.5], {}),
    "randint_like": lambda d: ([d.x(), 10], {}),
    "randint": lambda d: ([0, d.n(1, 20), d.shape()], {}),
    "randperm": lambda d: ([d.n(1, 40)], {}),
    "arange": lambda d: ([0.5 * d.n(0, 10), d.n(10, 40), d.pick([1, 0.5, 3])], {}),
    "linspace": lambda d: ([0.0, 1.0, d.n(1, 400)], {}),
    "logspace": lambda d: ([0.0, 1.0], {"steps": d.n(1, 400)}),
    "eye": lambda d: ([d.n(1, 8), d.n(1, 8)], {}),
    "split": lambda d: ([d.x(), d.n(1, 3)], {}),
    "chunk": lambda d: ([d.x(), d.n(1, 3)], {}),
    "unbind": lambda d: ([d.x()], {}),
    "reshape": lambda d: ((lambda x: [x, (-1,)])(d.x()), {}),
    "transpose": lambda d: ((lambda x: [x, 0, x.ndim - 1])(d.x()), {}),
    "permute": lambda d: ((lambda x: [x, tuple(reversed(range(x.ndim)))])(d.x()), {}),
    "movedim": lambda d: ((lambda x: [x, 0, x.ndim - 1])(d.x()), {}),
    "narrow": lambda d: ((lambda x: [x, 0, 0, x.shape[0]])(d.x()), {}),
    "roll": lambda d: ([d.x(), d.n()], {"dims": 0}),
    "matmul": matmul,
    "mm": lambda d: (lambda m, k, n: ([d.x((m, k)), d.x((k, n))], {}))(d.n(), d.n(), d.n()),
    "bmm": lambda d: (lambda b, m, k, n: ([d.x((b, m, k)), d.x((b, k, n))], {}))(
        d.n(), d.n(), d.n(), d.n()
    ),
    "mv": lambda d: (lambda m, k: ([d.x((m, k)), d.x((k,))], {}))(d.n(), d.n()),
    "dot": lambda d: (lambda k: ([d.x((k,)), d.x((k,))], {}))(d.n(1, 8)),
    "outer": vectors,
    "cartesian_prod": vectors,
    "kron": lambda d: ([d.x(d.shape(1, 2)), d.x(d.shape(1, 2))], {}),
    "addmm": lambda d: (lambda m, k, n: ([d.x((n,)), d.x((m, k)), d.x((k, n))], {}))(
        d.n(), d.n(), d.n()
    ),
    "einsum": lambda d: (
        lambda m, k, n: (
            d.pick(
                [
                    ["ij,jk->ik", d.x((m, k)), d.x((k, n))],
                    ["i,j->ij", d.x((m,)), d.x((n,))],
                    ["ij->ji", d.x((m, n))],
                    ["bij,bjk", d.x((2, m, k)), d.x((2, k, n))],
                ]
            ),
            {},
        )
    )(d.n(), d.n(), d.n()),
    "norm": lambda d: ([d.x()], {"dim": 0, "keepdim": d.data.draw(st.booleans())}),
    "clamp": lambda d: ([d.x(), 0.6, 1.2], {}),
    "clip": lambda d: ([d.x(), 0.6, 1.2], {}),
    "clamp_min": lambda d: ([d.x(), 0.6], {}),
    "clamp_max": lambda d: ([d.x(), 1.2], {}),
    "diag": lambda d: ([d.x(d.shape(1, 2))], {"diagonal": d.n(-2, 2)}),
    "diagonal": lambda d: ([d.x((d.n(), d.n()))], {}),
    "tril": lambda d: ([d.x((d.n(), d.n()))], {}),
    "triu": lambda d: ([d.x((d.n(), d.n()))], {}),
    "masked_fill": mask_fill,
    "masked_select": lambda d: (lambda x: ([x, x > 1.0], {}))(d.x()),
    "gather": gather_like,
    "scatter": scatter_like,
    "scatter_add": scatter_like,
    "index_add": index_add,
    "index_select": lambda d: (lambda x: ([x, 0, index_of(x, 0, d)], {}))(d.x()),
    "take": lambda d: (lambda x: ([x, d.ints(x.numel(), d.shape())], {}))(d.x()),
    "meshgrid": lambda d: ([d.x((d.n(),)), d.x((d.n(),))], {"indexing": "ij"}),
    "topk": lambda d: (lambda x: ([x, d.n(1, x.shape[-1])], {}))(d.x()),
    "broadcast_tensors": binary,
    "broadcast_to": lambda d: (lambda a, b: ([a, torch.broadcast_shapes(a.shape, b.shape)], {}))(
        *d.pair()
    ),
    "cdist": lambda d: ([d.x((d.n(1, 8), 3)), d.x((d.n(1, 8), 3))], {}),
    "multinomial": lambda d: ([d.x((d.n(1, 4), d.n(2, 6))), d.n(1, 8)], {"replacement": True}),
    "normal": lambda d: ([0.0, 1.0, d.shape()], {}),
    "tile": lambda d: ([d.x(), tuple(d.n(1, 3) for _ in range(d.n(1, 3)))], {}),
    "repeat_interleave": lambda d: ([d.x(), d.n(1, 4)], {}),
    "histogram": lambda d: ([d.x((d.n(1, 20),)), d.n(1, 30)], {}),
    "histc": lambda d: ([d.x((d.n(1, 20),))], {"bins": d.n(1, 30)}),
    "bincount": lambda d: ([d.ints(d.n(1, 40), (d.n(1, 10),))], {}),
    "Tensor": sizes,
    **dict.fromkeys(
        _names("FloatTensor DoubleTensor LongTensor IntTensor BoolTensor ByteTensor"), sizes
    ),
}

#: Tensor methods whose arguments follow the torch function's, the tensor as the object.
METHOD_ONLY: dict[str, Builder] = {
    **dict.fromkeys(
        _names("""
        clone detach detach_ contiguous cpu float double half long int bool zero_ relu_ sigmoid_
        tanh_ exp_ sqrt_ neg_ abs_ log_ floor_ ceil_ round_ sign_ random_ exponential_
        bernoulli_ normal_ uniform_ tolist numpy requires_grad_"""),
        unary,
    ),
    "t_": lambda d: ([d.x(d.shape(1, 2))], {}),
    **dict.fromkeys(
        _names("add_ sub_ mul_ div_ pow_ copy_"),
        lambda d: (lambda x: ([x, d.x(tuple(x.shape)[d.n(0, x.ndim) :])], {}))(d.x()),
    ),
    **dict.fromkeys(_names("squeeze_ unsqueeze_"), with_dim),
    "view": lambda d: ([d.x(), -1], {}),
    "view_as": lambda d: (lambda x: ([x, x.reshape(-1)], {}))(d.x()),
    "reshape_as": lambda d: (lambda x: ([x, x.reshape(-1)], {}))(d.x()),
    "unflatten": lambda d: (lambda n: ([d.x((n * 2,)), 0, (n, 2)], {}))(d.n()),
    "expand": lambda d: ([d.x((1, d.n())), d.n(1, 8), -1], {}),
    "expand_as": lambda d: (
        lambda a, b: ([a, torch.empty(torch.broadcast_shapes(a.shape, b.shape))], {})
    )(*d.pair()),
    "repeat": lambda d: (lambda x: ([x, *(d.n(1, 3) for _ in range(x.ndim + d.n(0, 1)))], {}))(
        d.x()
    ),
    "to": lambda d: ([d.x(), torch.float64], {}),
    "type_as": lambda d: ([d.x(), torch.zeros(1, dtype=torch.float64)], {}),
    "new_zeros": lambda d: ([d.x(), d.shape()], {}),
    "new_ones": lambda d: ([d.x(), d.shape()], {}),
    "new_empty": lambda d: ([d.x(), d.shape()], {}),
    "new_full": lambda d: ([d.x(), d.shape(), 2.0], {}),
    "new_tensor": lambda d: ([d.x(), torch.rand(d.shape()).tolist()], {}),
    "sum_to_size": lambda d: (
        lambda a, b: ([torch.empty(torch.broadcast_shapes(a.shape, b.shape)), b.shape], {})
    )(*d.pair()),
    "fill_": lambda d: ([d.x(), 2.0], {}),
    "clamp_": lambda d: ([d.x(), 0.6, 1.2], {}),
    "clamp_min_": lambda d: ([d.x(), 0.6], {}),
    "masked_fill_": mask_fill,
    "fill_diagonal_": lambda d: ([d.x((d.n(), d.n())), 1.0], {}),
    "scatter_": scatter_like,
    "scatter_add_": scatter_like,
    "index_add_": index_add,
    "index_fill_": lambda d: (lambda x: ([x, 0, index_of(x, 0, d), 1.0], {}))(d.x()),
    "addcmul_": three_in_place,
    "addcdiv_": three_in_place,
    "retain_grad": lambda d: ([d.x().requires_grad_()], {}),
    "where": lambda d: (lambda a, b: ([a, a > 1.0, b], {}))(*d.pair()),
    "lerp_": lambda d: (lambda x: ([x, d.x(tuple(x.shape)), 0.5], {}))(d.x()),
    "transpose_": lambda d: (lambda x: ([x, 0, x.ndim - 1], {}))(d.x()),
    **dict.fromkeys(
        _names("""
        size dim nelement element_size is_contiguous stride is_inference"""),
        unary,
    ),
    "item": lambda d: ([d.x((1,) * d.n(0, 2))], {}),
    "type": lambda d: ([d.x(), d.pick([torch.float64, torch.DoubleTensor])], {}),
}


def tensor_method(name: str) -> Callable[[Draw], Call]:
    builder = METHOD_ONLY.get(name) or TORCH_CASES[name]

    def build(d: Draw) -> Call:
        args, kwargs = builder(d)
        target = args[0]
        return Call(getattr(target, name), args[1:], kwargs, target)

    return build


def torch_function(name: str, namespace: Any = torch) -> Callable[[Draw], Call]:
    builder = TORCH_CASES[name]

    def build(d: Draw) -> Call:
        args, kwargs = builder(d)
        return Call(getattr(namespace, name), args, kwargs)

    return build


# ---------------------------------------------------------------- torch.nn.functional


def images(d: Draw, channels: int | None = None) -> torch.Tensor:
    return d.x((d.n(1, 2), channels or d.n(1, 3), d.n(4, 9), d.n(4, 9)))


def logits_and_labels(d: Draw) -> tuple[torch.Tensor, torch.Tensor]:
    n, c = d.n(1, 6), d.n(2, 6)
    return d.x((n, c)), d.ints(c, (n,))


def reduced(d: Draw) -> dict[str, Any]:
    return {"reduction": d.pick(["mean", "sum", "none"])}


def conv(d: Draw, dims: int, transposed: bool = False) -> tuple[list[Any], dict]:
    cin, cout, k = d.n(1, 3), d.n(1, 4), d.n(1, 3)
    x = d.x((d.n(1, 2), cin, *(d.n(5, 9) for _ in range(dims))))  # (>= a dilated kernel)
    weight = d.x((cin, cout, *[k] * dims) if transposed else (cout, cin, *[k] * dims))
    return [x, weight], {
        "stride": d.n(1, 3),
        "padding": d.n(0, 1),
        **({"output_padding": 0} if transposed else {}),
        "dilation": d.n(1, 2),
    }


def pool(d: Draw, dims: int) -> tuple[list[Any], dict]:
    k = d.n(1, 3)
    x = d.x((d.n(1, 2), d.n(1, 3), *(d.n(4, 9) for _ in range(dims))))
    return [x, k], {
        "stride": d.pick([None, 1, 2]),
        "padding": d.n(0, k // 2),
        "ceil_mode": d.data.draw(st.booleans()),
    }


FUNCTIONAL_CASES: dict[str, Builder] = {
    **dict.fromkeys(
        _names("""
        relu relu6 leaky_relu gelu sigmoid tanh softplus elu selu silu mish hardtanh
        logsigmoid dropout"""),
        unary,
    ),
    "normalize": lambda d: ([d.x()], {"dim": -1}),
    **dict.fromkeys(_names("softmax log_softmax"), with_dim),
    "threshold": lambda d: ([d.x(), 1.0, 0.0], {}),
    "linear": lambda d: (lambda k, n: ([d.x((*d.shape(1, 2), k)), d.x((n, k)), d.x((n,))], {}))(
        d.n(), d.n()
    ),
    "bilinear": lambda d: (lambda a, b, o, n: ([d.x((n, a)), d.x((n, b)), d.x((o, a, b))], {}))(
        d.n(), d.n(), d.n(), d.n()
    ),
    "conv1d": lambda d: conv(d, 1),
    "conv2d": lambda d: conv(d, 2),
    "conv_transpose2d": lambda d: conv(d, 2, transposed=True),
    "max_pool1d": lambda d: pool(d, 1),
    "max_pool2d": lambda d: pool(d, 2),
    "avg_pool1d": lambda d: pool(d, 1),
    "avg_pool2d": lambda d: pool(d, 2),
    "adaptive_avg_pool1d": lambda d: ([d.x((d.n(1, 2), d.n(1, 3), d.n(4, 9))), d.n(1, 6)], {}),
    "adaptive_avg_pool2d": lambda d: ([images(d), (d.n(1, 6), d.n(1, 6))], {}),
    "adaptive_max_pool2d": lambda d: ([images(d), d.n(1, 6)], {}),
    "batch_norm": lambda d: (
        lambda x: ([x, torch.zeros(x.shape[1]), torch.ones(x.shape[1])], {"training": True})
    )(images(d)),
    "layer_norm": lambda d: (lambda x: ([x, tuple(x.shape[-1:])], {}))(d.x()),
    "group_norm": lambda d: ([images(d, 4), d.pick([1, 2, 4])], {}),
    "embedding": lambda d: ([d.ints(7, d.shape()), d.x((7, d.n()))], {}),
    "one_hot": lambda d: ([d.ints(5, d.shape())], {"num_classes": d.pick([-1, 5, 9])}),
    "pad": lambda d: (lambda x: ([x, tuple(d.n(0, 3) for _ in range(2 * d.n(1, x.ndim)))], {}))(
        d.x()
    ),
    **dict.fromkeys(
        _names("mse_loss l1_loss smooth_l1_loss huber_loss"),
        lambda d: (lambda x: ([x, d.x(tuple(x.shape))], reduced(d)))(d.x()),
    ),
    "cross_entropy": lambda d: (list(logits_and_labels(d)), reduced(d)),
    "nll_loss": lambda d: (list(logits_and_labels(d)), reduced(d)),
    "binary_cross_entropy": lambda d: (lambda x: ([x / 2, torch.rand(x.shape)], reduced(d)))(d.x()),
    "binary_cross_entropy_with_logits": lambda d: (
        lambda x: ([x, torch.rand(x.shape)], reduced(d))
    )(d.x()),
    "kl_div": lambda d: (lambda x: ([x.log(), torch.rand(x.shape)], reduced(d)))(d.x()),
    "cosine_similarity": lambda d: (lambda x: ([x, d.x(tuple(x.shape))], {}))(d.x((d.n(), 4))),
    "pairwise_distance": lambda d: (lambda x: ([x, d.x(tuple(x.shape))], {}))(d.x((d.n(), 4))),
    "scaled_dot_product_attention": lambda d: (
        lambda b, lq, lk, e: ([d.x((b, lq, e)), d.x((b, lk, e)), d.x((b, lk, e))], {})
    )(d.n(), d.n(), d.n(), d.n()),
    "interpolate": lambda d: (
        [images(d)],
        d.pick([{"scale_factor": d.n(1, 3)}, {"size": (d.n(1, 12), d.n(1, 12))}]),
    ),
}


# ---------------------------------------------------------------- torch.nn layers

Layer = Callable[[Draw], tuple[type, list[Any], dict[str, Any], list[Any]]]
"""A layer's class, its constructor's arguments, and the inputs of one call."""


def activation(cls: type, *args: Any) -> Layer:
    return lambda d: (cls, list(args), {}, [d.x()])


def loss(cls: type, make: Builder) -> Layer:
    def build(d: Draw) -> tuple[type, list[Any], dict, list[Any]]:
        inputs, kwargs = make(d)
        return cls, [], kwargs, inputs

    return build


def recurrent(cls: type, cell: bool) -> Layer:
    """A recurrent layer: a cell takes (N, input) rows, a layer (L, N, input) sequences."""

    def build(d: Draw) -> tuple[type, list[Any], dict, list[Any]]:
        i, h = d.n(), d.n()
        if cell:
            return cls, [i, h], {}, [d.x((d.n(), i))]
        return (
            cls,
            [i, h],
            {"num_layers": d.n(1, 2), "batch_first": d.data.draw(st.booleans())},
            [d.x((d.n(), d.n(), i))],
        )

    return build


NN_CASES: dict[str, Layer] = {
    "Linear": lambda d: (lambda i, o: (nn.Linear, [i, o], {}, [d.x((*d.shape(1, 2), i))]))(
        d.n(1, 8), d.n(1, 8)
    ),
    "Bilinear": lambda d: (
        lambda a, b, o: (nn.Bilinear, [a, b, o], {}, [d.x((3, a)), d.x((3, b))])
    )(d.n(), d.n(), d.n()),
    "Conv1d": lambda d: (
        lambda c, o, k: (
            nn.Conv1d,
            [c, o, k],
            {"padding": d.n(0, 1)},
            [d.x((d.n(1, 2), c, d.n(3, 9)))],
        )
    )(d.n(1, 3), d.n(1, 4), d.n(1, 3)),
    "Conv2d": lambda d: (
        lambda c, o, k, g: (
            nn.Conv2d,
            [c * g, o * g, k],
            {"stride": d.n(1, 2), "padding": d.n(0, 1), "groups": g},
            [images(d, c * g)],
        )
    )(d.n(1, 3), d.n(1, 3), d.n(1, 3), d.n(1, 2)),
    "ConvTranspose2d": lambda d: (
        lambda c, o, k: (
            nn.ConvTranspose2d,
            [c, o, k],
            {"stride": d.n(1, 3), "padding": d.n(0, 1)},
            [images(d, c)],
        )
    )(d.n(1, 3), d.n(1, 3), d.n(1, 3)),
    "MaxPool1d": lambda d: (nn.MaxPool1d, [d.n(1, 3)], {}, [d.x((2, 3, d.n(3, 9)))]),
    "MaxPool2d": lambda d: (nn.MaxPool2d, [d.n(1, 3)], {"stride": d.n(1, 2)}, [images(d)]),
    "AvgPool1d": lambda d: (nn.AvgPool1d, [d.n(1, 3)], {}, [d.x((2, 3, d.n(3, 9)))]),
    "AvgPool2d": lambda d: (nn.AvgPool2d, [d.n(1, 3)], {"ceil_mode": True}, [images(d)]),
    "AdaptiveAvgPool1d": lambda d: (
        nn.AdaptiveAvgPool1d,
        [d.n(1, 6)],
        {},
        [d.x((2, 3, d.n(3, 9)))],
    ),
    "AdaptiveAvgPool2d": lambda d: (nn.AdaptiveAvgPool2d, [d.n(1, 6)], {}, [images(d)]),
    "AdaptiveMaxPool2d": lambda d: (
        nn.AdaptiveMaxPool2d,
        [(d.n(1, 6), d.n(1, 6))],
        {},
        [images(d)],
    ),
    "BatchNorm1d": lambda d: (lambda c: (nn.BatchNorm1d, [c], {}, [d.x((d.n(2, 6), c))]))(d.n()),
    "BatchNorm2d": lambda d: (lambda c: (nn.BatchNorm2d, [c], {}, [images(d, c)]))(d.n()),
    "LayerNorm": lambda d: (lambda x: (nn.LayerNorm, [tuple(x.shape[-d.n(1, x.ndim) :])], {}, [x]))(
        d.x()
    ),
    "GroupNorm": lambda d: (nn.GroupNorm, [2, 4], {}, [images(d, 4)]),
    "Dropout": activation(nn.Dropout, 0.5),
    "Dropout2d": lambda d: (nn.Dropout2d, [0.5], {}, [images(d)]),
    "Embedding": lambda d: (lambda n, e: (nn.Embedding, [n, e], {}, [d.ints(n, d.shape())]))(
        d.n(1, 30), d.n()
    ),
    "Flatten": lambda d: (nn.Flatten, [], {}, [d.x(d.shape(2, 4))]),
    "Unflatten": lambda d: (lambda n: (nn.Unflatten, [1, (n, 2)], {}, [d.x((3, 2 * n))]))(d.n()),
    "Identity": activation(nn.Identity),
    **{
        name: activation(getattr(nn, name))
        for name in _names("""
        ReLU ReLU6 LeakyReLU ELU SELU SiLU Mish Tanh Sigmoid GELU Softplus Hardtanh
        LogSigmoid""")
    },
    "PReLU": lambda d: (lambda c: (nn.PReLU, [c], {}, [d.x((2, c, 3))]))(d.n(1, 6)),
    "Softmax": lambda d: (nn.Softmax, [-1], {}, [d.x()]),
    "LogSoftmax": lambda d: (nn.LogSoftmax, [-1], {}, [d.x()]),
    "Threshold": activation(nn.Threshold, 1.0, 0.0),
    "Sequential": lambda d: (
        lambda i, h, o: (
            nn.Sequential,
            [nn.Linear(i, h), nn.Tanh(), nn.Linear(h, o)],
            {},
            [d.x((d.n(), i))],
        )
    )(d.n(), d.n(1, 8), d.n()),
    **{
        name: recurrent(getattr(nn, name), cell=True) for name in ("RNNCell", "LSTMCell", "GRUCell")
    },
    **{name: recurrent(getattr(nn, name), cell=False) for name in ("RNN", "LSTM", "GRU")},
    "MultiheadAttention": lambda d: (
        lambda e, lq, s: (
            nn.MultiheadAttention,
            [2 * e, 2],
            {},
            [d.x((lq, 2, 2 * e)), d.x((s, 2, 2 * e)), d.x((s, 2, 2 * e))],
        )
    )(d.n(), d.n(), d.n()),
    "TransformerEncoderLayer": lambda d: (
        lambda e: (
            nn.TransformerEncoderLayer,
            [2 * e, 2],
            {"dim_feedforward": d.n(1, 16)},
            [d.x((d.n(), 2, 2 * e))],
        )
    )(d.n()),
    "TransformerEncoder": lambda d: (
        lambda e: (
            nn.TransformerEncoder,
            [nn.TransformerEncoderLayer(2 * e, 2, dim_feedforward=8), d.n(1, 3)],
            {"enable_nested_tensor": False},
            [d.x((d.n(), 2, 2 * e))],
        )
    )(d.n()),
    "Upsample": lambda d: (
        nn.Upsample,
        [],
        d.pick([{"scale_factor": d.n(1, 3)}, {"size": (d.n(1, 12), d.n(1, 12))}]),
        [images(d)],
    ),
    **{
        name: loss(getattr(nn, name), FUNCTIONAL_CASES[fname])
        for name, fname in (
            ("MSELoss", "mse_loss"),
            ("L1Loss", "l1_loss"),
            ("SmoothL1Loss", "smooth_l1_loss"),
            ("HuberLoss", "huber_loss"),
            ("CrossEntropyLoss", "cross_entropy"),
            ("NLLLoss", "nll_loss"),
            ("BCELoss", "binary_cross_entropy"),
            ("BCEWithLogitsLoss", "binary_cross_entropy_with_logits"),
            ("KLDivLoss", "kl_div"),
        )
    },
    "CosineSimilarity": lambda d: (
        nn.CosineSimilarity,
        [],
        {},
        FUNCTIONAL_CASES["cosine_similarity"](d)[0],
    ),
}


# ---------------------------------------------------------------- numpy


def as_numpy(builder: Builder) -> Builder:
    """A torch case's arguments as numpy's: each tensor an array."""

    def convert(v: Any) -> Any:
        if isinstance(v, torch.Tensor):
            return v.numpy().astype(np.float64) if v.is_floating_point() else v.numpy()
        if isinstance(v, list):
            return [convert(x) for x in v]
        return v

    def build(d: Draw) -> tuple[list[Any], dict]:
        args, kwargs = builder(d)
        return [convert(a) for a in args], {k: convert(v) for k, v in kwargs.items()}

    return build


def np_reduction(d: Draw) -> tuple[list[Any], dict]:
    a = d.a()
    if d.data.draw(st.booleans()):
        return [a], {}
    return [a], {"axis": d.dim(a), "keepdims": d.data.draw(st.booleans())}


NUMPY_CASES: dict[str, Builder] = {
    **dict.fromkeys(
        _names("""
        exp log sqrt tanh sin cos abs isnan isinf round floor ceil sign square negative
        reciprocal exp2 expm1 log1p log2 log10 sinh cosh arctan absolute sort argsort unique
        count_nonzero nonzero flatnonzero squeeze zeros_like ones_like empty_like"""),
        lambda d: ([d.a()], {}),
    ),
    **dict.fromkeys(_names("arcsin arccos"), lambda d: ([d.a() - 1.0], {})),
    **dict.fromkeys(
        _names("""
        maximum minimum power isclose multiply add subtract divide true_divide arctan2"""),
        as_numpy(binary),
    ),
    **dict.fromkeys(_names("sum mean std var max min prod median argmax argmin"), np_reduction),
    **dict.fromkeys(
        _names("cumsum cumprod diff"), lambda d: (lambda a: ([a], {"axis": d.dim(a)}))(d.a())
    ),
    **dict.fromkeys(_names("concatenate stack vstack hstack"), as_numpy(joins)),
    **dict.fromkeys(_names("zeros ones empty"), lambda d: ([d.shape()], {})),
    "dot": as_numpy(TORCH_CASES["mm"]),
    "matmul": as_numpy(matmul),
    "outer": as_numpy(vectors),
    "where": as_numpy(lambda d: (lambda a, b: ([a > 1.0, a, b], {}))(*d.pair())),
    "clip": lambda d: ([d.a(), 0.6, 1.2], {}),
    "array": lambda d: ([torch.rand(d.shape()).tolist()], {}),
    "asarray": lambda d: ([torch.rand(d.shape()).tolist()], {}),
    "full": lambda d: ([d.shape(), 0.5], {}),
    "full_like": lambda d: ([d.a(), 0.5], {}),
    "arange": lambda d: ([0.5 * d.n(0, 10), d.n(10, 40), d.pick([1, 0.5, 3])], {}),
    "linspace": lambda d: d.pick(
        [([0.0, 1.0, d.n(1, 400)], {}), ([0.0, 1.0], {"num": d.n(1, 400)}), ([0.0, 1.0], {})]
    ),
    "eye": lambda d: ([d.n(1, 8)], d.pick([{}, {"M": d.n(1, 8)}])),
    "transpose": lambda d: ([d.a()], {}),
    "reshape": lambda d: ([d.a(), -1], {}),
    "diag": lambda d: ([d.a(d.shape(1, 2))], {"k": d.n(-2, 2)}),
    "meshgrid": lambda d: ([d.a((d.n(),)), d.a((d.n(),)), d.a((d.n(),))], {}),
    "percentile": lambda d: ([d.a(), d.a((d.n(),)) * 40], d.pick([{}, {"axis": 0}])),
    "quantile": lambda d: ([d.a(), d.a((d.n(),)) / 2], d.pick([{}, {"axis": 0}])),
    "expand_dims": lambda d: ([d.a(), 0], {}),
    "swapaxes": lambda d: (lambda a: ([a, 0, a.ndim - 1], {}))(d.a()),
    "flip": lambda d: ([d.a()], {}),
    "roll": lambda d: ([d.a(), d.n()], {}),
    "allclose": as_numpy(binary),
}

NUMPY_RANDOM_CASES: dict[str, Builder] = {
    "rand": lambda d: (list(d.shape()), {}),
    "randn": lambda d: (list(d.shape()), {}),
    "randint": lambda d: ([0, d.n(1, 20)], {"size": d.shape()}),
    "normal": lambda d: ([0.0, 1.0, d.shape()], {}),
    "uniform": lambda d: d.pick([([0.0, 1.0, d.shape()], {}), ([], {"size": d.shape()})]),
    "choice": lambda d: d.pick(
        [([d.n(1, 20), d.shape()], {}), ([d.a((d.n(1, 20),))], {"size": d.n(1, 40)})]
    ),
    "permutation": lambda d: d.pick([([d.n(1, 40)], {}), ([d.a()], {})]),
    "shuffle": lambda d: ([d.a()], {}),
}

#: ``np.random.default_rng()``'s methods.
RNG_CASES: dict[str, Builder] = {
    "random": lambda d: d.pick([([d.shape()], {}), ([], {"size": d.n(1, 40)})]),
    "standard_normal": lambda d: d.pick([([d.shape()], {}), ([], {"size": d.n(1, 40)})]),
    "normal": lambda d: d.pick([([0.0, 1.0, d.shape()], {}), ([0.0, 1.0], {"size": d.shape()})]),
    "uniform": lambda d: ([0.0, 1.0], {"size": d.shape()}),
    "integers": lambda d: d.pick([([0, 10, d.shape()], {}), ([d.n(1, 40)], {"size": d.n(1, 40)})]),
    "choice": NUMPY_RANDOM_CASES["choice"],
    "permutation": NUMPY_RANDOM_CASES["permutation"],
    "shuffle": NUMPY_RANDOM_CASES["shuffle"],
}

NDARRAY_CASES: dict[str, Builder] = {
    **dict.fromkeys(_names("sum mean max min std var argmax argmin prod"), np_reduction),
    **dict.fromkeys(
        _names("copy flatten transpose round squeeze tolist any all"),
        lambda d: ([d.a((1,) * d.n(0, 2)) if d.data.draw(st.booleans()) else d.a()], {}),
    ),
    "item": lambda d: ([d.a((1,) * d.n(0, 2))], {}),
    "reshape": lambda d: ([d.a(), -1], {}),
    "astype": lambda d: ([d.a(), np.float32], {}),
    "dot": as_numpy(TORCH_CASES["mm"]),
    "clip": lambda d: ([d.a(), 0.6, 1.2], {}),
    "cumsum": lambda d: (lambda a: ([a], {"axis": d.dim(a)}))(d.a()),
}

LINALG_CASES: dict[str, Builder] = {
    **dict.fromkeys(_names("inv det svd qr eigh"), matrix),
    "norm": lambda d: ([d.x()], {}),
    "vector_norm": reduction,
    "matrix_norm": matrix,
    "solve": lambda d: (lambda a: ([a, d.x((*a.shape[:-1], d.n()))], {}))(matrix(d)[0][0]),
    "cross": lambda d: (lambda a: ([a, d.x(tuple(a.shape))], {}))(d.x((d.n(), 3))),
}

NUMPY_LINALG_CASES: dict[str, Builder] = {
    name: as_numpy(LINALG_CASES[name]) for name in ("norm", "inv", "det", "solve")
}

NN_INIT_CASES: dict[str, Builder] = {
    **dict.fromkeys(
        _names("""
        xavier_uniform_ xavier_normal_ kaiming_uniform_ kaiming_normal_ zeros_ ones_ normal_
        uniform_ orthogonal_ eye_"""),
        lambda d: ([d.x((d.n(), d.n()))], {}),
    ),
    "constant_": lambda d: ([d.x(), 0.5], {}),
    "calculate_gain": lambda d: ([d.pick(["relu", "tanh", "linear"])], {}),
}


def parameters(d: Draw) -> list[nn.Parameter]:
    """Parameters with gradients, as after a backward pass."""
    ps = [nn.Parameter(d.x()) for _ in range(d.n(1, 4))]
    for p in ps:
        p.grad = torch.rand_like(p)
    return ps


NN_UTILS_CASES: dict[str, Builder] = {
    "clip_grad_norm_": lambda d: ([parameters(d), 1.0], {}),
    "clip_grad_value_": lambda d: ([parameters(d), 1.0], {}),
    "parameters_to_vector": lambda d: ([parameters(d)], {}),
    "vector_to_parameters": lambda d: (
        lambda ps: ([torch.cat([p.detach().reshape(-1) for p in ps]), ps], {})
    )(parameters(d)),
}

AUTOGRAD_FUNCTIONAL_CASES: dict[str, Builder] = {
    **dict.fromkeys(_names("jacobian hessian"), lambda d: ([lambda x: (x**2).sum(), d.x()], {})),
    **dict.fromkeys(
        _names("vjp jvp"),
        lambda d: (lambda x: ([lambda x: (x**3).sum() * x, x, torch.ones_like(x)], {}))(d.x()),
    ),
    **dict.fromkeys(
        _names("vhp hvp"),
        lambda d: (lambda x: ([lambda x: (x**3).sum(), x, torch.ones_like(x)], {}))(d.x()),
    ),
}

#: The string methods: the object, and the arguments.
STR_CASES: dict[str, Callable[[Draw], tuple[str, list[Any]]]] = {
    **dict.fromkeys(
        _names("""
        upper lower title capitalize strip lstrip rstrip split rsplit splitlines isdigit isalpha
        """),
        lambda d: (d.pick(["ab ß", " x\ny ", "ﬁ straße", "ǰ"]) * d.n(1, 4), []),
    ),
    **dict.fromkeys(
        _names("startswith endswith find count"),
        lambda d: ("abcab" * d.n(1, 3), [d.pick(["a", "ab", "", "z"])]),
    ),
    **dict.fromkeys(_names("center ljust rjust"), lambda d: ("ab" * d.n(1, 3), [d.n(0, 40)])),
    "zfill": lambda d: ("-12" * d.n(1, 2), [d.n(0, 40)]),
    "replace": lambda d: (
        "abab" * d.n(1, 3),
        [
            d.pick(["a", "ab", "", "b"]),
            d.pick(["", "xyz", "q" * 9]),
            *d.pick([[], [d.n(0, 3)], [-1]]),
        ],
    ),
    "join": lambda d: (
        d.pick(["", ", ", "--"]),
        [[d.pick(["a", "bc", ""]) * d.n(0, 3) for _ in range(d.n(0, 6))]],
    ),
}


# ---------------------------------------------------------------- what makes no data

#: Allow-list entries no case here calls, each with why: they read a fact, switch a mode,
#: name a type or a constant, open a namespace, or hold references the program made
#: (their work is priced where it happens: a batch of a DataLoader is indexing).
NOT_PRICED: dict[str, dict[str, str]] = {
    "torch": {
        **dict.fromkeys(
            _names("""
            float16 float32 float64 bfloat16 half float double int8 int16 int32 int64 uint8
            long int bool complex64 cfloat Size device dtype"""),
            "a type",
        ),
        **dict.fromkeys(_names("pi e inf nan"), "a constant"),
        **dict.fromkeys(_names("nn autograd optim linalg cuda utils backends"), "a namespace"),
        **dict.fromkeys(
            _names("""
            manual_seed seed no_grad enable_grad inference_mode set_grad_enabled
            is_grad_enabled set_default_dtype get_default_dtype set_default_device
            get_default_device Generator"""),
            "a mode or a seed",
        ),
        "set_printoptions": "a mode (printing is priced by max_stdout_bytes)",
        "broadcast_shapes": "sizes in, a size out",
    },
    "Tensor": {
        **dict.fromkeys(
            _names("""
            grad requires_grad is_leaf grad_fn data retains_grad shape ndim dtype device
            is_cuda T mT H"""),
            "an attribute read (a view at most)",
        ),
        "backward": "a backward pass: priced by the graph it walks (test_attacks)",
        "register_hook": "keeps the program's function",
        "cuda": "a copy on the GPU, priced as the tensor (tests/test_gpu.py)",
    },
    "nn": {
        **dict.fromkeys(
            _names("ModuleList ModuleDict ParameterList Module"),
            "a container of the program's own layers",
        ),
        "Parameter": "wraps a tensor the program made",
        **dict.fromkeys(_names("functional init utils"), "a namespace"),
    },
    "numpy": {
        **dict.fromkeys(_names("float32 float64 int32 int64"), "a type"),
        **dict.fromkeys(_names("pi e inf nan newaxis"), "a constant"),
        **dict.fromkeys(_names("random linalg"), "a namespace"),
    },
    "numpy.random": {"seed": "a seed", "default_rng": "a generator (its calls: RNG_CASES)"},
    "ndarray": dict.fromkeys(_names("shape dtype ndim size T"), "an attribute read"),
    "str": {"format": "priced field by field as it is formatted (test_format_fields)"},
    "torch.autograd": {
        **dict.fromkeys(_names("grad backward"), "a backward pass: priced by the graph"),
        **dict.fromkeys(_names("Function function functional"), "a class or a namespace"),
        **dict.fromkeys(_names("detect_anomaly set_detect_anomaly"), "a mode"),
        "Variable": "returns the tensor it is given",
    },
}

#: (allow-list, cases, what is not priced) for each namespace.
TABLES: dict[str, tuple[frozenset[str], set[str]]] = {
    "torch": (allowlist.TORCH, set(TORCH_CASES)),
    "Tensor": (
        allowlist.TENSOR_ATTRS,
        set(METHOD_ONLY) | (set(TORCH_CASES) & allowlist.TENSOR_ATTRS),
    ),
    "torch.nn.functional": (allowlist.FUNCTIONAL, set(FUNCTIONAL_CASES)),
    "nn": (allowlist.NN, set(NN_CASES)),
    "torch.linalg": (allowlist.LINALG, set(LINALG_CASES)),
    "torch.nn.init": (allowlist.NN_INIT, set(NN_INIT_CASES)),
    "torch.nn.utils": (allowlist.NN_UTILS, set(NN_UTILS_CASES)),
    "torch.autograd": (allowlist.AUTOGRAD, {"gradcheck", "gradgradcheck"}),
    "torch.autograd.functional": (allowlist.AUTOGRAD_FUNCTIONAL, set(AUTOGRAD_FUNCTIONAL_CASES)),
    "numpy": (allowlist.NUMPY, set(NUMPY_CASES) | {"mgrid"}),
    "numpy.random": (allowlist.NUMPY_RANDOM, set(NUMPY_RANDOM_CASES)),
    "numpy.linalg": (allowlist.NUMPY_LINALG, set(NUMPY_LINALG_CASES)),
    "rng": (allowlist.RNG_ATTRS, set(RNG_CASES)),
    "ndarray": (allowlist.NDARRAY_ATTRS, set(NDARRAY_CASES)),
    "str": (allowlist.STR_ATTRS, set(STR_CASES)),
}


@pytest.mark.parametrize("namespace", sorted(TABLES))
def test_every_entry_of_the_allow_list_is_priced_here_or_says_why_not(namespace: str) -> None:
    allowed, cases = TABLES[namespace]
    reasons = NOT_PRICED.get(namespace, {})
    assert allowed - cases - set(reasons) == set(), "entries with neither a case nor a reason"
    assert (cases | set(reasons)) - allowed == set(), "cases for names not on the allow-list"
    assert not cases & set(reasons), "an entry both priced and said to make no data"


# ---------------------------------------------------------------- the checks


def made(result: Any) -> int:
    """Elements a call made: its largest array, or the Python values of a list it built."""
    if isinstance(result, torch.Tensor):
        return result.numel()
    if isinstance(result, np.ndarray):
        return result.size
    if isinstance(result, tuple):  # results side by side (values, indices), or a size
        return max(map(made, result), default=0)
    if isinstance(result, list):  # tolist(): every number
        return sum(max(made(r), 1) for r in result)
    return 0


def priced_at_least_as_made(op: str, call: Call) -> None:
    """The gate's price of ``call`` is never below what it really made and did."""
    n, flops = GATE.price(op, call.target, call.args, call.kwargs, call.module or call.fn)
    with warnings.catch_warnings(), FlopCounterMode(display=False) as counter:
        warnings.simplefilter("ignore")  # (the std of one element: a warning and nan)
        result = call.fn(*call.args, **call.kwargs)
    truth, work = made(result), counter.get_total_flops()
    shapes = [getattr(a, "shape", a) for a in (call.target, *call.args)]
    assert n >= truth, f"{op}{shapes}: priced {n:,} elements, made {truth:,}"
    assert flops >= work, f"{op}{shapes}: priced {flops:.3g} operations, did {work:.3g}"


EACH = settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.differing_executors],
)


@pytest.mark.parametrize("name", sorted(TORCH_CASES))
@EACH
@given(data=st.data())
def test_each_torch_function(name: str, data: Any) -> None:
    d = Draw(data)
    args, kwargs = TORCH_CASES[name](d)
    priced_at_least_as_made(name, Call(getattr(torch, name), args, kwargs))


@pytest.mark.parametrize("name", sorted(TABLES["Tensor"][1] - {"cuda"}))
@EACH
@given(data=st.data())
def test_each_tensor_method(name: str, data: Any) -> None:
    d = Draw(data)
    args, kwargs = (METHOD_ONLY.get(name) or TORCH_CASES[name])(d)
    x = args[0]
    priced_at_least_as_made(name, Call(getattr(x, name), args[1:], kwargs, target=x))


@pytest.mark.parametrize("name", sorted(FUNCTIONAL_CASES))
@EACH
@given(data=st.data())
def test_each_functional(name: str, data: Any) -> None:
    args, kwargs = FUNCTIONAL_CASES[name](Draw(data))
    priced_at_least_as_made(name, Call(getattr(F, name), args, kwargs))


@pytest.mark.parametrize("name", sorted(set(NN_CASES) - {"Sequential"}))
@EACH
@given(data=st.data())
def test_each_layer_is_priced_when_made_and_when_called(name: str, data: Any) -> None:
    cls, args, kwargs, inputs = NN_CASES[name](Draw(data))
    layer = cls(*args, **kwargs)
    real = sum(p.numel() for p in (*layer.parameters(), *layer.buffers()))
    assert layer_parameters(cls, args, kwargs) >= real, (name, args, kwargs, real)
    priced_at_least_as_made(name, Call(layer, inputs, module=layer))


@EACH
@given(data=st.data())
def test_a_sequential_prices_each_layer_on_its_real_input_before_it_runs(data: Any) -> None:
    """nn.Sequential calls its layers itself, out of the interpreter's sight: each is
    priced as it is called (the recorder's pre-hook), so a limit one element under the
    widest layer's result stops the call there, and the operations priced are never
    below PyTorch's count."""
    _, layers, _, (x,) = NN_CASES["Sequential"](Draw(data))
    with torch.no_grad():
        widest = max(
            t.numel() for t in itertools.accumulate(layers, lambda h, layer: layer(h), initial=x)
        )

    def gate(limit: int) -> Gate:
        return Gate(
            Settings(max_tensor_elements=limit),
            Recorder(100, 2),
            ProgramHooks(on_backward=lambda *a: None),
        )

    refusing = gate(widest - 1)  # (each gate's recorder hooks the net it is given: two nets)
    with pytest.raises(LimitExceeded, match="max_tensor_elements"):
        refusing.call(nn.Sequential(*copy.deepcopy(layers)), [x], {}, "Sequential")
    passing = gate(widest)
    with FlopCounterMode(display=False) as counter:
        passing.call(nn.Sequential(*layers), [x], {}, "Sequential")
    assert passing.flops >= counter.get_total_flops()


@pytest.mark.parametrize(
    ("namespace", "name"),
    [
        *(
            (ns, n)
            for ns, table in (
                ("torch.linalg", LINALG_CASES),
                ("torch.nn.init", NN_INIT_CASES),
                ("torch.nn.utils", NN_UTILS_CASES),
                ("torch.autograd.functional", AUTOGRAD_FUNCTIONAL_CASES),
            )
            for n in sorted(table)
        )
    ],
)
@EACH
@given(data=st.data())
def test_each_torch_namespace_call(namespace: str, name: str, data: Any) -> None:
    module, table = {
        "torch.linalg": (torch.linalg, LINALG_CASES),
        "torch.nn.init": (nn.init, NN_INIT_CASES),
        "torch.nn.utils": (nn.utils, NN_UTILS_CASES),
        "torch.autograd.functional": (torch.autograd.functional, AUTOGRAD_FUNCTIONAL_CASES),
    }[namespace]
    args, kwargs = table[name](Draw(data))
    priced_at_least_as_made(name, Call(getattr(module, name), args, kwargs))


@pytest.mark.parametrize("name", ["gradcheck", "gradgradcheck"])
@EACH
@given(data=st.data())
def test_gradient_checks_are_priced_as_jacobians(name: str, data: Any) -> None:
    x = Draw(data).x().double().requires_grad_()
    call = Call(getattr(torch.autograd, name), [torch.tanh, (x,)])
    n, _ = GATE.price(name, None, call.args, {}, call.fn)
    assert n >= x.numel() ** 2  # the dense Jacobian a check builds, numerically and by backward
    assert call.fn(*call.args)


@pytest.mark.parametrize(
    ("namespace", "name"),
    [
        *(("numpy", n) for n in sorted(NUMPY_CASES)),
        *(("numpy.random", n) for n in sorted(NUMPY_RANDOM_CASES)),
        *(("numpy.linalg", n) for n in sorted(NUMPY_LINALG_CASES)),
    ],
)
@EACH
@given(data=st.data())
def test_each_numpy_function(namespace: str, name: str, data: Any) -> None:
    module, table = {
        "numpy": (np, NUMPY_CASES),
        "numpy.random": (np.random, NUMPY_RANDOM_CASES),
        "numpy.linalg": (np.linalg, NUMPY_LINALG_CASES),
    }[namespace]
    args, kwargs = table[name](Draw(data))
    priced_at_least_as_made(name, Call(getattr(module, name), args, kwargs))


@EACH
@given(data=st.data())
def test_numpy_grids(data: Any) -> None:
    d = Draw(data)
    key = tuple(
        d.pick(
            [
                slice(0, d.n(1, 9)),
                slice(d.n(0, 3), 9, d.n(1, 3)),
                slice(0, 1, complex(0, d.n(1, 9))),
            ]
        )
        for _ in range(d.n(1, 3))
    )
    priced_at_least_as_made("mgrid", Call(operator.getitem, [np.mgrid, key], target=np.mgrid))


@pytest.mark.parametrize("name", sorted(RNG_CASES))
@EACH
@given(data=st.data())
def test_each_generator_method(name: str, data: Any) -> None:
    rng = np.random.default_rng(0)
    args, kwargs = RNG_CASES[name](Draw(data))
    priced_at_least_as_made(name, Call(getattr(rng, name), args, kwargs, target=rng))


@pytest.mark.parametrize("name", sorted(NDARRAY_CASES))
@EACH
@given(data=st.data())
def test_each_ndarray_method(name: str, data: Any) -> None:
    args, kwargs = NDARRAY_CASES[name](Draw(data))
    a = args[0]
    priced_at_least_as_made(name, Call(getattr(a, name), args[1:], kwargs, target=a))


@pytest.mark.parametrize("name", sorted(STR_CASES))
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_each_string_method(name: str, data: Any) -> None:
    s, args = STR_CASES[name](Draw(data))
    result = getattr(s, name)(*args)
    truth = (
        len(result)
        if isinstance(result, str)
        else sum(map(len, result))
        if isinstance(result, list)
        else 0
    )
    assert str_result_length(name, s, args, {}) >= truth, (name, s, args, result)


@settings(max_examples=300, deadline=None)
@given(
    value=st.one_of(
        st.text(max_size=20),
        st.integers(-(10**30), 10**30),
        st.floats(allow_nan=True, allow_infinity=True),
    ),
    fill=st.sampled_from(["", "<", ">", "^", "*^", "0="]),
    sign=st.sampled_from(["", "+", " "]),
    width=st.none() | st.integers(0, 400),
    precision=st.none() | st.integers(0, 400),
    kind=st.sampled_from(["", "s", "d", "f", "e", "g", "%", ",", "_d", "x", "b"]),
)
def test_format_fields(
    value: Any, fill: str, sign: str, width: int | None, precision: int | None, kind: str
) -> None:
    """A format field (``f"{x:>9.3f}"``, ``'{:,}'.format(n)``) is priced from its spec
    before it is made: never below the text Python makes."""

    spec = (
        f"{fill}{sign}{'' if width is None else width}"
        f"{'' if precision is None else f'.{precision}'}{kind}"
    )
    try:
        text = format(value, spec)
    except (ValueError, TypeError):
        return  # (a spec this value does not take: Python refuses it before making text)
    assert format_length(value, spec) >= len(text), (value, spec)
