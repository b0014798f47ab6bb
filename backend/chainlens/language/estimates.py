"""What a call would make and do, before it is made: the elements of its result and
its floating-point operations, from its operands' shapes and its settings.

One rule per family of ops, looked up by name in ``PRICE_RULES`` (never an order-dependent
chain of tests); any op without a rule is its operands broadcast together. The text a
call would make (string methods, ``%`` and format fields, a tensor's printout) and a
layer's parameters are priced here too. ``tests/test_estimates_allowlist.py`` holds every
rule to the real call: never below what it makes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeGuard, cast

import numpy as np
import torch

FACTORIES = frozenset(
    {
        "zeros",
        "ones",
        "empty",
        "rand",
        "randn",
        "full",
        "eye",
        "new_zeros",
        "new_ones",
        "new_full",
        "new_empty",
        "Tensor",
        "FloatTensor",
        "DoubleTensor",
        "LongTensor",
        "IntTensor",
        "BoolTensor",
        "ByteTensor",
    }
)
#: Samplers whose size comes after their parameters, by the position it is given at
#: (``torch.randint(0, 10, (5,))``, ``np.random.uniform(0, 1, 5)``, ``rng.choice(a, 5)``);
#: with no size, as many samples as their parameters broadcast to (or one).
_SAMPLERS: dict[str, int] = {
    "randint": 2,
    "normal": 2,
    "uniform": 2,
    "integers": 2,
    "choice": 1,
    "random": 0,
    "standard_normal": 0,
    "permutation": 0,
}
#: Tensors made from data: as many elements as the data (nested lists, or an array).
_FROM_DATA = frozenset({"tensor", "as_tensor", "array", "asarray", "new_tensor"})
_RANGES = frozenset({"arange", "linspace", "logspace"})
_EXPANDS = frozenset({"expand", "broadcast_to", "new_full"})
_REPEATS = frozenset({"repeat", "tile"})
_PRODUCTS = frozenset({"kron", "outer", "ger", "cartesian_prod"})
_JOINS = frozenset(
    {"cat", "concat", "concatenate", "stack", "hstack", "vstack", "parameters_to_vector"}
)
#: ``np.percentile(a, q, axis)``: the input's reduced size for each of q's values.
_QUANTILES = frozenset({"percentile", "quantile"})
#: Counts into bins: as many as the input, or the bins asked for when more.
_HISTOGRAMS = frozenset({"histogram", "histc", "bincount"})
#: Reductions: the input's size less the dimensions reduced (all of them by default).
_REDUCTIONS = frozenset(
    {
        "sum",
        "mean",
        "prod",
        "max",
        "min",
        "amax",
        "amin",
        "argmax",
        "argmin",
        "std",
        "var",
        "norm",
        "logsumexp",
        "all",
        "any",
        "count_nonzero",
        "median",
        "nansum",
        "nanmean",
    }
)
#: Pooling, over windows of the input (adaptive ones to the size asked for).
_POOLS = frozenset(
    {
        "max_pool1d",
        "max_pool2d",
        "avg_pool1d",
        "avg_pool2d",
        "MaxPool1d",
        "MaxPool2d",
        "AvgPool1d",
        "AvgPool2d",
        "adaptive_avg_pool1d",
        "adaptive_avg_pool2d",
        "adaptive_max_pool2d",
        "AdaptiveAvgPool1d",
        "AdaptiveAvgPool2d",
        "AdaptiveMaxPool2d",
    }
)
#: Losses: one number, or the input's size with reduction="none".
_LOSSES = frozenset(
    {
        "mse_loss",
        "l1_loss",
        "smooth_l1_loss",
        "huber_loss",
        "cross_entropy",
        "nll_loss",
        "binary_cross_entropy",
        "binary_cross_entropy_with_logits",
        "kl_div",
        "MSELoss",
        "L1Loss",
        "SmoothL1Loss",
        "HuberLoss",
        "CrossEntropyLoss",
        "NLLLoss",
        "BCELoss",
        "BCEWithLogitsLoss",
        "KLDivLoss",
    }
)
#: Ops whose result can be far larger than every operand, each estimated by its own rule.
_GROWERS = frozenset(
    {
        "diag",
        "diag_embed",
        "diagflat",
        "repeat_interleave",
        "pad",
        "one_hot",
        "multinomial",
        "randperm",
        "meshgrid",
        "cdist",
        "nonzero",
        "topk",
    }
)
#: Losses over classes (dimension 1 of their input): one loss per sample.
_CLASS_LOSSES = frozenset({"cross_entropy", "nll_loss", "CrossEntropyLoss", "NLLLoss"})
#: Results shaped by an index: rows looked up, elements gathered.
_LOOKUPS = frozenset({"embedding", "Embedding", "index_select", "gather", "take"})
_MATMULS = frozenset({"matmul", "mm", "bmm", "mv", "dot", "addmm", "linear", "Linear"})
_CONVOLUTIONS = frozenset(
    {"conv1d", "conv2d", "conv_transpose2d", "Conv1d", "Conv2d", "ConvTranspose2d"}
)
_ATTENTION = frozenset(
    {
        "scaled_dot_product_attention",
        "MultiheadAttention",
        "TransformerEncoderLayer",
        "TransformerEncoder",
    }
)
_RESAMPLES = frozenset({"interpolate", "Upsample"})
#: Factorisations and what is built on them: cubic in the matrix's size, where its
#: operands' size alone would let a program run many seconds-long calls under max_flops.
_FACTORISATIONS = frozenset({"inv", "inverse", "det", "solve", "svd", "qr", "eigh"})
#: Calls that build a dense Jacobian (or Hessian) of a function of their ``inputs``.
JACOBIANS = frozenset({"jacobian", "hessian", "gradcheck", "gradgradcheck"})


_ARRAYS = (torch.Tensor, np.ndarray)


def _shape_of(x: Any) -> tuple[int, ...] | None:
    if isinstance(x, _ARRAYS):
        return tuple(x.shape)
    return None


def _size_args(args: Sequence[Any], kwargs: dict) -> list[int] | None:
    """The size a factory was asked for: ``zeros(2, 3)``, ``zeros((2, 3))``, ``size=(2, 3)``,
    ``randint(0, 10, (5,))`` and ``normal(0., 1., (3,))`` (the size after the numbers)."""
    size = kwargs.get("size")
    if size is None:
        size = next((a for a in args if isinstance(a, (tuple, list, torch.Size))), None)
    if size is None:
        ints = []
        for a in args:
            if not _is_int(a):
                break
            ints.append(int(a))
        return ints or None
    if _is_int(size):
        return [int(size)]
    if isinstance(size, (tuple, list, torch.Size)):
        return [int(v) for v in size if _is_int(v)]
    return None


def _is_int(v: Any) -> TypeGuard[int | np.integer]:
    """An integer as a size may be given: Python's, or numpy's (``np.int64(n)``)."""
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _data_elements(data: Any) -> int:
    """Elements of a tensor made from ``data``: the lengths of its first items, level by
    level, as torch and numpy find a shape before they fill it (ragged data is refused by
    both), so ``[[0] * 10**6] * 10**6`` costs six steps, not 10**12."""
    n = 1
    while isinstance(data, (list, tuple)):
        if not data:
            return 0
        n *= len(data)
        data = data[0]
    shape = _shape_of(data)
    return n * (_prod(shape) if shape is not None else 1)


def _sampler_estimate(op: str, args: Sequence[Any], kwargs: dict) -> int:
    """Samples asked for: the size (an int or a tuple) after the parameters; else a
    permutation of ``n`` or of an array's rows, or one sample per broadcast parameter."""
    size = kwargs.get("size")
    if size is None:
        at = _SAMPLERS[op]
        if op == "randint" and len(args) == 2 and isinstance(args[1], (tuple, list, torch.Size)):
            at = 1  # torch.randint(high, size)
        if op != "permutation" and len(args) > at:
            size = args[at]
    if size is not None:
        return _prod(_ints(size)) if _ints(size) or size == () else 1
    if op == "permutation" and args:
        return int(args[0]) if _is_int(args[0]) else _prod(_shape_of(args[0]) or ())
    shapes = [tuple(a.shape) for a in (*args, *kwargs.values()) if isinstance(a, _ARRAYS)]
    return _broadcast_numel(shapes) if shapes else 1


