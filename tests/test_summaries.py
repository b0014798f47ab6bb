"""TensorView statistics of large tensors: histogram counts add up whatever the values."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import pytest

from chainlens.tracing.summaries import HIST_BINS, HIST_SAMPLE, Summarizer, view

floats = st.floats(width=32, allow_nan=True, allow_infinity=True)


@settings(max_examples=200, deadline=None)
@given(arrays(np.float32, st.integers(65, 3000), elements=floats))
def test_histogram_of_any_float32_tensor(a: np.ndarray) -> None:
    stats = view(torch.from_numpy(a))["stats"]
    finite = a[np.isfinite(a)]
    assert stats["nan"] == int(np.isnan(a).sum()) and stats["inf"] == int(np.isinf(a).sum())
    if finite.size == 0:
        assert stats.get("hist") is None
        return
    hist = stats["hist"]
    assert len(hist) == HIST_BINS and min(hist) >= 0
    step = max(1, finite.size // HIST_SAMPLE)
    assert sum(hist) == finite[::step].size
    torch.testing.assert_close(torch.tensor(stats["min"]), torch.tensor(float(finite.min())))
    torch.testing.assert_close(torch.tensor(stats["max"]), torch.tensor(float(finite.max())))


def test_histogram_matches_numpy_on_a_spread_tensor() -> None:
    t = torch.randn(10_000, generator=torch.Generator().manual_seed(0))
    stats = view(t)["stats"]
    expected, _ = np.histogram(t.numpy(), bins=HIST_BINS, range=(float(t.min()), float(t.max())))
    # the last bin is closed in numpy and in ours; bins can differ by rounding at their edges
    assert np.abs(np.array(stats["hist"]) - expected).sum() <= 4


@settings(max_examples=50, deadline=None)
@given(st.lists(arrays(np.float32, st.integers(1, 3000), elements=floats), min_size=1, max_size=6))
def test_batched_views_equal_one_at_a_time(arrays_: list[np.ndarray]) -> None:
    """The Summarizer fills small and mid-sized tensors in batches: each view must be the
    one ``view`` computes alone (non-finite ones fall back to it)."""
    s = Summarizer()
    tensors = [torch.from_numpy(a) for a in arrays_]
    batched = [s(t) for t in tensors]
    s.flush()
    for t, got in zip(tensors, batched, strict=True):
        alone = view(t)
        assert got["values"] == alone["values"]
        a, b = got["stats"], alone["stats"]
        for key in ("nan", "inf", "hist", "min", "max"):
            assert a[key] == b[key], key
        scale = abs(b["min"] or 0.0) + abs(b["max"] or 0.0)  # rounding is relative to it
        for key in ("mean", "std", "norm"):
            if isinstance(b[key], float):
                assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-5 * scale), key
