"""Pixel-level metrics: pixel AUROC, AP, F1-max and AUPRO over all pixels of a set of maps.

Conventions (MVTec AD's, as its IJCV 2021 paper by Bergmann et al. defines PRO): every pixel of every image counts,
normal images contribute all-zero masks; AUPRO regions are 8-connected components of each image's mask
(scipy.ndimage.label with a 3x3 structure), PRO is the mean over all regions of the whole set, FPR counts the
normal pixels of all images.
Ranks come from `miad.metrics.ranks` (no sort of all pixels, no float64 copy: see the dtype policy in
`miad.metrics.inputs`). Memory beyond the inputs: the anomalous pixels, and per worker thread ~100 MB of chunk
temporaries plus count tables of 8 bytes per bucket and per distinct anomalous score (~60 MB at 1,000 maps).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from miad.errors import ConfigError
from miad.metrics.buckets import MAX_BUCKETS
from miad.metrics.curves import (
    RankStats,
    auroc,
    average_precision,
    distinct_positives,
    f1_max,
    rank_stats,
    undefined_reason,
)
from miad.metrics.curves import aupro as aupro_from_stats
from miad.metrics.inputs import as_maps, as_masks, finite_range, warn_undefined
from miad.metrics.ranks import build_bucket_pool
from miad.metrics.result import PIXEL_METRICS

EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)
SAMPLE_STRIDE = 61  # every 61st pixel: ~1M samples for 1,000 maps of 256x256, to place the floor
FLOOR_MARGIN = 0.02  # the AUPRO floor aims 2 % of normal pixels below the FPR limit
WORTH_FILTERING = 0.15  # filter only when at least 15 % of the pixels would be skipped


@dataclass(frozen=True)
class Positives:
    """Anomalous pixels of some images: their scores, 1/|region| of each, and the number of regions."""

    values: np.ndarray
    inv_sizes: np.ndarray  # float64, aligned with values
    n_regions: int

    @staticmethod
    def concat(parts: list[Positives], dtype: np.dtype) -> Positives:
        if not parts:
            return Positives(np.zeros(0, dtype), np.zeros(0), 0)
        values = np.concatenate([p.values for p in parts]).astype(dtype, copy=False)
        return Positives(values, np.concatenate([p.inv_sizes for p in parts]), sum(p.n_regions for p in parts))


def image_positives(amap: np.ndarray, mask: np.ndarray) -> Positives:
    """Anomalous pixels of one [H,W] map, in raster order, with their 8-connected region sizes."""
    if not mask.any():
        return Positives(amap[:0, 0], np.zeros(0), 0)
    regions, n_regions = ndimage.label(mask, structure=EIGHT_CONNECTED)
    sizes = np.bincount(regions.reshape(-1))
    inside = regions[mask]
    return Positives(amap[mask], 1.0 / sizes[inside], int(n_regions))


def collect_positives(maps: np.ndarray, masks: np.ndarray, regions: bool = True) -> Positives:
    """Positives of [N,H,W] maps; only images with a defect pixel are labelled (regions=False: no labelling,
    inv_sizes left at 0, for the metrics that do not need regions)."""
    if not regions:
        values = maps[masks]
        return Positives(values, np.zeros(values.size), 0)
    flagged = np.flatnonzero(masks.reshape(len(masks), -1).any(axis=1))
    return Positives.concat([image_positives(maps[i], masks[i]) for i in flagged], maps.dtype)


def validate_fpr_limit(fpr_limit: float) -> float:
    if not 0.0 < float(fpr_limit) <= 1.0:
        raise ConfigError(f"fpr_limit must be in (0, 1], got {fpr_limit}; the MVTec AD convention is 0.3")
    return float(fpr_limit)


def pixel_stats(
    maps: Any, masks: Any, regions: bool = True, top_only: float | None = None, max_buckets: int = MAX_BUCKETS
) -> RankStats:
    """Exact ranks of the anomalous pixels among all normal pixels of [N,H,W] maps and masks.

    top_only=fpr_limit ranks only what AUPRO up to that limit needs (faster; AUROC/AP/F1 then unavailable).
    """
    m = as_maps(maps)
    k = as_masks(masks, m.shape)
    low, _ = finite_range(m)
    all_positive = low > 0 or (low == 0 and not np.signbit(m).any())
    positives = collect_positives(m, k, regions)
    distinct = distinct_positives(positives.values, positives.inv_sizes)
    u_min = float(distinct[0][0]) if distinct[0].size else np.inf
    sample = (m.reshape(-1)[::SAMPLE_STRIDE], ~k.reshape(-1)[::SAMPLE_STRIDE])
    floor = choose_floor(*sample, u_min, top_only)
    while True:
        pool = build_bucket_pool(
            distinct[0], [m], positives.values, m.dtype, floor, all_positive, sample[0], max_buckets
        )
        stats = rank_stats([pool], distinct, positives.n_regions)
        if top_only is None or covers_fpr_limit(stats, top_only):
            return stats
        floor = -np.inf  # the sampled floor was too high for this data: rank everything (always enough)


def choose_floor(values: np.ndarray, normal: np.ndarray, u_min: float, top_only: float | None) -> float:
    """Pixels below the floor are only counted, not ranked (see ranks.build_bucket_pool).

    Exact ranks of every anomalous score need floor <= min(u). For AUPRO alone, normal pixels below the score
    at FPR = top_only do not matter either: a lower bound of it is estimated from a sample (checked after the
    pass by `covers_fpr_limit`). -inf when too few sampled pixels fall below the floor to pay for the filter.
    """
    floor = u_min
    if top_only is not None and normal.any():
        level = min(1.0 - top_only - FLOOR_MARGIN, 1.0)
        if level > 0:
            floor = max(floor, float(np.quantile(values[normal], level, method="lower")))
    if values.size == 0 or np.count_nonzero(values < floor) < WORTH_FILTERING * values.size:
        return -np.inf
    return floor


def covers_fpr_limit(stats: RankStats, fpr_limit: float) -> bool:
    """Whether the unranked anomalous scores (below the floor) lie beyond the FPR limit, adding nothing."""
    return stats.fully_ranked or stats.n_neg - stats.n_neg_below_floor >= fpr_limit * stats.n_neg


def metrics_from_stats(stats: RankStats, fpr_limit: float, unit: str = "pixel") -> tuple[dict[str, float], str]:
    """All pixel metrics from one RankStats, and why they are NaN ('' when defined)."""
    reason = undefined_reason(stats, unit)
    if reason is not None:
        return dict.fromkeys(PIXEL_METRICS, float("nan")), reason
    return {
        "pixel_auroc": auroc(stats),
        "pixel_ap": average_precision(stats),
        "pixel_f1_max": f1_max(stats),
        "aupro": aupro_from_stats(stats, fpr_limit),
    }, ""


def pixel_metrics(maps: Any, masks: Any, fpr_limit: float = 0.3) -> dict[str, float]:
    """pixel_auroc, pixel_ap, pixel_f1_max and aupro from one pass over the maps (cheaper than four calls).

    maps: [N,H,W] (or [H,W]) anomaly maps, higher = more anomalous; masks: same shape, > 0 = defect.
    Undefined cases (no anomalous pixel, no normal pixel) give NaN and an UndefinedMetricWarning.
    """
    fpr_limit = validate_fpr_limit(fpr_limit)
    values, reason = metrics_from_stats(pixel_stats(maps, masks), fpr_limit)
    if reason:
        warn_undefined(f"pixel metrics are undefined: {reason}; returned NaN")
    return values


def _one(name: str, label: str, maps: Any, masks: Any, fpr_limit: float = 0.3) -> float:
    fpr_limit = validate_fpr_limit(fpr_limit)
    stats = pixel_stats(maps, masks, regions=name == "aupro", top_only=fpr_limit if name == "aupro" else None)
    reason = undefined_reason(stats, "pixel")
    if reason is not None:
        warn_undefined(f"{label} is undefined: {reason}; returned NaN")
        return float("nan")
    compute = {"pixel_auroc": auroc, "pixel_ap": average_precision, "pixel_f1_max": f1_max}.get(name)
    return float(compute(stats)) if compute else aupro_from_stats(stats, fpr_limit)


def pixel_auroc(maps: Any, masks: Any) -> float:
    """AUROC over all pixels (Mann-Whitney, ties 1/2). maps [N,H,W] or [H,W]; masks same shape, > 0 = defect."""
    return _one("pixel_auroc", "pixel AUROC", maps, masks)


def pixel_ap(maps: Any, masks: Any) -> float:
    """Average precision over all pixels, as scikit-learn's average_precision_score defines it."""
    return _one("pixel_ap", "pixel AP", maps, masks)


def pixel_f1_max(maps: Any, masks: Any) -> float:
    """Best pixel F1 over all distinct score thresholds."""
    return _one("pixel_f1_max", "pixel F1-max", maps, masks)


def aupro(maps: Any, masks: Any, fpr_limit: float = 0.3) -> float:
    """Normalised area under the per-region-overlap curve up to `fpr_limit` (MVTec AD convention).

    Regions: 8-connected components of each mask; FPR over the normal pixels of all maps; the curve is cut at
    exactly `fpr_limit` by linear interpolation and its area divided by `fpr_limit`, so a perfect map gives 1.
    """
    return _one("aupro", "AUPRO", maps, masks, fpr_limit)