def _prod(dims: Sequence[int]) -> int:
    n = 1
    for d in dims:
        n *= max(int(d), 0)
    return n


def _broadcast_numel(shapes: list[tuple[int, ...]]) -> int:
    """The elements of the operands broadcast together; for operands that do not
    broadcast (an (N, C) input and its (N,) labels: cross_entropy, TensorDataset,
    ``probs[torch.arange(n), ys]``), the largest operand, not N x N."""
    if len(shapes) == 1:  # most calls: one tensor operand (shapes of real tensors)
        return math.prod(shapes[0])
    if not shapes:
        return 0
    ndim = max(map(len, shapes))
    out = [1] * ndim
    for shape in shapes:
        offset = ndim - len(shape)
        for i, d in enumerate(shape):
            have = out[offset + i]
            if d != have and d != 1 and have != 1:
                return max(_prod(s) for s in shapes)
            if d > have:
                out[offset + i] = d
    return _prod(out)


def _arg(args: Sequence[Any], kwargs: dict, i: int, name: str, default: Any = None) -> Any:
    if len(args) > i:
        return args[i]
    return kwargs.get(name, default)


def _ints(v: Any) -> list[int]:
    if _is_int(v):
        return [int(v)]
    if isinstance(v, (tuple, list)):
        return [int(x) for x in v if _is_int(x)]
    return []


#: Recurrent layers: how many gates (each a pair of matrices) a step of each computes.
_GATES = {"RNNCell": 1, "RNN": 1, "LSTMCell": 4, "LSTM": 4, "GRUCell": 3, "GRU": 3}

#: Modules that apply their parameters to the last dimension of their input, position by
#: position (a sequence's steps, a batch's rows).
_FEATURES_LAST = frozenset(
    {
        "Linear",
        "Bilinear",
        *_GATES,
        "MultiheadAttention",
        "TransformerEncoderLayer",
        "TransformerEncoder",
    }
)


def module_flops(module: torch.nn.Module, args: Sequence[Any]) -> float:
    """A library module's call, priced from its parameters, which its input's size alone
    does not tell (300 calls of an nn.Linear(2000, 2000) on a [2000, 2000] input are 5e12
    operations): each parameter is used about twice per position it is applied at, the
    rows of a features-last input or the N x spatial positions of a channels-first one."""
    params = sum(p.numel() for p in module.parameters())
    x = next((a for a in args if isinstance(a, _ARRAYS)), None)
    if x is None or params == 0 or x.ndim == 0:
        return 0.0
    shape = tuple(x.shape)
    if type(module).__name__ in _FEATURES_LAST or len(shape) < 3:
        positions = _prod(shape[:-1])
    else:
        positions = shape[0] * _prod(shape[2:])
    return 2.0 * params * max(positions, 1)


def _width(module: torch.nn.Module) -> int:
    """How many numbers a features-last layer makes for each position of its input: a
    Linear's outputs, a recurrent layer's hidden state for each layer and direction (its
    final states are as many), a transformer layer's widest activation."""
    if isinstance(module, (torch.nn.Linear, torch.nn.Bilinear)):
        return module.out_features
    if isinstance(module, torch.nn.RNNBase):
        return module.hidden_size * (2 if module.bidirectional else 1) * module.num_layers
    if isinstance(module, torch.nn.RNNCellBase):
        return module.hidden_size
    if isinstance(module, torch.nn.MultiheadAttention):
        return module.embed_dim
    if isinstance(module, torch.nn.TransformerEncoderLayer):
        return max(module.linear1.in_features, module.linear1.out_features)
    if isinstance(module, torch.nn.TransformerEncoder) and len(module.layers):
        return _width(module.layers[0])
    return 0


def module_elements(module: torch.nn.Module, args: Sequence[Any]) -> int:
    """A features-last layer's result, from its own sizes: each position of its input
    (the rows of a batch, a sequence's steps) becomes ``_width`` numbers."""
    x = next((a for a in args if isinstance(a, _ARRAYS)), None)
    width = _width(module)
    if x is None or not width:
        return 0
    return max(_prod(tuple(x.shape)[:-1]), 1) * width


_PERCENT = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?(.)", re.S)


def percent_length(fmt: str, values: Any) -> int:
    """How long ``fmt % values`` may be, before it is made: the text, and for each
    conversion its width (``'%*d' % (1500000000, 1)`` asks for 1.5 GB), precision or value."""
    queue = list(values) if isinstance(values, tuple) else [values]
    total = len(fmt)

    def number(part: str | None) -> int:
        if part == "*":
            v = queue.pop(0) if queue else 0
            return abs(int(v)) if _is_int(v) else 0
        return int(part) if part else 0

    for m in _PERCENT.finditer(fmt):
        width, precision = number(m.group(1)), number(m.group(2))
        value = None if m.group(3) == "%" or isinstance(values, dict) or not queue else queue.pop(0)
        shown = len(value) if isinstance(value, str) else max(64, text_length(value))
        total += max(width, precision + shown)
    return total


