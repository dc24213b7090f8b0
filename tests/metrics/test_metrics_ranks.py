"""The bucketed rank counter against a plain sort, on values chosen to stress its buckets."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from miad.metrics.curves import distinct_positives
from miad.metrics.ranks import SortedPool, build_bucket_pool, canonical, monotone_keys


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_monotone_keys_order_like_the_floats(dtype) -> None:
    info = np.finfo(dtype)
    special = [
        -np.inf,
        -info.max,
        -1.5,
        -info.tiny,
        -info.smallest_subnormal,
        0.0,
        info.smallest_subnormal,
        info.tiny,
        1.0,
        1.0 + info.eps,
        info.max,
        np.inf,
    ]
    values = np.array(special, dtype=dtype)
    keys = monotone_keys(canonical(values, dtype))
    assert np.all(keys[1:] > keys[:-1])
    zeros = monotone_keys(canonical(np.array([-0.0, 0.0], dtype), dtype))
    assert zeros[0] == zeros[1]  # -0.0 == +0.0 as floats, so they must share a key


@st.composite
def clustered(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.dtype]:
    """Values packed a few ulps apart around one base (many positives per bucket), signed zeros, ties."""
    dtype = np.dtype(draw(st.sampled_from([np.float32, np.float64])))
    base = draw(st.sampled_from([0.0, 1.0, -1.0, 1e-30, -3.0, 1e30]))
    spread = draw(st.sampled_from([1, 3, 1000, 2**20]))
    n = draw(st.integers(1, 300))
    steps = np.array(draw(st.lists(st.integers(-50, 50), min_size=n, max_size=n)))
    values = (base + steps * spread * np.finfo(dtype).eps * max(abs(base), 1.0)).astype(dtype)
    if draw(st.booleans()):
        values[steps % 7 == 0] = -0.0
    positive = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    return values, positive, dtype


@settings(max_examples=80, deadline=None)
@given(clustered(), st.sampled_from([1, 2**17, 2**22]))
def test_bucket_pool_counts_equal_a_full_sort(data, max_buckets: int) -> None:
    values, positive, dtype = data
    u = distinct_positives(values[positive])[0]
    pool = build_bucket_pool(u, [values.reshape(1, 1, -1)], values[positive], dtype, max_buckets)
    reference = SortedPool(values[~positive])
    below, equal = pool.below_equal(u)
    ref_below, ref_equal = reference.below_equal(u)
    assert pool.size == reference.size
    np.testing.assert_array_equal(below, ref_below)
    np.testing.assert_array_equal(equal, ref_equal)


def test_pools_split_over_blocks_and_chunks_count_the_same(monkeypatch) -> None:
    import miad.metrics.ranks as ranks

    rng = np.random.default_rng(0)
    maps = rng.integers(0, 50, (6, 5, 7)).astype(np.float32) / 3
    positive = rng.random(maps.shape) < 0.2
    u = distinct_positives(maps[positive])[0]
    whole = build_bucket_pool(u, [maps], maps[positive], np.dtype(np.float32))
    monkeypatch.setattr(ranks, "CHUNK_PIXELS", 16)  # many chunks, blocks cut mid-image
    split = build_bucket_pool(u, [maps[:2], maps[2:3], maps[3:]], maps[positive], np.dtype(np.float32))
    np.testing.assert_array_equal(whole.below, split.below)
    np.testing.assert_array_equal(whole.equal, split.equal)


def test_querying_a_value_the_pool_was_not_built_for_fails() -> None:
    values = np.array([0.1, 0.2, 0.3], dtype=np.float32)
    pool = build_bucket_pool(values[:1], [values[None, None]], values[:1], np.dtype(np.float32))
    with pytest.raises(ValueError, match="built for"):
        pool.below_equal(values[1:2])
