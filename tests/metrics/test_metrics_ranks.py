"""The bucketed rank counter against a plain sort, on values chosen to stress its buckets."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from miad.metrics import ranks
from miad.metrics.buckets import Buckets, canonical, monotone_keys
from miad.metrics.curves import distinct_positives
from miad.metrics.ranks import SortedPool, build_bucket_pool


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
@given(
    clustered(),
    st.sampled_from([1, 2**17, 2**22]),
    st.sampled_from(["none", "min", "middle"]),
    st.sampled_from([16, 2**20]),
)
def test_bucket_pool_counts_equal_a_full_sort(data, max_buckets: int, floor_at: str, band: int) -> None:
    with mock.patch.object(ranks, "BAND_VALUES", band):  # band < number of values: one pass per band
        check_against_sort(data, max_buckets, floor_at)


def check_against_sort(data, max_buckets: int, floor_at: str) -> None:
    values, positive, dtype = data
    u = distinct_positives(values[positive])[0]
    floor = {"none": -np.inf, "min": u[0] if u.size else -np.inf, "middle": np.median(values)}[floor_at]
    all_positive = bool((values > 0).all())
    sample = values[::3] if floor_at != "none" else None
    pool = build_bucket_pool(
        u, [values.reshape(1, 1, -1)], values[positive], dtype, floor, all_positive, sample, max_buckets
    )
    reference = SortedPool(values[~positive])
    below, equal = pool.below_equal(u)
    ref_below, ref_equal = reference.below_equal(u)
    ranked = u >= floor  # values below the floor are left unranked (0, 0) by design
    assert pool.size == reference.size
    assert pool.n_below_floor == np.count_nonzero(values[~positive] < floor)
    np.testing.assert_array_equal(below[ranked], ref_below[ranked])
    np.testing.assert_array_equal(equal[ranked], ref_equal[ranked])
    assert not below[~ranked].any() and not equal[~ranked].any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_raw_bit_keys_of_positive_values_match_the_general_keys(dtype) -> None:
    rng = np.random.default_rng(2)
    values = np.concatenate([rng.random(500) * 10.0 ** rng.integers(-30, 30, 500), [0.0]]).astype(dtype)
    u = np.unique(values[::3])
    buckets = Buckets.for_positives(u, dtype)
    np.testing.assert_array_equal(buckets.index_positive(values), buckets.index(canonical(values, dtype)))


@pytest.mark.parametrize("threads", [1, 3])
def test_pools_split_over_blocks_chunks_and_threads_count_the_same(monkeypatch, threads: int) -> None:
    monkeypatch.setattr(ranks, "THREADS", threads)
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
