"""Order-preserving integer keys for floats, and buckets adapted to where the anomalous scores lie.

Used by `miad.metrics.ranks`. Keys: the IEEE bit pattern with the sign bit set for non-negative values and
every bit flipped for negative ones orders floats exactly as their values (-0.0 is made +0.0 first, since both
compare equal). Buckets: the top CELL_BITS key bits pick a cell (1/128 of an octave for float32); a cell holding
anomalous scores is split into 2**s equal sub-buckets, s chosen so that few pixels share a bucket with an
anomalous score (about sqrt(normal pixels x anomalous scores) sub-buckets per cell, estimated from a sample).
bucket(x) is exactly non-decreasing in x, so bucket counts are exact rank information.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CELL_BITS = 16  # cells = top 16 key bits: 256 kB lookup tables
OVERSAMPLE = 4  # bucket budget per distinct anomalous score
MAX_BUCKETS = 2**22  # 32 MB of int64 counts at most


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


def cell_of(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """The cell (top CELL_BITS key bits) of each value."""
    keys = monotone_keys(canonical(values, dtype))
    return (keys >> keys.dtype.type(8 * keys.dtype.itemsize - CELL_BITS)).astype(np.intp)


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
    def for_positives(
        u: np.ndarray, dtype: np.dtype, max_buckets: int = MAX_BUCKETS, sample: np.ndarray | None = None
    ) -> Buckets:
        """Buckets for the distinct anomalous scores u; `sample`: some pixel values, to weigh dense cells."""
        dtype = np.dtype(dtype)
        key_dtype = np.dtype(f"u{dtype.itemsize}")
        low_bits = 8 * dtype.itemsize - CELL_BITS
        per_cell = np.bincount(cell_of(u, dtype), minlength=2**CELL_BITS).astype(np.float64)
        want = per_cell  # without a sample: sub-buckets in proportion to the anomalous scores
        if sample is not None and sample.size:
            density = np.bincount(cell_of(sample, dtype), minlength=2**CELL_BITS)
            want = np.sqrt((density + 1.0) * per_cell)  # minimises the pixels sharing a bucket, for a budget
        want = want * (OVERSAMPLE * max(u.size, 1) / max(want.sum(), 1e-300))
        want = np.maximum(want, per_cell / 2)  # at most a few scores per bucket on average: few layers
        while True:
            sub_bits = np.minimum(np.ceil(np.log2(np.maximum(want, 1.0))).astype(np.int64), low_bits)
            total = int((1 << sub_bits).sum())
            if total <= max_buckets or want.max() < 1:
                break
            want = want / 2
        start = np.zeros(sub_bits.size, dtype=np.int64)
        np.cumsum(1 << sub_bits[:-1], out=start[1:])
        cell_ids = np.arange(sub_bits.size, dtype=np.uint64)
        # Unsigned arithmetic wraps; the truncating cast keeps it exact modulo 2**(key bits).
        offset = start.astype(np.uint64) - (cell_ids << sub_bits.astype(np.uint64))
        return Buckets(offset.astype(key_dtype), (low_bits - sub_bits).astype(key_dtype), total, dtype)

    def index_positive(self, values: np.ndarray) -> np.ndarray:
        """Bucket ids of values that are all > 0 (or +0.0), read from their raw bits: no key computation.

        For such values key = bits + 2**(n-1), so the cell is (bits >> low_bits) + half the cells, and
        (key >> shift) = (bits >> shift) + 2**(n-1-shift): both folded into the upper half of the tables.
        """
        tables = self.__dict__.get("_positive_tables")
        if tables is None:
            half = self.shift.size // 2
            nbits = 8 * self.shift.dtype.itemsize
            top = (self.shift.dtype.type(1) << self.shift.dtype.type(nbits - 1)) >> self.shift[half:]
            tables = (self.shift[half:], self.offset[half:] + top)
            object.__setattr__(self, "_positive_tables", tables)
        shift, offset = tables
        keys = values.view(self.shift.dtype)
        cells = keys >> keys.dtype.type(8 * keys.dtype.itemsize - CELL_BITS)
        b = keys >> shift[cells]
        b += offset[cells]
        return b

    def index(self, canonical_values: np.ndarray) -> np.ndarray:
        """Bucket ids (unsigned, the key dtype) of values already passed through `canonical`."""
        keys = monotone_keys(canonical_values)
        cells = keys >> keys.dtype.type(8 * keys.dtype.itemsize - CELL_BITS)
        keys >>= self.shift[cells]
        keys += self.offset[cells]
        return keys
