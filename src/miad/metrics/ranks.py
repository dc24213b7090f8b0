"""Exact ranks of positive (anomalous) scores among negative (normal) scores, without sorting the negatives.

Every metric here (AUROC, AP, F1-max, AUPRO) needs, for each distinct positive score u, only the number of
negatives strictly below u and equal to u. Negative pixels are many (65M for 1,000 maps of 256x256) and
distinct positive scores few (~1M), and numpy's sort costs ~50 ns per float32 on our CI machine: sorting the
negatives alone (3 s) would spend the whole time budget. Hand-written instead, since no library call does it:

1. Floats map to unsigned integer keys with the same order (IEEE bit trick; -0.0 is first made +0.0).
2. Buckets adapted to the positives: the top 16 key bits pick a cell (1/128 of an octave for float32); a cell
   holding a positives gets ~4a equal-width sub-buckets, an empty cell one. bucket(x) is exactly monotone.
3. One pass over all pixels: np.bincount per bucket gives every value's count of pixels in lower buckets.
   Pixels in a bucket that holds positive values (few per bucket) are compared with those values directly,
   one vectorised layer per value of the bucket, and the comparisons are counted per value.
4. Positives pass through the same counts (so the pass needs no mask); their own counts are subtracted exactly.

Exact for any data; only the speed depends on the data (how many pixels share a bucket with positives).
`SortedPool` is the plain sort-based version, for small inputs (image scores) and as the test reference.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

CELL_BITS = 16  # cells = top 16 key bits: 256 kB lookup tables
OVERSAMPLE = 4  # sub-buckets per positive value in a cell: ~1 in 4 buckets holds a positive
MAX_BUCKETS = 2**22  # 32 MB of int64 counts at most
CHUNK_PIXELS = 2**22  # pixels processed at once: bounds the temporaries to ~100 MB


def monotone_keys(values: np.ndarray) -> np.ndarray:
    """Unsigned integer keys ordered like the float values (float32 -> uint32, float64 -> uint64).

    -0.0 must already be canonicalised to +0.0 (see `canonical`), since both compare equal as floats.
    """
    signed = {4: np.int32, 8: np.int64}[values.dtype.itemsize]
    bits = values.view(signed)
    top = np.array(np.iinfo(signed).min, dtype=signed)
    # Non-negative floats: set the sign bit; negative floats: flip every bit (larger magnitude = smaller key).
    keys = bits ^ ((bits >> (8 * values.dtype.itemsize - 1)) | top)
    return keys.view(np.dtype(f"u{values.dtype.itemsize}"))


def canonical(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """A new contiguous array in `dtype` with -0.0 turned into +0.0 (x + 0.0 does exactly that in IEEE)."""
    dtype = np.dtype(dtype)
    return np.add(np.asarray(values), dtype.type(0), dtype=dtype)


@dataclass(frozen=True)
class Buckets:
    """bucket(x) = (key >> shift[cell]) + offset[cell], cell = top CELL_BITS key bits; non-decreasing in x.

    A cell with 2**s sub-buckets uses shift = low_bits - s. Since the cell bits are a multiple of 2**shift,
    key >> shift = (cell << s) + (low bits >> shift) exactly, so a per-cell offset (wrapping unsigned
    arithmetic, exact modulo 2**bits) places the cell's sub-buckets after those of all lower cells.
    """

    offset: np.ndarray  # [2**CELL_BITS], key dtype
    shift: np.ndarray  # [2**CELL_BITS], key dtype
    count: int
    dtype: np.dtype  # score dtype

    @staticmethod
    def for_positives(u: np.ndarray, dtype: np.dtype, max_buckets: int = MAX_BUCKETS) -> Buckets:
        dtype = np.dtype(dtype)
        key_dtype = np.dtype(f"u{dtype.itemsize}")
        low_bits = 8 * dtype.itemsize - CELL_BITS
        cells = (monotone_keys(canonical(u, dtype)) >> low_bits).astype(np.intp)
        per_cell = np.bincount(cells, minlength=2**CELL_BITS)
        oversample = OVERSAMPLE
        while True:
            want = np.ceil(np.log2(np.maximum(per_cell * oversample, 1))).astype(np.int64)
            sub_bits = np.minimum(want, low_bits)
            total = int((1 << sub_bits).sum())
            if total <= max_buckets or oversample <= 2.0**-CELL_BITS:
                break
            oversample /= 2
        start = np.zeros(sub_bits.size, dtype=np.int64)
        np.cumsum(1 << sub_bits[:-1], out=start[1:])
        cell_ids = np.arange(sub_bits.size, dtype=np.uint64)
        # Unsigned arithmetic wraps; the truncating cast keeps it exact modulo 2**(key bits).
        offset = start.astype(np.uint64) - (cell_ids << sub_bits.astype(np.uint64))
        return Buckets(offset.astype(key_dtype), (low_bits - sub_bits).astype(key_dtype), total, dtype)

    def index(self, canonical_values: np.ndarray) -> np.ndarray:
        """Bucket ids (unsigned, the key dtype) of values already passed through `canonical`."""
        keys = monotone_keys(canonical_values)
        cells = keys >> keys.dtype.type(8 * keys.dtype.itemsize - CELL_BITS)
        keys >>= self.shift[cells]
        keys += self.offset[cells]
        return keys


class SortedPool:
    """Negatives kept fully sorted: the simple exact version (small inputs, test reference)."""

    def __init__(self, negatives: np.ndarray) -> None:
        self.sorted = np.sort(negatives)
        self.size = int(self.sorted.size)

    def below_equal(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(count < u, count == u) for each value of ascending u."""
        left = np.searchsorted(self.sorted, u, side="left")
        right = np.searchsorted(self.sorted, u, side="right")
        return left.astype(np.int64), (right - left).astype(np.int64)


