"""TensorView statistics of large tensors: histogram counts add up whatever the values."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

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


#: Shapes as a run has them: scalars, rows, matrices, feature maps; repeated and
#: interleaved, as the batch groups them by shape and must give each view back its own.
SHAPES = st.sampled_from(
    [(), (1,), (3,), (1, 16), (16,), (8, 8), (2, 3, 4), (1, 2, 3, 3), (300,), (40, 50)]
)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        arrays(np.float32, st.integers(1, 3000) | SHAPES, elements=floats), min_size=1, max_size=12
    )
)
def test_batched_views_are_exact(arrays_: list[np.ndarray]) -> None:
    """The Summarizer fills small and mid-sized tensors in batches: values, counts, bins,
    min and max as ``view`` gives them one at a time, and mean, std and norm as float64
    computes them (the single path sums squares in float32, so it underflows and
    overflows sooner). Tensors with non-finite values are filled one at a time."""
    s = Summarizer()
    tensors = [torch.from_numpy(a) for a in arrays_]
    batched = [s(t) for t in tensors]
    s.flush()
    for t, got in zip(tensors, batched, strict=True):
        alone = view(t)
        assert got["shape"] == list(t.shape)
        assert got["values"] == alone["values"]
        a, b = got["stats"], alone["stats"]
        for key in ("nan", "inf", "hist", "min", "max"):
            assert a[key] == b[key], key
        x = t.numpy().astype(np.float64).reshape(-1)
        if not np.isfinite(x).all():
            assert a == b
            continue
        n = x.size
        expected = {
            "mean": x.mean(),
            "std": x.std(ddof=1) if n > 1 else 0.0,
            "norm": np.sqrt(np.dot(x, x)),
        }
        scale = float(np.abs(x).max())
        for key, value in expected.items():
            # small tensors report float32, where it holds the number
            fits = abs(value) < float(np.finfo(np.float32).max)
            ulp = float(np.spacing(np.float32(abs(value)))) if fits else 0.0
            assert float(a[key]) == pytest.approx(value, rel=1e-6, abs=1e-7 * scale + ulp), key


def test_tensors_without_a_version_counter_are_summarised() -> None:
    """Large views are shared by data and version; an inference-mode tensor has no
    version counter, and gets a view of its own."""
    with torch.inference_mode():
        t = torch.arange(5000, dtype=torch.float32)
    s = Summarizer()
    got = s(t)
    s.flush()
    assert got["stats"]["min"] == 0.0 and got["stats"]["max"] == 4999.0
    assert got["stats"]["mean"] == pytest.approx(2499.5)


@pytest.mark.parametrize("numel", [5_000, 70_000])
def test_reshaped_and_transposed_views_share_their_sources_stats(numel: int) -> None:
    """The same elements in another shape (a transposed weight, a flattened feature map)
    are summarised once, in memory order, so every dense view of them has the same stats
    as it would alone; a strided slice, which shows other elements, has its own."""
    t = torch.randn(numel // 50, 50, generator=torch.Generator().manual_seed(3))
    s = Summarizer()
    views = [s(t), s(t.T), s(t.reshape(-1)), s(t[:, ::2])]
    s.flush()
    for other, shape in zip(views[1:3], ([50, numel // 50], [numel]), strict=True):
        assert other["shape"] == shape and other["stats"] == views[0]["stats"]
    alone = view(t)["stats"]
    assert view(t.T)["stats"] == alone
    for key in ("nan", "inf", "hist", "min", "max"):
        assert views[0]["stats"][key] == alone[key], key
    sliced = views[3]["stats"]
    assert sliced != views[0]["stats"] and sliced["max"] == float(t[:, ::2].max())


def test_float64_values_too_large_to_sum_are_summarised_alone_and_still_finite() -> None:
    big = torch.full((100,), 1e300, dtype=torch.float64)
    small = torch.arange(100, dtype=torch.float64)
    s = Summarizer()
    got = [s(big), s(small)]
    s.flush()
    assert got[0] == view(big) and got[0]["stats"]["max"] == 1e300
    assert got[1]["stats"]["mean"] == pytest.approx(49.5) and got[1]["stats"]["hist"] == [5] * 20
    assert not s.nonfinite_seen