def text_length(value: Any, depth: int = 0) -> int:
    """How long the text of a value holding tensors may be, before it is made: a tensor
    prints every element up to the print options' threshold (``set_printoptions(
    profile="full", precision=100)`` then ``str(torch.rand(10**6))`` was 11 s and ~100 MB
    outside every counter), each at most its precision and ~16 characters (a sign, eight
    digits before the point or an exponent, a separator, indentation); past the threshold
    only the edge items of each dimension. Containers add their items' (four levels
    down: a list may hold itself); other values count 0 here, their text bounded by
    what made them (max_sequence_length, max_int_bits)."""
    if isinstance(value, torch.Tensor):
        opts = torch._tensor_str.PRINT_OPTS
        n = value.numel()
        shown = (
            n
            if n <= opts.threshold
            else min(n, _prod([min(d, 2 * opts.edgeitems) for d in value.shape]))
        )
        return shown * (opts.precision + 16) * (2 if value.is_complex() else 1) + 128
    if isinstance(value, np.ndarray):  # (numpy's print options are not the program's)
        return min(value.size, 1000) * 32 + 128
    if isinstance(value, (list, tuple, set, frozenset, dict)) and depth < 4:
        items = value.values() if isinstance(value, dict) else value
        return sum(text_length(v, depth + 1) for v in items)
    return 0


_SPEC = re.compile(r"(?:.?[<>=^])?[+\- ]?z?#?0?(\d*)[,_]?(?:\.(\d+))?.?$", re.S)


def format_length(value: Any, spec: str) -> int:
    """How long ``format(value, spec)`` may be, before it is made: ``f"{x:>1500000000}"``
    and ``f"{x:.1000000000f}"`` ask for gigabytes. The width, or the precision's digits
    past the value's own: a string's length, a number's digits (a float's 'f' form is at
    most ~310, an integer's bounded by max_int_bits); a tensor's as ``text_length``."""
    m = _SPEC.match(spec)
    width, precision = (int(m.group(1) or 0), int(m.group(2) or 0)) if m else (0, 0)
    shown = (
        len(value)
        if isinstance(value, str)
        else 2048
        if isinstance(value, (int, float, np.number))
        else text_length(value)
    )
    return max(width, precision + shown)


def str_result_length(op: str, s: str, args: Sequence[Any], kwargs: dict) -> int:
    """How long a string method's result may be, before it is made (``'a'.center(10**9)``
    is a gigabyte): the width asked for, or the replacements' growth."""
    if op in ("center", "ljust", "rjust", "zfill"):
        width = _arg(args, kwargs, 0, "width", 0)
        return max(len(s), int(width)) if _is_int(width) else len(s)
    if op == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        old, new = args[0], args[1]
        count = s.count(old) if old else len(s) + 1
        if len(args) > 2 and _is_int(args[2]) and args[2] >= 0:
            count = min(count, int(args[2]))
        return len(s) + count * max(len(new) - len(old), 0)
    if op == "join" and args and isinstance(args[0], (list, tuple)):
        items = args[0]
        return sum(len(x) for x in items if isinstance(x, str)) + len(s) * max(len(items) - 1, 0)
    if op in ("upper", "lower", "title", "capitalize", "swapcase"):
        return 3 * len(s)  # (a case mapping may lengthen: 'ß'.upper() is 'SS')
    return len(s)


def layer_parameters(cls: type, args: Sequence[Any], kwargs: dict) -> int:
    """Parameters an nn layer will allocate, from its constructor's arguments."""
    name = cls.__name__
    a = lambda i, n, d=0: _arg(args, kwargs, i, n, d)  # noqa: E731 - read in every branch
    try:
        if name == "Linear":
            return int(a(0, "in_features")) * int(a(1, "out_features")) + int(a(1, "out_features"))
        if name == "Bilinear":
            out = int(a(2, "out_features"))
            return int(a(0, "in1_features")) * int(a(1, "in2_features")) * out + out
        if name in ("BatchNorm1d", "BatchNorm2d", "GroupNorm"):  # weight, bias, running stats
            return (
                4
                * int(
                    a(
                        1 if name == "GroupNorm" else 0,
                        "num_channels" if name == "GroupNorm" else "num_features",
                    )
                )
                + 1
            )
        if name == "LayerNorm":
            return 2 * _prod(_ints(a(0, "normalized_shape")))
        if name == "PReLU":
            return int(a(0, "num_parameters", 1))
        if name.startswith("Conv"):
            k = _ints(a(2, "kernel_size", 1))
            dims = 1 if name.startswith("Conv1") else 3 if "3d" in name else 2
            if len(k) == 1:
                k = k * dims
            groups = int(kwargs.get("groups", 1)) or 1
            out = int(a(1, "out_channels"))
            return out * int(a(0, "in_channels")) // groups * math.prod(k) + out
        if name == "Embedding":
            return int(a(0, "num_embeddings")) * int(a(1, "embedding_dim"))
        if name in _GATES:  # (layers after the first read the one before: hid x directions)
            inp, hid = int(a(0, "input_size")), int(a(1, "hidden_size"))
            cell = name.endswith("Cell")
            layers = 1 if cell else int(a(2, "num_layers", 1))
            directions = 2 if not cell and kwargs.get("bidirectional") else 1
            widest = max(inp, hid * directions) if layers > 1 else inp
            return directions * layers * _GATES[name] * (hid * (widest + hid) + 2 * hid)
        if name == "MultiheadAttention":  # query, key and value projections, and the output's
            e = int(a(0, "embed_dim"))
            return 4 * e * e + 4 * e
        if name == "TransformerEncoderLayer":  # attention, two linear layers, two LayerNorms
            d, ff = int(a(0, "d_model")), int(a(2, "dim_feedforward", 2048))
            return 4 * d * d + 4 * d + 2 * d * ff + ff + d + 4 * d
        if name == "TransformerEncoder":  # copies of the layer it is given
            layer = a(0, "encoder_layer")
            per_layer = (
                sum(p.numel() for p in layer.parameters())
                if isinstance(layer, torch.nn.Module)
                else 0
            )
            return int(a(1, "num_layers")) * per_layer
    except (TypeError, ValueError, OverflowError):
        return 0
    return 0