class BucketPool:
    """Counts of a set of images' negatives below / equal to each of a fixed set of positive values `u`."""

    def __init__(self, u: np.ndarray, below: np.ndarray, equal: np.ndarray, size: int) -> None:
        self.u, self.below, self.equal, self.size = u, below, equal, size

    def below_equal(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(negatives < u, negatives == u) for ascending values u, each one of the pool's positive values."""
        idx = np.searchsorted(self.u, u)
        if idx.size and (idx.max() >= self.u.size or not np.array_equal(self.u[idx], u)):
            raise ValueError("BucketPool can only rank the positive values it was built for")
        return self.below[idx], self.equal[idx]


@dataclass(frozen=True)
class _Layout:
    """Distinct positives per bucket: u[first[b] : first[b] + n_values[b]] lie in bucket b."""

    u: np.ndarray
    buckets: Buckets
    first: np.ndarray  # int64 [count]: number of values of u in lower buckets
    n_values: np.ndarray  # int64 [count]
    shared: np.ndarray  # bool [count]: the bucket holds some value of u

    @staticmethod
    def of(u: np.ndarray, dtype: np.dtype, max_buckets: int) -> _Layout:
        buckets = Buckets.for_positives(u, dtype, max_buckets)
        ub = buckets.index(canonical(u, buckets.dtype))  # non-decreasing, since u is ascending
        n_values = np.bincount(ub, minlength=buckets.count).astype(np.int64)
        first = np.zeros(buckets.count, dtype=np.int64)
        np.cumsum(n_values[:-1], out=first[1:])
        return _Layout(u, buckets, first, n_values, n_values > 0)


def _count_chunk(layout: _Layout, values: np.ndarray, clean: np.ndarray, slots: np.ndarray) -> None:
    """Add one chunk of canonical values.

    clean: per-bucket pixel counts (only buckets without positive values are used later).
    slots: for pixels in buckets holding positive values, counts per (global rank g among u, equal flag) at
    index 2g + equal, where g = number of values of u strictly below the pixel.
    """
    b = layout.buckets.index(values)
    clean += np.bincount(b, minlength=clean.size)
    shared = layout.shared[b]
    q, b = values[shared], b[shared]
    first, n_values = layout.first[b], layout.n_values[b]
    v = layout.u[first]
    rank = first + (q > v)  # most shared buckets hold one value: one comparison decides
    equal = q == v
    deeper = np.flatnonzero(n_values > 1)
    layer = 1
    while deeper.size:  # the rest: one vectorised comparison per further value of the bucket
        qd, v = q[deeper], layout.u[first[deeper] + layer]
        rank[deeper] += qd > v
        equal[deeper] |= qd == v
        layer += 1
        deeper = deeper[n_values[deeper] > layer]
    slots += np.bincount(2 * rank + equal, minlength=slots.size)


def build_bucket_pool(
    u: np.ndarray,
    maps: Iterable[np.ndarray],
    positives: np.ndarray,
    dtype: np.dtype,
    max_buckets: int = MAX_BUCKETS,
) -> BucketPool:
    """Ranks of the distinct ascending positive values `u` among the negatives of `maps`, in one pass.

    `maps`: blocks of all pixels of the pool's images, positives included; `positives`: the anomalous values
    inside those images (subtracted at the end). `u` may hold positives of other pools too (for breakdowns).
    """
    layout = _Layout.of(u, dtype, max_buckets)
    clean = np.zeros(layout.buckets.count, dtype=np.int64)
    slots = np.zeros(2 * (u.size + 1), dtype=np.int64)
    n_pixels = 0
    for block in maps:
        flat = block.reshape(-1)
        n_pixels += flat.size
        for start in range(0, flat.size, CHUNK_PIXELS):
            _count_chunk(layout, canonical(flat[start : start + CHUNK_PIXELS], layout.buckets.dtype), clean, slots)
    clean[layout.shared] = 0
    clean_lower = np.zeros(layout.buckets.count, dtype=np.int64)  # clean pixels in lower buckets
    np.cumsum(clean[:-1], out=clean_lower[1:])
    not_equal, equal = slots[0::2], slots[1::2]  # [J+1] each, by rank g
    shared_lower = np.cumsum(not_equal[:-1] + equal[:-1]) - not_equal[:-1] - equal[:-1]  # ranks < g
    below = clean_lower[layout.buckets.index(canonical(u, layout.buckets.dtype))]
    below = below + shared_lower + not_equal[:-1]  # rank g == j and not equal: between u[j-1] and u[j]
    equal = equal[:-1]
    own = np.sort(positives.astype(layout.buckets.dtype, copy=False))
    own_left = np.searchsorted(own, u, side="left")
    own_equal = np.searchsorted(own, u, side="right") - own_left
    return BucketPool(u, below - own_left, equal - own_equal, n_pixels - own.size)
