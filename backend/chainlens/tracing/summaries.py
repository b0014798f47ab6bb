"""TensorView: a tensor as the client sees it — shape, dtype, stats, and values when small.

Computed after the run (never inside autograd hooks, which on a GPU would sync per
tensor), in numpy, which measured 4-10x cheaper than chained torch reductions.
Values are written in the shortest decimal that reads back as the same float32
(orjson's float32 formatting), so the JSON stays small and exact.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import orjson
import torch

from ..schema import Stats, TensorView

MAX_VALUES = 64

_NONFINITE = {"nan": "nan", "inf": "inf", "-inf": "-inf"}


def number(x: float) -> float | str:
    """A float for JSON: non-finite numbers become the strings API.md names."""
    if math.isfinite(x):
        return x
    if math.isnan(x):
        return "nan"
    return "inf" if x > 0 else "-inf"


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _values(arr: np.ndarray) -> Any:
    if arr.dtype == np.float32 or arr.dtype == np.float16:
        arr32 = arr.astype(np.float32, copy=False)
        if np.isfinite(arr32).all():
            out = orjson.loads(orjson.dumps(np.ascontiguousarray(arr32.reshape(-1) if arr32.ndim == 0
                                                                 else arr32),
                                            option=orjson.OPT_SERIALIZE_NUMPY))
            return out[0] if arr32.ndim == 0 else out
    if arr.dtype.kind == "f":
        return _map_nonfinite(arr.tolist())
    if arr.dtype.kind == "c":
        return _map_nonfinite(np.abs(arr).tolist())
    return arr.tolist()


def _map_nonfinite(v: Any) -> Any:
    if isinstance(v, list):
        return [_map_nonfinite(x) for x in v]
    if isinstance(v, float):
        return number(v)
    return v


def _stats(arr: np.ndarray) -> Stats:
    if arr.dtype.kind == "b":
        arr = arr.astype(np.int64)
    if arr.dtype.kind == "c":
        arr = np.abs(arr)
    if arr.size == 0:
        return Stats(min=None, max=None, mean=None, std=None, norm=None, nan=0, inf=0)
    if arr.dtype.kind in "iu":
        f = arr.astype(np.float64)
        return Stats(min=int(arr.min()), max=int(arr.max()), mean=float(f.mean()),
                     std=float(f.std(ddof=1)) if f.size > 1 else 0.0,
                     norm=float(np.sqrt((f * f).sum())), nan=0, inf=0)
    a = arr.astype(np.float64, copy=False)
    finite = np.isfinite(a)
    nan = int(np.isnan(a).sum())
    inf = int(a.size - nan - finite.sum())
    if nan or inf:
        a = a[finite]
        if a.size == 0:
            return Stats(min=None, max=None, mean=None, std=None, norm=None, nan=nan, inf=inf)
    mean = float(a.mean())
    return Stats(
        min=float(a.min()), max=float(a.max()), mean=mean,
        std=number(float(a.std(ddof=1))) if a.size > 1 else 0.0,
        norm=number(float(np.sqrt(np.dot(a.ravel(), a.ravel())))), nan=nan, inf=inf,
    )


def view(t: torch.Tensor | np.ndarray) -> TensorView:
    """The TensorView of one tensor (or numpy array)."""
    if isinstance(t, torch.Tensor):
        t = t.detach()
        shape = list(t.shape)
        dtype = _dtype_name(t.dtype)
        device = str(t.device)
        if t.dtype == torch.bfloat16:
            t = t.float()
        arr = t.cpu().resolve_conj().resolve_neg().numpy() if t.device.type != "meta" else None
    else:
        arr = t
        shape = list(arr.shape)
        dtype = str(arr.dtype)
        device = "numpy"
    numel = int(np.prod(shape)) if shape else 1
    if arr is None:
        return TensorView(shape=shape, dtype=dtype, device=device, numel=numel)
    values = _values(arr) if numel <= MAX_VALUES else None
    return TensorView.model_construct(shape=shape, dtype=dtype, device=device, numel=numel,
                                      values=values, stats=_stats(arr))


class Summarizer:
    """Interns TensorViews by tensor identity: a gradient shown in a step and on its
    node is summarised once."""

    def __init__(self) -> None:
        self._cache: dict[int, tuple[Any, TensorView]] = {}

    def __call__(self, t: torch.Tensor | None) -> TensorView | None:
        if t is None:
            return None
        hit = self._cache.get(id(t))
        if hit is not None and hit[0] is t:
            return hit[1]
        v = view(t)
        self._cache[id(t)] = (t, v)
        return v