def _factorisation_estimate(target: Any, args: Sequence[Any], kwargs: dict) -> tuple[int, float]:
    """A batch of m x n matrices: about m·n·min(m, n) operations each (LU, QR, SVD alike,
    within a small factor); the largest result is a square of the larger side (SVD's U or
    V, an inverse), or the other operand's broadcast (``solve``'s right-hand side)."""
    shapes = [tuple(a.shape) for a in (target, *args, *kwargs.values()) if isinstance(a, _ARRAYS)]
    a = shapes[0] if shapes else ()
    if len(a) < 2:
        n = _prod(a)
        return n, float(n)
    batch, m, n = _prod(a[:-2]), a[-2], a[-1]
    elements = max(batch * max(m, n) ** 2, _broadcast_numel(shapes))
    return elements, 2.0 * batch * m * n * min(m, n)


def _attention_estimate(op: str, shapes: list[tuple[int, ...]], module: Any) -> tuple[int, float]:
    """Attention scores every query against every key: batch x heads x L x S scores, each
    4 x E operations (scores and weighted sum), plus 2 operations per parameter and token
    for a module's projections; its largest tensor is the scores or the query."""
    q = shapes[0] if shapes else ()
    if len(q) < 2:
        n = _prod(q)
        return n, float(n)
    if op == "scaled_dot_product_attention":
        k = shapes[1] if len(shapes) > 1 else q
        batch, length, keys, layers, projections = _prod(q[:-2]), q[-2], k[-2], 1, 0.0
    else:
        attn = (
            next((m for m in module.modules() if isinstance(m, torch.nn.MultiheadAttention)), None)
            if isinstance(module, torch.nn.Module)
            else None
        )
        k = shapes[1] if op == "MultiheadAttention" and len(shapes) > 1 else q
        if len(q) == 2:  # one unbatched sequence (L, E)
            batch, length, keys = 1, q[0], k[0]
        elif attn is not None and attn.batch_first:
            batch, length, keys = q[0], q[1], k[1]
        else:
            batch, length, keys = q[1], q[0], k[0]
        batch *= attn.num_heads if attn is not None else 1
        layers = len(module.layers) if op == "TransformerEncoder" else 1
        # (keys and values are projected at their own positions: the longest input's count)
        projections = (
            2.0 * max(_prod(s[:-1]) for s in shapes) * sum(p.numel() for p in module.parameters())
            if isinstance(module, torch.nn.Module)
            else 0.0
        )
    scores = batch * length * keys
    return max(scores, _prod(q)), 4.0 * scores * q[-1] * layers + projections


def _jacobian_estimate(args: Sequence[Any], kwargs: dict) -> tuple[int, float]:
    """``jacobian(f, inputs)``, ``hessian``, ``gradcheck``: a matrix of n x n entries for n
    input elements (a function's outputs as many as its inputs, the common case), each
    entry a function evaluation's worth of work."""
    inputs = _arg(args, kwargs, 1, "inputs")
    tensors = inputs if isinstance(inputs, (tuple, list)) else [inputs]
    n = sum(t.numel() for t in tensors if isinstance(t, torch.Tensor))
    return n * n, float(n) * n


def _subject(target: Any, args: Sequence[Any], kwargs: dict) -> tuple[Any, list[Any]]:
    """The tensor an op acts on (``x.f(...)`` or ``f(x, ...)``), and the arguments after it."""
    if target is not None:
        return target, list(args)
    return (args[0] if args else kwargs.get("input")), list(args[1:])


def _operand_shapes(target: Any, args: Sequence[Any], kwargs: dict) -> list[tuple[int, ...]]:
    """The shapes of a call's tensor operands, those in a list argument too (``cat``)."""
    shapes = [tuple(a.shape) for a in (target, *args, *kwargs.values()) if isinstance(a, _ARRAYS)]
    for a in args:
        if isinstance(a, (list, tuple)):
            shapes.extend(tuple(v.shape) for v in a if isinstance(v, _ARRAYS))
    return shapes


def _tuple(v: Any, n: int, default: int) -> list[int]:
    """A conv or pool setting (an int, a tuple) for ``n`` dimensions."""
    if v is None:
        return [default] * n
    if isinstance(v, int):
        return [v] * n
    values = [int(x) for x in v] if isinstance(v, (tuple, list)) else []
    return values if len(values) == n else [default] * n


def _setting(
    module: Any, name: str, args: Sequence[Any], kwargs: dict, i: int, default: Any
) -> Any:
    """A layer's setting: the module's attribute, or the functional call's argument."""
    if module is not None:
        return getattr(module, name, default)
    return _arg(args, kwargs, i, name, default)


