"""The call gate's estimates of a result's size, against the real op, on shapes drawn by
hypothesis: never below the truth (a limit is checked before the work, so an estimate
under it would let a call past its limit), and at most twice it (an estimate far above
the truth refuses honest programs: (N, C) logits and (N,) labels used to count as N x N).
Families: elementwise with broadcasting, the matmul family, joins, indexing, factories,
expand and repeat, lookups, reductions, convolutions, pooling and losses; numpy's calls;
and library layers' operations against PyTorch's own FLOP counter.
"""

from __future__ import annotations

import operator
import warnings
from collections.abc import Callable
from typing import Any

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from chainlens.language import estimates
from chainlens.language.gate import Gate
from chainlens.language.hooks import ProgramHooks
from chainlens.settings import Settings
from chainlens.tracing.recorder import Recorder

GATE = Gate(Settings(), Recorder(100, 2), ProgramHooks(on_backward=lambda *a: None))
DIM = st.integers(1, 6)


def shape(min_dims: int = 0, max_dims: int = 3) -> st.SearchStrategy[tuple[int, ...]]:
    return st.lists(DIM, min_size=min_dims, max_size=max_dims).map(tuple)


@st.composite
def broadcastable(draw: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Two shapes that broadcast: the second a suffix of the first, some sizes set to 1."""
    a = draw(shape(1, 4))
    k = draw(st.integers(0, len(a)))
    b = tuple(1 if draw(st.booleans()) else d for d in a[len(a) - k :])
    return (a, b) if draw(st.booleans()) else (b, a)


def numel(result: Any) -> int:
    if isinstance(result, torch.Tensor):
        return result.numel()
    return max((r.numel() for r in result if isinstance(r, torch.Tensor)), default=0)


def check(
    op: str,
    fn: Callable[..., Any],
    args: list[Any],
    target: Any = None,
    kwargs: dict | None = None,
    tight: bool = True,
) -> None:
    kwargs = kwargs or {}
    estimate, _ = estimates.estimate(op, target, args, kwargs)
    with warnings.catch_warnings():  # (std of one element: torch warns, and gives nan)
        warnings.simplefilter("ignore")
        truth = numel(fn(*args, **kwargs))
    assert estimate >= truth, (op, [getattr(a, "shape", a) for a in args], estimate, truth)
    if tight:
        assert estimate <= max(2 * truth, 1), (
            op,
            [getattr(a, "shape", a) for a in args],
            estimate,
            truth,
        )


@settings(max_examples=300, deadline=None)
@given(
    shapes=broadcastable(),
    op=st.sampled_from(
        ["add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq", "lt", "atan2", "fmax"]
    ),
)
def test_elementwise_broadcasts(shapes: tuple, op: str) -> None:
    a, b = (torch.rand(s) + 0.5 for s in shapes)
    check(op, getattr(torch, op), [a, b])


@settings(max_examples=150, deadline=None)
@given(shapes=broadcastable())
def test_where(shapes: tuple) -> None:
    a, b = (torch.rand(s) for s in shapes)
    check("where", torch.where, [a > 0.5, a, b])


@settings(max_examples=200, deadline=None)
@given(b=shape(0, 2), m=DIM, k=DIM, n=DIM)
def test_matmul_family(b: tuple, m: int, k: int, n: int) -> None:
    x, y = torch.rand(*b, m, k), torch.rand(k, n)
    check("matmul", torch.matmul, [x, y])
    check("mm", torch.mm, [torch.rand(m, k), y])
    check("mv", torch.mv, [torch.rand(m, k), torch.rand(k)])
    check("outer", torch.outer, [torch.rand(m), torch.rand(n)])
    check("bmm", torch.bmm, [torch.rand(2, m, k), torch.rand(2, k, n)])
    check("linear", torch.nn.functional.linear, [x, torch.rand(n, k)])


@settings(max_examples=150, deadline=None)
@given(s=shape(1, 3), count=st.integers(1, 5), op=st.sampled_from(["cat", "stack"]))
def test_joins(s: tuple, count: int, op: str) -> None:
    check(op, getattr(torch, op), [[torch.rand(s) for _ in range(count)]])


@settings(max_examples=300, deadline=None)
@given(s=shape(2, 3), data=st.data())
def test_indexing(s: tuple, data: Any) -> None:
    x = torch.rand(s)
    key = data.draw(
        st.one_of(
            st.integers(0, s[0] - 1),
            st.builds(
                slice,
                st.none() | st.integers(0, s[0]),
                st.none() | st.integers(0, s[0]),
                st.none() | st.integers(1, 3),
            ),
            st.lists(st.integers(0, s[0] - 1), min_size=1, max_size=8).map(torch.tensor),
            st.tuples(st.integers(0, s[0] - 1), st.integers(0, s[1] - 1)),
            st.tuples(
                st.lists(st.integers(0, s[0] - 1), min_size=1, max_size=5).map(torch.tensor),
                st.lists(st.integers(0, s[1] - 1), min_size=1, max_size=1).map(torch.tensor),
            ),
            st.just((Ellipsis, 0)),
            st.just((slice(None), None)),
        )
    )
    check("getitem", operator.getitem, [x, key])


@settings(max_examples=100, deadline=None)
@given(s=shape(1, 3), fill=st.floats(-2, 2))
def test_factories(s: tuple, fill: float) -> None:
    for op in ("zeros", "ones", "randn", "rand", "empty"):
        check(op, getattr(torch, op), list(s))
    check("full", torch.full, [s, fill])
    check("eye", torch.eye, [s[0]])
    check("arange", torch.arange, [s[0] * 3])
    check("linspace", torch.linspace, [0.0, 1.0, s[0] * 5])


@settings(max_examples=100, deadline=None)
@given(s=shape(1, 3), reps=st.lists(st.integers(1, 3), min_size=3, max_size=3))
def test_expand_and_repeat(s: tuple, reps: list[int]) -> None:
    x = torch.rand(s)
    target_shape = [r * d for r, d in zip(reps, (1,) * (3 - len(s)) + s, strict=True)]
    ones = torch.rand((1,) * len(s))
    check("expand", ones.expand, target_shape[-len(s) :], target=ones)
    check("repeat", x.repeat, reps, target=x)


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 64), c=st.integers(2, 30))
def test_labels_beside_logits_are_not_n_by_n(n: int, c: int) -> None:
    """What used to be estimated as N x N: never below the truth, never above the input."""
    logits, labels = torch.rand(n, c), torch.randint(0, c, (n,))
    estimate, work = estimates.estimate("cross_entropy", None, [logits, labels], {})
    assert estimate == 1 and work == n * c
    check("getitem", operator.getitem, [logits, (torch.arange(n), labels)])


@settings(max_examples=150, deadline=None)
@given(s=shape(1, 3), rows=st.integers(1, 40), width=DIM, data=st.data())
def test_lookups(s: tuple, rows: int, width: int, data: Any) -> None:
    """Results shaped by an index can be far larger than every operand."""
    weight = torch.rand(7, width)
    index = torch.randint(0, 7, s)
    check("embedding", torch.nn.functional.embedding, [index, weight])
    x = torch.rand(s)
    dim = data.draw(st.integers(0, len(s) - 1))
    picks = torch.randint(0, s[dim], (rows,))
    check("index_select", torch.index_select, [x, dim, picks])
    gather_index = torch.randint(0, s[dim], tuple(rows if i == dim else d for i, d in enumerate(s)))
    check("gather", torch.gather, [x, dim, gather_index])
    check("take", torch.take, [x, torch.randint(0, x.numel(), (rows,))])


def test_an_embedding_module_counts_its_rows() -> None:
    emb = torch.nn.Embedding(27, 10)
    index = torch.randint(0, 27, (32, 3))
    estimate, _ = estimates.estimate("Embedding", None, [index], {}, emb)
    assert estimate == emb(index).numel() == 960


@settings(max_examples=300, deadline=None)
@given(
    s=shape(1, 4),
    data=st.data(),
    op=st.sampled_from(
        [
            "sum",
            "mean",
            "prod",
            "amax",
            "amin",
            "argmax",
            "std",
            "var",
            "logsumexp",
            "max",
            "min",
            "median",
            "all",
            "any",
            "norm",
        ]
    ),
)
def test_reductions(s: tuple, data: Any, op: str) -> None:
    x = torch.rand(s) + 0.1
    if op in ("all", "any"):
        x = x > 0.5
    keep = data.draw(st.booleans())
    dim = data.draw(st.none() | st.integers(-len(s), len(s) - 1))
    method = getattr(x, op)
    if op == "norm":
        kwargs = {} if dim is None else {"dim": dim, "keepdim": keep}
        check(op, method, [2], target=x, kwargs=kwargs)
    elif dim is None:
        if op != "logsumexp":  # (it needs a dim)
            check(op, method, [], target=x)
    else:
        check(op, method, [dim], target=x, kwargs={"keepdim": keep})


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(1, 2),
    cin=st.integers(1, 3),
    cout=st.integers(1, 4),
    size=st.integers(5, 12),
    k=st.integers(1, 3),
    stride=st.integers(1, 3),
    pad=st.integers(0, 1),
    dil=st.integers(1, 2),
    transposed=st.booleans(),
)
def test_convolutions(
    n: int,
    cin: int,
    cout: int,
    size: int,
    k: int,
    stride: int,
    pad: int,
    dil: int,
    transposed: bool,
) -> None:
    x = torch.rand(n, cin, size, size)
    if transposed:
        layer = torch.nn.ConvTranspose2d(cin, cout, k, stride=stride, padding=pad, dilation=dil)
        estimate, _ = estimates.estimate("ConvTranspose2d", None, [x], {}, layer)
        assert estimate == layer(x).numel()
        return
    layer = torch.nn.Conv2d(cin, cout, k, stride=stride, padding=pad, dilation=dil)
    estimate, _ = estimates.estimate("Conv2d", None, [x], {}, layer)
    assert estimate == layer(x).numel()
    check("conv2d", torch.nn.functional.conv2d, [x, layer.weight, None, stride, pad, dil])
    check(
        "conv1d",
        torch.nn.functional.conv1d,
        [x[:, :, 0], layer.weight[..., 0]],
        kwargs={"stride": stride, "padding": pad},
    )


@settings(max_examples=200, deadline=None)
@given(
    size=st.integers(4, 12),
    k=st.integers(1, 3),
    stride=st.none() | st.integers(1, 3),
    pad=st.integers(0, 1),
    ceil=st.booleans(),
    out=st.integers(1, 4),
)
def test_pooling(size: int, k: int, stride: int | None, pad: int, ceil: bool, out: int) -> None:
    x = torch.rand(2, 3, size, size)
    pad = min(pad, k // 2)
    for name, layer in (
        ("MaxPool2d", torch.nn.MaxPool2d(k, stride, pad, ceil_mode=ceil)),
        ("AvgPool2d", torch.nn.AvgPool2d(k, stride, pad, ceil_mode=ceil)),
        ("AdaptiveAvgPool2d", torch.nn.AdaptiveAvgPool2d(out)),
    ):
        estimate, _ = estimates.estimate(name, None, [x], {}, layer)
        assert estimate == layer(x).numel(), name
    check("max_pool2d", torch.nn.functional.max_pool2d, [x, k, stride, pad])
    check("avg_pool2d", torch.nn.functional.avg_pool2d, [x, k, stride, pad])


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 8), c=st.integers(2, 6), reduction=st.sampled_from(["mean", "sum", "none"]))
def test_losses(n: int, c: int, reduction: str) -> None:
    logits, labels, target = torch.rand(n, c), torch.randint(0, c, (n,)), torch.rand(n, c)
    check(
        "cross_entropy",
        torch.nn.functional.cross_entropy,
        [logits, labels],
        kwargs={"reduction": reduction},
    )
    check(
        "mse_loss", torch.nn.functional.mse_loss, [logits, target], kwargs={"reduction": reduction}
    )
    module = torch.nn.MSELoss(reduction=reduction)
    estimate, _ = estimates.estimate("MSELoss", None, [logits, target], {}, module)
    assert estimate == module(logits, target).numel()


@settings(max_examples=200, deadline=None)
@given(s=shape(1, 2), data=st.data())
def test_ops_that_grow_past_their_operands(s: tuple, data: Any) -> None:
    """Results that can dwarf every operand: a diagonal matrix, repeats, padding,
    one-hot codes, samples, grids, pairwise distances, an einsum's output."""
    x = torch.rand(s)
    r = data.draw(st.integers(1, 4))
    check("diag", torch.diag, [x])
    check("diag_embed", torch.diag_embed, [x])
    check("repeat_interleave", torch.repeat_interleave, [x, r])
    check(
        "repeat_interleave",
        x.repeat_interleave,
        [torch.randint(0, 4, (s[0],))],
        target=x,
        kwargs={"dim": 0},
    )
    check("tile", torch.tile, [x, (r, 2)])
    check("pad", torch.nn.functional.pad, [x, (r, 1)])
    labels = torch.randint(0, 5, s)
    check("one_hot", torch.nn.functional.one_hot, [labels])
    check("one_hot", torch.nn.functional.one_hot, [labels, 7])
    check("multinomial", torch.multinomial, [torch.rand(s) + 0.1, r], kwargs={"replacement": True})
    check("randperm", torch.randperm, [s[0] * 5])
    a, b = torch.rand(s[0]), torch.rand(r + 1)
    check("meshgrid", torch.meshgrid, [a, b], kwargs={"indexing": "ij"})
    check("cdist", torch.cdist, [torch.rand(s[0], 3), torch.rand(r, 3)])
    check("einsum", torch.einsum, ["i,j->ij", a, b])
    check("einsum", torch.einsum, ["ij,jk", torch.rand(s[0], 3), torch.rand(3, r)])
    check("randint", torch.randint, [0, 10, (s[0], r)])
    check("nonzero", torch.nonzero, [x + 1])
    check("topk", x.topk, [min(r, s[-1])], target=x)
    check("normal", torch.normal, [0.0, 1.0, (s[0], r)])


def module_cases(draw: Any) -> tuple[torch.nn.Module, torch.Tensor]:
    """A library layer and an input for it, of drawn sizes."""
    kind = draw(
        st.sampled_from(
            ["Linear", "Bilinear", "Conv1d", "Conv2d", "RNN", "LSTM", "GRU", "MultiheadAttention"]
        )
    )
    n, a, b, t = (draw(st.integers(1, 6)) for _ in range(4))
    f = draw(st.integers(2, 12))
    if kind == "Linear":
        return torch.nn.Linear(f, a * 3), torch.ones(n, t, f)
    if kind == "Bilinear":
        return torch.nn.Bilinear(f, f, a), torch.ones(n, f)
    if kind == "Conv1d":
        return torch.nn.Conv1d(a, b, min(3, f)), torch.ones(n, a, f)
    if kind == "Conv2d":
        return torch.nn.Conv2d(a, b, min(3, f), padding=draw(st.integers(0, 2))), torch.ones(
            n, a, f, f
        )
    if kind in ("RNN", "LSTM", "GRU"):
        return getattr(torch.nn, kind)(f, a * 2, num_layers=draw(st.integers(1, 2))), torch.ones(
            t, n, f
        )
    return torch.nn.MultiheadAttention(2 * a, 2), torch.ones(t, n, 2 * a)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_a_library_layers_work_is_priced_from_its_parameters(data: Any) -> None:
    """A module call's operations as the gate prices them (the larger of its family's
    estimate and its parameters' use) against what PyTorch's FLOP counter counts: never
    below (300 calls of a Linear were 12x max_flops when priced from the input alone)."""
    from torch.utils.flop_counter import FlopCounterMode

    module, x = module_cases(data.draw)
    args = (
        [x, x]
        if isinstance(module, torch.nn.Bilinear)
        else [x, x, x]
        if isinstance(module, torch.nn.MultiheadAttention)
        else [x]
    )
    op = type(module).__name__
    _, priced = GATE.price(op, None, args, {}, module)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(*args)
    truth = counter.get_total_flops()
    assert priced >= truth, (op, tuple(x.shape), priced, truth)


@settings(max_examples=200, deadline=None)
@given(
    shapes=broadcastable(),
    m=DIM,
    k=DIM,
    n=DIM,
    count=st.integers(1, 4),
    op=st.sampled_from(
        [
            "add",
            "mul",
            "matmul",
            "dot",
            "outer",
            "concatenate",
            "stack",
            "ones",
            "zeros",
            "eye",
            "arange",
            "linspace",
        ]
    ),
)
def test_numpy_calls_are_priced_as_their_torch_twins(
    shapes: tuple, m: int, k: int, n: int, count: int, op: str
) -> None:
    """numpy's calls the language allows, on drawn shapes: the estimate is never below the
    array numpy makes."""
    import numpy as np

    a, b = (np.ones(s) for s in shapes)
    cases: dict[str, tuple[Callable[..., Any], list[Any]]] = {
        "add": (np.add, [a, b]),
        "mul": (np.multiply, [a, b]),
        "matmul": (np.matmul, [np.ones((m, k)), np.ones((k, n))]),
        "dot": (np.dot, [np.ones((m, k)), np.ones((k, n))]),
        "outer": (np.outer, [np.ones(m * k), np.ones(n * count)]),
        "concatenate": (lambda *xs: np.concatenate(xs), [np.ones((m, k))] * count),
        "stack": (lambda *xs: np.stack(xs), [np.ones((m, k))] * count),
        "ones": (np.ones, [(m, k, n)]),
        "zeros": (np.zeros, [(m, n)]),
        "eye": (np.eye, [m * n]),
        "arange": (np.arange, [m * k * n]),
        "linspace": (np.linspace, [0, 1, m * n]),
    }
    fn, args = cases[op]
    estimate, _ = estimates.estimate(
        op, None, [list(args)] if op in ("concatenate", "stack") else args, {}
    )
    truth = np.asarray(fn(*args)).size
    assert estimate >= truth, (op, estimate, truth)
