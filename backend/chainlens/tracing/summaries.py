"""TensorView: a tensor as the client sees it — shape, dtype, stats, and values when small.

Computed after the run (never inside autograd hooks, which on a GPU would sync per
tensor). Views are plain dicts in the wire form of ``schema.TensorView``: the Run is
validated once at the end instead of constructing thousands of models.

Small tensors (the common case: 3000 of them in an unrolled RNN) get their stats in
plain Python from the values already extracted; large ones in a few numpy passes
without float64 copies. Values are written in the shortest decimal that reads back
as the same float32 (orjson's float32 formatting), so the JSON stays small and exact.
"""

from __future__ import annotations

import math
from typing import Any, overload

import numpy as np
import orjson
import torch

from ..schema import StatsDict, TensorViewDict

MAX_VALUES = 64
#: Tensors sent as statistics also carry a histogram of this many bins (from a sample).
HIST_BINS = 20
HIST_SAMPLE = 16_384

View = TensorViewDict


#: The strings API.md writes for numbers that are not finite, and what each stands for.
NON_FINITE_TEXT = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def number(x: float) -> float | str:
    """A float for JSON: non-finite numbers become the strings API.md names."""
    if math.isfinite(x):
        return x
    if math.isnan(x):
        return "nan"
    return "inf" if x > 0 else "-inf"


def _flat_values(arr: np.ndarray) -> list:
    """The elements as Python numbers, float32 in their shortest decimal form."""
    flat = np.ascontiguousarray(arr).reshape(-1)
    if flat.dtype == np.float32:
        return orjson.loads(orjson.dumps(flat, option=orjson.OPT_SERIALIZE_NUMPY))
    if flat.dtype.kind == "c":
        return np.abs(flat).tolist()
    return flat.tolist()