def _sliding(length: int, k: int, s: int, p: int, d: int, ceil: bool = False) -> int:
    """Positions of a window of ``k`` (dilation ``d``) sliding by ``s`` over ``length``
    padded by ``p`` on each side: PyTorch's formula for convolutions and pooling."""
    span = length + 2 * p - d * (k - 1) - 1
    if span < 0:
        return 0
    out = (-(-span // s) if ceil else span // s) + 1
    if ceil and (out - 1) * s >= length + p:  # the last window must start inside
        out -= 1
    return out


def _conv_estimate(op: str, module: Any, args: Sequence[Any], kwargs: dict) -> tuple[int, float]:
    """A convolution's output from PyTorch's formula (stride, padding, dilation; a
    transposed one's the other way), and 2 operations per output and weight element."""
    module = module if isinstance(module, torch.nn.Module) else None
    inp = _shape_of(args[0] if args else kwargs.get("input"))
    weight = (
        getattr(module, "weight", None) if module is not None else _arg(args, kwargs, 1, "weight")
    )
    wshape = _shape_of(weight)
    if not inp or not wshape or len(wshape) < 3:
        n = _prod(inp or ())
        return n, float(n)
    dims = len(wshape) - 2
    transposed = "transpose" in op.lower()
    stride = _tuple(_setting(module, "stride", args, kwargs, 3, 1), dims, 1)
    padding = _setting(module, "padding", args, kwargs, 4, 0)
    dilation = _tuple(
        _setting(module, "dilation", args, kwargs, 6 if transposed else 5, 1), dims, 1
    )
    kernel = list(wshape[2:])
    spatial = list(inp[-dims:])
    if isinstance(padding, str):  # "same" keeps the size; "valid" pads nothing
        out = (
            spatial
            if padding == "same"
            else [
                _sliding(n, k, s, 0, d)
                for n, k, s, d in zip(spatial, kernel, stride, dilation, strict=False)
            ]
        )
    elif transposed:
        pads = _tuple(padding, dims, 0)
        extra = _tuple(_setting(module, "output_padding", args, kwargs, 5, 0), dims, 0)
        out = [
            (n - 1) * s - 2 * p + d * (k - 1) + e + 1
            for n, k, s, p, d, e in zip(
                spatial, kernel, stride, pads, dilation, extra, strict=False
            )
        ]
    else:
        pads = _tuple(padding, dims, 0)
        out = [
            _sliding(n, k, s, p, d)
            for n, k, s, p, d in zip(spatial, kernel, stride, pads, dilation, strict=False)
        ]
    groups = int(_setting(module, "groups", args, kwargs, 7 if transposed else 6, 1) or 1)
    channels = wshape[1] * groups if transposed else wshape[0]
    batch = inp[0] if len(inp) == dims + 2 else 1
    n = batch * channels * _prod(out)
    # each weight element meets each output position (each input one, transposed)
    positions = batch * _prod(spatial) if transposed else n // max(wshape[0], 1)
    return n, 2.0 * positions * _prod(wshape)


def _pool_estimate(op: str, module: Any, args: Sequence[Any], kwargs: dict) -> int:
    """Pooling's output: adaptive pools to their output size, others by PyTorch's
    sliding-window formula (stride defaults to the window)."""
    module = module if isinstance(module, torch.nn.Module) else None
    inp = _shape_of(args[0] if args else kwargs.get("input")) or ()
    dims = 1 if "1d" in op.lower() else 2
    if len(inp) < dims + 1:
        return _prod(inp)
    lead = list(inp[:-dims])
    if "adaptive" in op.lower():
        size = _setting(module, "output_size", args, kwargs, 1, None)
        sizes = [
            inp[-dims + i] if v is None else int(v)
            for i, v in enumerate(size if isinstance(size, (tuple, list)) else [size] * dims)
        ]
        return _prod(lead) * _prod(sizes)
    kernel = _tuple(_setting(module, "kernel_size", args, kwargs, 1, 1), dims, 1)
    stride_setting = _setting(module, "stride", args, kwargs, 2, None)
    stride = kernel if stride_setting in (None, [], ()) else _tuple(stride_setting, dims, 1)
    padding = _tuple(_setting(module, "padding", args, kwargs, 3, 0), dims, 0)
    dilation = (
        _tuple(_setting(module, "dilation", args, kwargs, 4, 1), dims, 1)
        if "max" in op.lower()
        else [1] * dims
    )
    ceil = bool(_setting(module, "ceil_mode", args, kwargs, 5 if "max" in op.lower() else 4, False))
    out = [
        _sliding(n, k, s, p, d, ceil)
        for n, k, s, p, d in zip(inp[-dims:], kernel, stride, padding, dilation, strict=False)
    ]
    return _prod(lead) * _prod(out)


def _pool_window(op: str, module: Any, args: Sequence[Any], kwargs: dict) -> int:
    if "adaptive" in op.lower():
        return 1
    module = module if isinstance(module, torch.nn.Module) else None
    dims = 1 if "1d" in op.lower() else 2
    return _prod(_tuple(_setting(module, "kernel_size", args, kwargs, 1, 1), dims, 1))


def _reduction_estimate(
    op: str, target: Any, args: Sequence[Any], kwargs: dict
) -> tuple[int, float]:
    """The input less the dimensions reduced: ``dim``/``axis`` (an int or a tuple), all of
    them when none is given; ``max(a, b)`` between two tensors is elementwise."""
    x, rest = _subject(target, args, kwargs)
    shape = _shape_of(x)
    if shape is None:
        return 0, 0.0
    n = _prod(shape)
    if op in ("max", "min") and rest and isinstance(rest[0], _ARRAYS):
        m = _broadcast_numel([shape, tuple(rest[0].shape)])
        return m, float(m)
    if op == "norm":
        rest = rest[1:]  # norm(p, dim, keepdim): the first is the order
    dim = kwargs.get("dim", kwargs.get("axis"))
    if (
        dim is None
        and rest
        and not isinstance(rest[0], bool)
        and isinstance(rest[0], (int, tuple, list))
    ):
        dim = rest[0]
    if dim is None:
        return 1, float(n)
    dims = [dim] if isinstance(dim, int) else [int(d) for d in dim]
    keep = [d % max(len(shape), 1) for d in dims] if shape else []
    out = [1 if i in keep else size for i, size in enumerate(shape)]
    return _prod(out), float(n)


def _loss_estimate(op: str, module: Any, args: Sequence[Any], kwargs: dict) -> tuple[int, float]:
    """A loss: one number, or (reduction="none") its input's size, broadcast with the
    target's where they broadcast."""
    shapes = _operand_shapes(None, args, kwargs)
    module = module if isinstance(module, torch.nn.Module) else None
    reduction = (
        getattr(module, "reduction", "mean")
        if module is not None
        else kwargs.get("reduction", "mean")
    )
    work = _broadcast_numel(shapes) if shapes else 0
    if reduction != "none":
        return 1, float(work)
    if op in _CLASS_LOSSES and shapes and len(shapes[0]) >= 2:  # one loss per sample
        return _prod(shapes[0]) // max(shapes[0][1], 1), float(work)
    return work, float(work)


def _bilinear_estimate(shapes: list[tuple[int, ...]], module: Any) -> tuple[int, float]:
    """``x1ᵀ A x2`` for each position of the first input: ``out`` numbers, each
    in1 x in2 multiply-adds."""
    weight = (
        tuple(cast(torch.Tensor, module.weight).shape)
        if isinstance(module, torch.nn.Module)
        else shapes[2]
        if len(shapes) > 2
        else ()
    )
    if not shapes or len(weight) != 3:
        n = _broadcast_numel(shapes) if shapes else 0
        return n, float(n)
    positions = _prod(shapes[0][:-1])
    return positions * weight[0], 2.0 * positions * _prod(weight)


def _einsum_estimate(args: Sequence[Any]) -> tuple[int, float]:
    """``einsum(equation, *operands)``: its output's elements (the letters after ``->``,
    or those that appear once), and its multiply-adds (every combination of its letters)."""
    equation = args[0] if args and isinstance(args[0], str) else ""
    operands = (
        list(args[1]) if len(args) == 2 and isinstance(args[1], (list, tuple)) else list(args[1:])
    )
    inputs, arrow, output = equation.replace(" ", "").partition("->")
    terms = inputs.split(",")
    sizes: dict[str, int] = {}
    for term, x in zip(terms, operands, strict=False):
        if "..." in term:  # (rare) a bound: the largest operand squared
            n = max(_prod(_shape_of(o) or ()) for o in operands) ** 2
            return n, 2.0 * n
        for letter, size in zip(term, _shape_of(x) or (), strict=False):
            sizes[letter] = max(sizes.get(letter, 1), size)
    if not arrow:
        joined = "".join(terms)
        output = "".join(sorted(c for c in set(joined) if joined.count(c) == 1))
    return _prod([sizes.get(c, 1) for c in output]), 2.0 * _prod(list(sizes.values()))


def _grid_estimate(key: Any) -> int:
    """``np.mgrid[a:b:s, ...]``: one array of every combination per slice (a complex step
    is a count of points)."""
    keys = key if isinstance(key, tuple) else (key,)
    lengths = []
    for k in keys:
        if not isinstance(k, slice):
            lengths.append(1)
            continue
        start, stop, step = k.start or 0, k.stop or 0, 1 if k.step is None else k.step
        if isinstance(step, complex):
            lengths.append(int(abs(step.imag)))
        else:
            lengths.append(max(math.ceil((stop - start) / step), 0) if step else 0)
    return len(keys) * _prod(lengths)


def _grower_estimate(op: str, target: Any, args: Sequence[Any], kwargs: dict) -> int:
    """Ops whose result can dwarf their operands: a diagonal matrix from a vector,
    repeats, padding, one-hot codes, samples, grids of coordinates, pairwise distances,
    the indices of nonzero elements, the k largest."""
    x, rest = _subject(target, args, kwargs)
    shape = _shape_of(x) or ()
    n = _prod(shape)
    try:
        if op in ("diag", "diagflat", "diag_embed"):
            offset = abs(
                int(
                    _arg(
                        rest,
                        kwargs,
                        0,
                        "offset" if op != "diag" else "k" if "k" in kwargs else "diagonal",
                        0,
                    )
                )
            )
            if op == "diag" and len(shape) == 2:
                return min(shape)
            side = (shape[-1] if op == "diag_embed" else n) + offset
            return (n // max(shape[-1], 1) if op == "diag_embed" and shape else 1) * side * side
        if op == "repeat_interleave":
            repeats = _arg(rest, kwargs, 0, "repeats", 1)
            if isinstance(repeats, torch.Tensor):
                total = int(repeats.sum()) if repeats.numel() else 0
                dim = _arg(rest, kwargs, 1, "dim")
                return total if dim is None or not shape else n // max(shape[dim], 1) * total
            return n * max(int(repeats), 0)
        if op == "pad":
            pads = _ints(_arg(rest, kwargs, 0, "pad", ()))
            padded = list(shape)
            for i in range(len(pads) // 2):
                d = len(padded) - 1 - i
                if d >= 0:
                    padded[d] += pads[2 * i] + pads[2 * i + 1]
            return _prod(padded)
        if op == "one_hot":
            classes = int(_arg(rest, kwargs, 0, "num_classes", -1))
            if classes < 0 and isinstance(x, torch.Tensor) and x.numel():
                classes = int(x.max()) + 1
            return n * max(classes, 1)
        if op == "multinomial":
            rows = n // max(shape[-1], 1) if shape else 1
            return rows * int(_arg(rest, kwargs, 0, "num_samples", 1))
        if op == "nonzero":  # an index per dimension for each element, at most
            return n * max(len(shape), 1)
        if op == "topk":
            k = int(_arg(rest, kwargs, 0, "k", 1))
            dim = int(_arg(rest, kwargs, 1, "dim", -1))
            return n // max(shape[dim], 1) * k if shape else k
        if op == "randperm":
            return int(x) if isinstance(x, int) else 0
        if op == "meshgrid":
            tensors = [a for a in args if isinstance(a, _ARRAYS)] or [
                t for a in args if isinstance(a, (list, tuple)) for t in a if isinstance(t, _ARRAYS)
            ]
            return len(tensors) * _prod([_prod(tuple(t.shape)) for t in tensors])
        if op == "cdist":
            other = _shape_of(_arg(rest, kwargs, 0, "x2")) or ()
            batch = _prod(shape[:-2]) if len(shape) > 2 else 1
            return (
                batch * (shape[-2] if len(shape) > 1 else 1) * (other[-2] if len(other) > 1 else 1)
            )
    except (TypeError, ValueError, IndexError, OverflowError):
        pass
    return n


def _lookup_estimate(op: str, target: Any, args: Sequence[Any], kwargs: dict, module: Any) -> int:
    """Results shaped by an index: an embedding's rows (index x embedding size), an
    ``index_select`` (the input with its dimension ``dim`` as long as the index), a
    ``gather`` or ``take`` (the index's shape)."""
    operands = [a for a in (target, *args, *kwargs.values()) if isinstance(a, _ARRAYS)]
    if op in ("embedding", "Embedding"):
        weight = (
            getattr(module, "weight", None)
            if op == "Embedding"
            else _arg(args, kwargs, 1, "weight")
        )
        index = operands[0] if operands else None
        if isinstance(weight, torch.Tensor) and index is not None:
            return _prod(_shape_of(index) or ()) * weight.shape[-1]
    elif op == "index_select":
        x, rest = _subject(target, args, kwargs)
        dim, index = _arg(rest, kwargs, 0, "dim", 0), _arg(rest, kwargs, 1, "index")
        shape = _shape_of(x)
        if shape and isinstance(dim, int) and _shape_of(index) is not None:
            size = shape[dim] if -len(shape) <= dim < len(shape) else 1
            return _prod(shape) // max(size, 1) * _prod(_shape_of(index) or ())
    else:  # gather(input, dim, index), take(input, index): the index's shape
        index = operands[-1] if operands else None
        return _prod(_shape_of(index) or ())
    return max((_prod(tuple(o.shape)) for o in operands), default=0)


def _histogram_estimate(op: str, target: Any, args: Sequence[Any], kwargs: dict) -> int:
    """``histogram``/``histc``: max(input, bins); ``bincount``: max(input, minlength,
    the largest value + 1), read from the input (a bin for every value up to it)."""
    x, rest = _subject(target, args, kwargs)
    n = _prod(_shape_of(x) or ())
    if op == "bincount":
        bins = int(kwargs.get("minlength", 0) or 0)
        if isinstance(x, torch.Tensor) and x.numel() and not x.is_floating_point():
            bins = max(bins, int(x.max()) + 1)
    else:  # (histogram's edges: one more than its bins)
        bins = _arg(rest, kwargs, 0, "bins", 100)
        bins = (bins if isinstance(bins, int) else _prod(_shape_of(bins) or ())) + 1
    return max(n, bins)


def _index_shape(k: Any) -> tuple[tuple[int, ...], int] | None:
    """An advanced index: (the shape it contributes, the dimensions it consumes), or None
    for a basic one (an int, a slice, None, ...)."""
    if isinstance(k, (torch.Tensor, np.ndarray)):
        if k.dtype in (torch.bool, np.bool_):
            return (max(_prod(tuple(k.shape)), 0),), max(k.ndim, 1)  # at most every element
        return tuple(k.shape), 1
    if isinstance(k, list):
        return tuple(np.shape(k)), 1
    return None


def _index_estimate(target: Any, key: Any) -> int:
    """Elements of ``target[key]``: the advanced indices' broadcast shape times the sizes
    the key keeps (slices, and dimensions it does not index; a boolean mask counted as if
    it were all true). Keys after an Ellipsis index the last dimensions."""
    shape = _shape_of(target)
    if shape is None:
        return 0
    keys = list(key) if isinstance(key, tuple) else [key]
    cut = next((i for i, k in enumerate(keys) if k is Ellipsis), len(keys))
    sizes: list[int | None] = list(shape)  # None: consumed by an index
    advanced: list[tuple[int, ...]] = []

    def walk(part: list[Any], dims: list[int]) -> None:
        at = 0
        for k in part:
            if k is None or at >= len(dims):
                continue
            adv = _index_shape(k)
            width = adv[1] if adv is not None else 1
            if adv is not None:
                advanced.append(adv[0])
            if isinstance(k, slice):
                d = dims[at]
                sizes[d] = len(range(*k.indices(sizes[d] or 0)))
            else:
                for d in dims[at : at + width]:
                    sizes[d] = None
            at += width

    walk(keys[:cut], list(range(len(shape))))
    after = keys[cut + 1 :]
    walk(list(reversed(after)), list(reversed(range(len(shape)))))
    kept = _prod([d for d in sizes if d is not None])
    return (_broadcast_numel(advanced) if advanced else 1) * kept


def _resample_estimate(
    args: Sequence[Any], kwargs: dict, inp: tuple[int, ...] | None, module: Any
) -> tuple[int, float]:
    """``F.interpolate`` / ``nn.Upsample`` of an input of shape ``inp``: (N, C) times the
    output's spatial size, from ``size`` or from the input's spatial size times
    ``scale_factor``."""
    inp = inp or ()
    spatial = len(inp) - 2
    if isinstance(module, torch.nn.Module):
        size, scale = getattr(module, "size", None), getattr(module, "scale_factor", None)
    else:
        size, scale = _arg(args, kwargs, 1, "size"), _arg(args, kwargs, 2, "scale_factor")
    n = _prod(inp)
    try:
        if spatial >= 1 and size is not None:
            dims = _ints(size)
            n = _prod(inp[:2]) * _prod(dims * spatial if len(dims) == 1 else dims)
        elif spatial >= 1 and scale is not None:
            factors = list(scale) if isinstance(scale, (tuple, list)) else [scale] * spatial
            n = int(n * math.prod(float(f) for f in factors))
    except (TypeError, ValueError, OverflowError):
        pass
    return n, 4.0 * n


Estimator = Callable[[str, Any, Sequence[Any], dict, Any], tuple[int, float]]


def _elements(estimate: Callable[..., int]) -> Estimator:
    """An estimator of elements alone: as many operations as elements."""

    def both(op: str, target: Any, args: Sequence[Any], kwargs: dict, fn: Any) -> tuple[int, float]:
        n = estimate(op, target, args, kwargs, fn)
        return n, float(n)

    return both


def _pool_both(
    op: str, target: Any, args: Sequence[Any], kwargs: dict, fn: Any
) -> tuple[int, float]:
    n = _pool_estimate(op, fn, args, kwargs)
    return n, float(n * _pool_window(op, fn, args, kwargs))


def _matmul_estimate(shapes: list[tuple[int, ...]]) -> tuple[int, float]:
    mats = [s for s in shapes if len(s) >= 1]
    if len(mats) < 2:
        n = _prod(mats[0]) if mats else 0
        return n, float(n)
    a, b = mats[-2], mats[-1]
    if len(b) == 2 and len(mats) == 2 and len(a) >= 1 and a[-1] != b[0] and a[-1] == b[-1]:
        b = (b[1], b[0])  # F.linear's weight is (out, in)
    m = _prod(a[:-1]) if len(a) > 1 else 1
    k = a[-1]
    n_ = b[-1] if len(b) > 1 else 1
    batch = _prod(b[:-2]) if len(b) > 2 else 1
    out = m * n_ * batch
    return out, 2.0 * out * k


def _broadcast(
    op: str, target: Any, args: Sequence[Any], kwargs: dict, fn: Any
) -> tuple[int, float]:
    """Any op without a rule: its operands broadcast together (elementwise ops, in-place
    operators, and ops whose result is no larger than their operands)."""
    shapes = _operand_shapes(target, args, kwargs)
    n = _broadcast_numel(shapes) if shapes else 0
    return n, float(n)


def _factory(op: str, target: Any, args: Sequence[Any], kwargs: dict, fn: Any) -> tuple[int, float]:
    """The size asked for (``eye``: rows by columns, torch's ``m`` or numpy's ``M``)."""
    dims = _size_args(args, kwargs)
    if not dims:
        return _broadcast(op, target, args, kwargs, fn)
    if op == "eye":
        columns = kwargs.get("m", kwargs.get("M"))
        n = dims[0] * (dims[1] if len(dims) > 1 else int(columns) if _is_int(columns) else dims[0])
    else:
        n = _prod(dims)
    return n, float(n)


def _range(op: str, target: Any, args: Sequence[Any], kwargs: dict, fn: Any) -> tuple[int, float]:
    """``arange``'s steps to its end (a last partial step counts); ``linspace``'s and
    ``logspace``'s ``steps`` (numpy's ``num``)."""
    nums = [a for a in args if isinstance(a, (int, float)) and not isinstance(a, bool)]
    if op == "arange" and nums:
        start, end, step = (
            (0, nums[0], 1)
            if len(nums) == 1
            else (nums[0], nums[1], nums[2] if len(nums) > 2 else kwargs.get("step", 1))
        )
        try:
            n = math.ceil(abs((end - start) / step)) if step else 0
        except (OverflowError, ValueError, ZeroDivisionError, TypeError):
            n = 0
        return n, float(n)
    steps = kwargs.get("steps", kwargs.get("num", nums[2] if len(nums) > 2 else 100))
    return (int(steps), float(steps)) if isinstance(steps, int) else (0, 0.0)


def _expand(op: str, target: Any, args: Sequence[Any], kwargs: dict, fn: Any) -> tuple[int, float]:
    """The size asked for, -1 keeping the size the tensor has there (a view: no work)."""
    dims = _size_args(args, kwargs) or []
    have = (1,) * len(dims) + (_shape_of(target) or ())
    n = _prod([d if d != -1 else have[len(have) - len(dims) + i] for i, d in enumerate(dims)])
    return n, 0.0


def _repeat(op: str, target: Any, args: Sequence[Any], kwargs: dict, fn: Any) -> tuple[int, float]:
    """``x.repeat(2, 3)``, ``x.tile((2, 3))``, ``torch.tile(x, (2, 3))``: the copies."""
    x, rest = _subject(target, args, kwargs)
    reps = _size_args(rest, kwargs) or []
    return _prod(reps) * max(_prod(_shape_of(x) or ()), 1), 0.0


def _join(op: str, target: Any, args: Sequence[Any], kwargs: dict, fn: Any) -> tuple[int, float]:
    """The operands end to end."""
    n = sum(_prod(s) for s in _operand_shapes(target, args, kwargs))
    return n, float(n)


def _product(op: str, target: Any, args: Sequence[Any], kwargs: dict, fn: Any) -> tuple[int, float]:
    """Every combination of the operands' elements (``cartesian_prod``: one per operand)."""
    shapes = _operand_shapes(target, args, kwargs)
    n = 1
    for s in shapes:
        n *= max(_prod(s), 1)
    if op == "cartesian_prod":
        n *= len(shapes)
    return n, float(n)


def _matmul(op: str, target: Any, args: Sequence[Any], kwargs: dict, fn: Any) -> tuple[int, float]:
    """(linear's bias after its operands, addmm's before them)"""
    shapes = _operand_shapes(target, args, kwargs)
    return _matmul_estimate(
        shapes[:2] if op == "linear" else shapes[1:3] if op == "addmm" else shapes
    )


def _quantiles(
    op: str, target: Any, args: Sequence[Any], kwargs: dict, fn: Any
) -> tuple[int, float]:
    """Each of q's values over the input (a bound: its size)."""
    shapes = _operand_shapes(target, args, kwargs)
    n = _prod(shapes[0]) * (_prod(shapes[1]) if len(shapes) > 1 else 1) if shapes else 1
    return n, float(n)


#: The ops with a rule of their own, by name: one lookup, not a chain of tests.
PRICE_RULES: dict[str, Estimator] = {
    **dict.fromkeys(FACTORIES, _factory),
    **dict.fromkeys(_SAMPLERS, _elements(lambda o, t, a, k, f: _sampler_estimate(o, a, k))),
    **dict.fromkeys(
        _FROM_DATA, _elements(lambda o, t, a, k, f: _data_elements(_arg(a, k, 0, "data")))
    ),
    **dict.fromkeys(_RANGES, _range),
    **dict.fromkeys(JACOBIANS, lambda o, t, a, k, f: _jacobian_estimate(a, k)),
    **dict.fromkeys(_FACTORISATIONS, lambda o, t, a, k, f: _factorisation_estimate(t, a, k)),
    **dict.fromkeys(
        _RESAMPLES,
        lambda o, t, a, k, f: _resample_estimate(a, k, _shape_of(a[0]) if a else None, f),
    ),
    **dict.fromkeys(_EXPANDS, _expand),
    **dict.fromkeys(_REPEATS, _repeat),
    **dict.fromkeys(_JOINS, _join),
    **dict.fromkeys(_PRODUCTS, _product),
    **dict.fromkeys(_MATMULS, _matmul),
    **dict.fromkeys(
        ("bilinear", "Bilinear"),
        lambda o, t, a, k, f: _bilinear_estimate(_operand_shapes(t, a, k), f),
    ),
    **dict.fromkeys(_QUANTILES, _quantiles),
    **dict.fromkeys(_CONVOLUTIONS, lambda o, t, a, k, f: _conv_estimate(o, f, a, k)),
    **dict.fromkeys(
        _ATTENTION, lambda o, t, a, k, f: _attention_estimate(o, _operand_shapes(t, a, k), f)
    ),
    **dict.fromkeys(_HISTOGRAMS, _elements(lambda o, t, a, k, f: _histogram_estimate(o, t, a, k))),
    **dict.fromkeys(_GROWERS, _elements(lambda o, t, a, k, f: _grower_estimate(o, t, a, k))),
    **dict.fromkeys(_LOOKUPS, _elements(_lookup_estimate)),
    **dict.fromkeys(_REDUCTIONS, lambda o, t, a, k, f: _reduction_estimate(o, t, a, k)),
    **dict.fromkeys(_POOLS, _pool_both),
    **dict.fromkeys(_LOSSES, lambda o, t, a, k, f: _loss_estimate(o, f, a, k)),
    "getitem": _elements(lambda o, t, a, k, f: _index_estimate(a[0], a[1]) if len(a) == 2 else 0),
    "mgrid": _elements(lambda o, t, a, k, f: _grid_estimate(a[1]) if len(a) == 2 else 0),
    "einsum": lambda o, t, a, k, f: _einsum_estimate(a),
}


def first_operand_elements(args: Sequence[Any], kwargs: dict) -> int:
    """Elements of a call's first array operand (what a container passes on)."""
    shapes = _operand_shapes(None, args, kwargs)
    return _prod(shapes[0]) if shapes else 0


def estimate(
    op: str, target: Any, args: Sequence[Any], kwargs: dict, fn: Any = None
) -> tuple[int, float]:
    """(elements of the result, floating-point operations) of ``op`` on ``target`` (a
    method's object) with ``args`` and ``kwargs``, before it runs (``fn``: the module
    called, whose settings some rules read)."""
    short = op.rsplit(".", 1)[-1]
    rule = PRICE_RULES.get(short)
    if rule is not None:
        return rule(short, target, args, kwargs, fn)
    if not kwargs:
        only = args[0] if target is None and len(args) == 1 else target if not args else None
        if type(only) is torch.Tensor:  # one tensor operand (most calls): its size
            n = only.numel()
            return n, float(n)
    return _broadcast(short, target, args, kwargs, fn)
