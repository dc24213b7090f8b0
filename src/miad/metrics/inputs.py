"""Input conversion and validation for the metrics: numpy or torch in, exact numpy out.

Dtype policy (what "exact" means here): scores are never rounded. float32 stays float32; float16 and bfloat16
are widened to float32 (exact); float64 stays float64; integers become float64 (exact below 2**53). So a map
given as float32 is ranked as float32 and one given as float64 is ranked as float64: converting float64 scores
to float32 could merge distinct values, which we never do silently.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from miad.errors import DataError


class UndefinedMetricWarning(UserWarning):
    """A metric is undefined for the given data (e.g. one class only) and NaN was returned."""


def warn_undefined(reason: str) -> None:
    warnings.warn(reason, UndefinedMetricWarning, stacklevel=3)


def to_numpy(x: Any) -> np.ndarray:
    """A numpy view (no copy where possible) of an array-like or a torch tensor on any device."""
    if isinstance(x, torch.Tensor):
        x = x.detach()
        if x.dtype == torch.bfloat16:  # numpy has no bfloat16; widening to float32 is exact
            x = x.float()
        return x.cpu().numpy()
    return np.asarray(x)


def score_dtype(dtype: np.dtype) -> np.dtype:
    """float32 for float32 and narrower floats, float64 otherwise (see the module docstring)."""
    if dtype.kind == "f" and dtype.itemsize <= 4:
        return np.dtype(np.float32)
    if dtype.kind in "fiub":
        return np.dtype(np.float64)
    raise DataError(f"scores must be a real number array, got dtype {dtype}; pass float32 or float64 values")


def as_scores(x: Any, name: str = "scores") -> np.ndarray:
    """1-D finite scores in the policy dtype."""
    arr = to_numpy(x)
    if arr.ndim != 1:
        raise DataError(f"{name} must be 1-D [N], got shape {arr.shape}; pass one score per image")
    arr = arr.astype(score_dtype(arr.dtype), copy=False)
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise DataError(
            f"{name}[{bad[0]}] is {arr[bad[0]]} ({bad.size} non-finite value(s)); scores must be finite: "
            "check the detector output for that image"
        )
    return arr


def as_labels(y: Any, n: int, name: str = "labels") -> np.ndarray:
    """Boolean labels (1 = anomalous) of length n; only 0/1 (or bool) values are accepted."""
    arr = to_numpy(y)
    if arr.shape != (n,):
        raise DataError(f"{name} must have shape ({n},) to match the scores, got {arr.shape}")
    if arr.dtype != bool and not np.isin(arr, (0, 1)).all():
        raise DataError(f"{name} must be 0 (normal) or 1 (anomalous), got values {np.unique(arr)[:5]}")
    return arr.astype(bool, copy=False)


def as_maps(maps: Any) -> np.ndarray:
    """[N,H,W] (or one [H,W]) maps in the policy dtype (no copy when already float32/float64)."""
    arr = to_numpy(maps)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise DataError(f"anomaly maps must be [N,H,W] or [H,W], got shape {arr.shape}")
    return arr.astype(score_dtype(arr.dtype), copy=False)


def finite_range(maps: np.ndarray) -> tuple[float, float]:
    """(min, max) of [N,H,W] maps; the error names the first map holding NaN or inf."""
    if maps.size == 0:
        return 0.0, 0.0
    low, high = maps.min(), maps.max()  # NaN and inf propagate to min/max: one cheap check
    if not (np.isfinite(low) and np.isfinite(high)):
        first = int(np.flatnonzero(~np.isfinite(maps).reshape(len(maps), -1).all(axis=1))[0])
        raise DataError(
            f"anomaly map {first} contains NaN or inf; maps must be finite: check the detector output "
            "for that image (e.g. a division by zero in its normalisation)"
        )
    return float(low), float(high)


def as_masks(masks: Any, shape: tuple[int, ...]) -> np.ndarray:
    """Boolean ground-truth masks (> 0 is defect) with exactly the maps' shape."""
    arr = to_numpy(masks)
    if arr.ndim == 2 and len(shape) == 3 and shape[0] == 1:
        arr = arr[None]
    if arr.shape != shape:
        raise DataError(
            f"masks must have the maps' shape {shape}, got {arr.shape}; resize masks to the map size "
            "with nearest neighbour before evaluation"
        )
    return arr if arr.dtype == bool else arr > 0