def nest(flat: list, shape: tuple[int, ...]) -> Any:
    """A row-major flat list in ``shape`` as nested lists (a number for a 0-d shape)."""
    if not shape:
        return flat[0]
    if len(shape) == 1:
        return flat
    if len(shape) == 2:
        c = shape[1]
        return [flat[i * c : (i + 1) * c] for i in range(shape[0])]
    step = len(flat) // shape[0] if shape[0] else 0
    return [nest(flat[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]


def _no_finite_stats(nan: int, inf: int) -> StatsDict:
    """The stats of values none of which is finite (or of no values)."""
    return {
        "min": None,
        "max": None,
        "mean": None,
        "std": None,
        "norm": None,
        "nan": nan,
        "inf": inf,
        "hist": None,
    }


def _small_stats(flat: list) -> StatsDict:
    nan = inf = 0
    finite: list[float] = []
    for v in flat:
        if v != v:  # NaN (None from orjson is handled by the caller)
            nan += 1
        elif v in (math.inf, -math.inf):
            inf += 1
        else:
            finite.append(float(v))
    n = len(finite)
    if n == 0:
        return _no_finite_stats(nan, inf)
    mean = math.fsum(finite) / n
    var = math.fsum((x - mean) ** 2 for x in finite) / (n - 1) if n > 1 else 0.0
    return {
        "min": min(finite),
        "max": max(finite),
        "mean": mean,
        "std": math.sqrt(var),
        "norm": math.sqrt(math.fsum(x * x for x in finite)),
        "nan": nan,
        "inf": inf,
        "hist": None,
    }


#: Large tensors are reduced a chunk at a time, each chunk read from memory once for all
#: four reductions while it stays in cache: over a 157 MB input, four whole passes took
#: 82 ms and chunks 48 ms (and float64 totals of float32 chunks lose less than one sum).
#: 512 KB chunks fit a 2 MB L2 and halve the calls of 256 KB ones (54 vs 61 ms).
CHUNK = 1 << 17


@np.errstate(over="ignore")  # a float32 sum of squares past 3.4e38 is inf, as torch's norm
def _reduce(a: np.ndarray, wide: bool = False) -> tuple[float, float, Any, Any]:
    """Sum, sum of squares, min and max of a flat array; ``wide`` sums in float64 (where
    the array's own type overflowed). A float chunk is summed by torch, whose cascade sum
    is as exact as numpy's pairwise one and 2.5x as fast on float32 (18 vs 45 µs a chunk)."""
    total = sq = 0.0
    lo = hi = a[0]
    dtype = np.float64 if wide else None
    by_torch = not wide and a.dtype in (np.float32, np.float64) and a.flags.writeable
    for start in range(0, a.size, CHUNK):
        c = a[start : start + CHUNK]
        total += float(torch.from_numpy(c).sum() if by_torch else np.add.reduce(c, dtype=dtype))
        sq += float(np.dot(c, c))
        lo = min(lo, c.min())
        hi = max(hi, c.max())
    return total, sq, lo, hi


def _large_stats(arr: np.ndarray) -> StatsDict:
    """One pass over memory and no temporaries in the common case (see CHUNK)."""
    a = np.ascontiguousarray(arr).reshape(-1)
    if a.dtype.kind == "b":
        a = a.astype(np.int64)
    elif a.dtype.kind == "c":
        a = np.abs(a)
    elif a.dtype.kind in "iu":
        a = a.astype(np.float64)
    nan = inf = 0
    total, sq, lo, hi = _reduce(a) if a.size else (0.0, 0.0, None, None)
    if not math.isfinite(total):
        mask = np.isfinite(a)
        nan = int(np.count_nonzero(np.isnan(a)))
        inf = int(a.size - nan - np.count_nonzero(mask))
        a = a[mask]
        if a.size:
            total, sq, lo, hi = _reduce(a, wide=True)
    n = a.size
    if n == 0:
        return _no_finite_stats(nan, inf)
    mean = total / n
    var = (sq - n * mean * mean) / (n - 1) if n > 1 else 0.0
    if n > 1 and var < 1e-4 * mean * mean:  # cancellation: take the two-pass variance
        d = a - a.dtype.type(mean)
        var = float(np.dot(d, d)) / (n - 1)
    cast = int if arr.dtype.kind in "iub" else float
    assert lo is not None and hi is not None  # (an empty array was answered above)
    return {
        "min": cast(lo),
        "max": cast(hi),
        "mean": mean,
        "std": number(math.sqrt(max(var, 0.0))),
        "norm": number(math.sqrt(sq)),
        "nan": nan,
        "inf": inf,
        "hist": _histogram(a, float(lo), float(hi)),
    }


def _histogram(a: np.ndarray, lo: float, hi: float) -> list[int]:
    """HIST_BINS equal bins from min to max (of an evenly strided sample past HIST_SAMPLE
    elements): the shape of a tensor too large to send."""
    step = max(1, a.size // HIST_SAMPLE)
    sample = a[::step].astype(np.float64)
    width = hi - lo
    if not width > 0 or not math.isfinite(width):
        return [int(sample.size)] + [0] * (HIST_BINS - 1)
    sample -= lo  # (in place: each temporary of a 16k sample is a fresh 128 KB allocation)
    sample *= HIST_BINS / width
    bins = sample.astype(np.int64)  # >= 0: lo is the minimum
    np.minimum(bins, HIST_BINS - 1, out=bins)  # the maximum falls in the last bin (np.clip: 70 µs)
    return np.bincount(bins, minlength=HIST_BINS).tolist()


def _dense(t: torch.Tensor) -> bool:
    """Whether ``t``'s elements fill ``numel`` consecutive places of its storage (its strides,
    sorted, are a contiguous tensor's: a permutation of one, e.g. a transpose)."""
    expected = 1
    for stride, size in sorted(
        (st, sz) for sz, st in zip(t.shape, t.stride(), strict=False) if sz != 1
    ):
        if stride != expected:
            return False
        expected *= size
    return True


def view(t: torch.Tensor | np.ndarray) -> View:
    """The TensorView (wire form) of one tensor or numpy array."""
    if isinstance(t, torch.Tensor):
        t = t.detach()
        shape = tuple(t.shape)
        dtype = str(t.dtype).removeprefix("torch.")
        device = str(t.device)
        if t.dtype in (torch.bfloat16, torch.float16):
            t = t.float()
        t = t.cpu().resolve_conj().resolve_neg()
        if t.numel() > MAX_VALUES and _dense(t):
            # stats in memory order: no copy of a transposed tensor, and the histogram's
            # sample is the same for every dense view of these elements (see _data_key)
            t = t.as_strided((t.numel(),), (1,))
        arr = t.numpy()
    else:
        arr = t
        shape = tuple(arr.shape)
        dtype = str(arr.dtype)
        device = "numpy"
    numel = math.prod(shape)
    out: View = {
        "shape": list(shape),
        "dtype": dtype,
        "device": device,
        "numel": numel,
        "values": None,
        "stats": None,
    }
    if numel <= MAX_VALUES:
        flat = _flat_values(arr)
        if None in flat or arr.dtype.kind == "f" and not np.isfinite(arr).all():
            flat = [number(v) for v in arr.reshape(-1).astype(np.float64).tolist()]
            out["stats"] = _small_stats([float(v) for v in flat])
        else:
            st = out["stats"] = _small_stats(flat)
            if arr.dtype.kind in "iub" and st["min"] is not None and st["max"] is not None:
                st["min"], st["max"] = int(st["min"]), int(st["max"])
        out["values"] = nest(flat, shape)
    else:
        out["stats"] = _large_stats(arr)
    return out


_NAMES: dict[Any, str] = {}


def _name(obj: Any) -> str:
    """``torch.float32`` -> ``float32``, ``device('cpu')`` -> ``cpu``; cached."""
    name = _NAMES.get(obj)
    if name is None:
        name = _NAMES[obj] = str(obj).removeprefix("torch.")
    return name


def _empty_view(t: torch.Tensor) -> View:
    shape = list(t.shape)
    return {
        "shape": shape,
        "dtype": _name(t.dtype),
        "device": _name(t.device),
        "numel": t.numel(),
        "values": None,
        "stats": None,
    }


_BATCHED = (torch.float32, torch.float64)

#: Tensors past this many elements are matched by their data as well as by identity.
SHARED_MIN = 4096


def _data_key(t: torch.Tensor) -> tuple | None:
    """What decides a tensor's stats: the same elements, unchanged. A dense tensor covers
    ``numel`` elements from its offset whatever its shape and strides, so a transposed
    weight or a flattened feature map has its source's stats; others are matched by
    layout. The cache holds the tensor, so its storage cannot be freed and reused meanwhile."""
    try:  # (tensors without storage, or without a version counter: inference mode)
        layout = t.numel() if _dense(t) else (t.shape, t.stride())
        return (
            t.untyped_storage().data_ptr(),
            t.storage_offset(),
            layout,
            t.dtype,
            t.device,
            t._version,
        )
    except (RuntimeError, NotImplementedError):
        return None


#: Tensors of up to this many elements are summarised in batches (one copy, segment
#: reductions: a 256-element gradient alone costs ~0.15 ms of numpy calls, and an RNN's
#: steps have thousands); larger ones one at a time, without a copy, where the passes
#: over their data dominate. At most HIST_SAMPLE, so a batched tensor's histogram counts
#: every element, as ``view``'s does.
BATCH_MAX = HIST_SAMPLE
#: Elements in one batch (its float64 working copies take 8 bytes each).
BATCH_ELEMENTS = 1 << 20


def _stats_table(
    a64: np.ndarray, arr: np.ndarray, starts: np.ndarray, sizes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per segment of ``arr`` (``a64`` is it as float64): whether its sums are not finite
    (a NaN or inf in it, or float64 values too large to sum: it is then summarised alone),
    and min, max, mean, std and norm (meaningful where they are)."""
    sums = np.add.reduceat(a64, starts)
    sq = np.add.reduceat(a64 * a64, starts)
    bad = ~(np.isfinite(sums) & np.isfinite(sq))
    means = sums / sizes
    denom = np.maximum(sizes - 1, 1)
    var = np.maximum(sq - sizes * means * means, 0.0) / denom
    cancelled = var < 1e-4 * means * means  # as in _large_stats: take the two-pass variance
    if cancelled.any():
        d = a64 - np.repeat(means, sizes)
        var = np.where(cancelled, np.add.reduceat(d * d, starts) / denom, var)
    var[sizes == 1] = 0.0
    table = np.stack(
        [
            np.minimum.reduceat(arr, starts).astype(np.float64),
            np.maximum.reduceat(arr, starts).astype(np.float64),
            means,
            np.sqrt(var),
            np.sqrt(sq),
        ],
        axis=1,
    )
    return bad, table


def _histograms(
    a64: np.ndarray, groups: list[tuple[int, int]], lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    """``_histogram`` of every segment at once (none larger than HIST_SAMPLE, so every
    element counts): the same bins, one bincount per shape. ``groups`` are the stacks in
    ``a64``, (tensors, elements each): each is a matrix whose rows are binned against
    their own min and scale by broadcasting (expanding them per element cost 3x more)."""
    width = hi - lo
    spread = width > 0
    scale = np.where(spread, HIST_BINS / np.where(spread, width, 1.0), 0.0)
    counts = []
    start = row = 0
    for k, n in groups:
        block = a64[start : start + k * n].reshape(k, n) - lo[row : row + k, None]
        block *= scale[row : row + k, None]
        bins = block.astype(np.int64)
        np.minimum(bins, HIST_BINS - 1, out=bins)
        np.maximum(bins, 0, out=bins)  # a segment with non-finite values (redone alone)
        bins += np.arange(0, k * HIST_BINS, HIST_BINS)[:, None]
        counts.append(np.bincount(bins.reshape(-1), minlength=k * HIST_BINS))
        start += k * n
        row += k
    return np.concatenate(counts).reshape(-1, HIST_BINS)


def _rows(table: np.ndarray, narrow: bool) -> list[list[float]]:
    """The stats table as Python lists; ``narrow``: at float32 precision (shorter JSON,
    and small tensors' values are exact anyway), except a std or norm of values near
    float32's limit, which does not fit it."""
    if not narrow:
        return table.tolist()
    small = table.astype(np.float32)
    rows = orjson.loads(orjson.dumps(small, option=orjson.OPT_SERIALIZE_NUMPY))
    for i in np.flatnonzero(~np.isfinite(small).all(axis=1)).tolist():
        rows[i][3:] = table[i, 3:].tolist()
    return rows


@np.errstate(invalid="ignore", over="ignore")
def _fill_batch(items: list[tuple[torch.Tensor, View]]) -> bool:
    """Fill many views of one dtype and device at once: one stack per shape (an RNN's
    thousands of tensors have a handful of shapes), one copy to the CPU, segment
    reductions for the stats, and either one orjson pass per shape for the values, which
    comes back nested as each tensor's shape (small tensors), or one bincount for the
    histograms (the others). True when a value was not finite (those views, and any
    whose sums overflow, are filled one at a time)."""
    by_shape: dict[torch.Size, list[tuple[torch.Tensor, View]]] = {}
    for item in items:
        by_shape.setdefault(item[0].shape, []).append(item)
    with torch.no_grad():
        stacks = [torch.stack([t for t, _ in group]).cpu() for group in by_shape.values()]
    items = [item for group in by_shape.values() for item in group]
    arr = np.concatenate([s.numpy().reshape(-1) for s in stacks])
    sizes = np.fromiter((v["numel"] for _, v in items), dtype=np.int64, count=len(items))
    starts = np.zeros(len(sizes), dtype=np.int64)
    np.cumsum(sizes[:-1], out=starts[1:])
    a64 = arr.astype(np.float64)
    bad, table = _stats_table(a64, arr, starts, sizes)
    small = int(sizes.max()) <= MAX_VALUES
    values: list[Any] = []
    if small:
        for stack in stacks:
            a = stack.numpy()
            values += (
                orjson.loads(orjson.dumps(a, option=orjson.OPT_SERIALIZE_NUMPY))
                if a.dtype == np.float32
                else a.tolist()
            )
    else:
        groups = [(len(stack), stack[0].numel()) for stack in stacks]
        hists = _histograms(a64, groups, table[:, 0], table[:, 1]).tolist()
    stats_rows = _rows(table, narrow=small and arr.dtype == np.float32)
    nonfinite = False
    for i, ((t, v), alone, row) in enumerate(zip(items, bad.tolist(), stats_rows, strict=False)):
        if alone:
            v.update(view(t))
            nonfinite = nonfinite or not Summarizer.finite(v)
            continue
        v["stats"] = {
            "min": row[0],
            "max": row[1],
            "mean": row[2],
            "std": row[3],
            "norm": row[4],
            "nan": 0,
            "inf": 0,
            "hist": None if small else hists[i],
        }
        if small:
            v["values"] = values[i]
    return nonfinite


class Summarizer:
    """Interns views by tensor identity (a gradient shown in a step and on its node is
    summarised once) and fills them in batches: ``__call__`` hands out the view dict at
    once, ``flush`` computes every pending one."""

    def __init__(self) -> None:
        self._cache: dict[int, tuple[Any, View]] = {}
        #: Large tensors by what they show (see _data_key): distinct tensor objects over
        #: the same data, e.g. an input and the node that saved it, share one view, so a
        #: 39M-element input is reduced once rather than twice; a reshaped or transposed
        #: one shares its stats.
        self._by_data: dict[tuple, View] = {}
        self._pending: list[tuple[torch.Tensor, View]] = []
        #: (view, the view whose stats it shares): the same elements in another shape.
        self._aliases: list[tuple[View, View]] = []
        self.nonfinite_seen = False

    @overload
    def __call__(self, t: torch.Tensor) -> View: ...

    @overload
    def __call__(self, t: None) -> None: ...

    def __call__(self, t: torch.Tensor | None) -> View | None:
        if t is None:
            return None
        hit = self._cache.get(id(t))
        if hit is not None and hit[0] is t:
            return hit[1]
        if isinstance(t, torch.Tensor):
            key = _data_key(t) if t.numel() > SHARED_MIN else None
            source = self._by_data.get(key) if key is not None else None
            v = _empty_view(t)
            if source is None:
                self._pending.append((t, v))
                if key is not None:
                    self._by_data[key] = v
            elif source["shape"] == v["shape"]:
                v = source
            else:
                self._aliases.append((v, source))
        else:
            v = view(t)
        self._cache[id(t)] = (t, v)
        return v

    def flush(self) -> None:
        """Small and mid-sized tensors in batches by dtype, device and whether their
        values are sent; the others one at a time."""
        batches: dict[tuple, list[tuple[torch.Tensor, View]]] = {}
        filled: dict[tuple, int] = {}
        for t, v in self._pending:
            n = v["numel"]
            if 0 < n <= BATCH_MAX and t.dtype in _BATCHED and t.layout == torch.strided:
                key = (t.dtype, t.device, n <= MAX_VALUES)
                if filled.get(key, 0) + n > BATCH_ELEMENTS:
                    self._fill(batches.pop(key))
                    filled[key] = 0
                batches.setdefault(key, []).append((t, v))
                filled[key] = filled.get(key, 0) + n
            else:
                v.update(view(t))
                if not self.finite(v):
                    self.nonfinite_seen = True
        self._pending = []
        for items in batches.values():
            self._fill(items)
        for v, source in self._aliases:
            v["stats"] = source["stats"]
        self._aliases = []

    def _fill(self, items: list[tuple[torch.Tensor, View]]) -> None:
        if _fill_batch(items):
            self.nonfinite_seen = True

    @staticmethod
    def finite(v: View) -> bool:
        st = v["stats"]
        return st is None or (st["nan"] == 0 and st["inf"] == 0)
