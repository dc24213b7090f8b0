"""AUROC, AP, F1-max and AUPRO from exact ranks, and the image-level metrics.

All metrics are computed from `RankStats`: for each distinct positive score u (ascending), the number of
positives at u, the negatives strictly below u and equal to u. Every distinct score is a threshold and ties
are exact; only ranks matter (no sigmoid, clamping or binning), so any strictly increasing transform of the
scores leaves every metric unchanged.

- AUROC: Mann-Whitney U / (n_neg * n_pos), a tie counting 1/2.
- AP: scikit-learn's `average_precision_score`: sum over thresholds of (recall step) * precision. Recall only
  moves at positive scores, so only distinct positive scores need a precision.
- F1-max: max over thresholds of 2TP / (2TP + FP + FN). Lowering a threshold past negatives only adds false
  positives, so the maximum is reached at a distinct positive score.
- AUPRO (MVTec AD convention): the PRO-vs-FPR curve through one point per distinct score, linear between
  points, integrated over FPR in [0, fpr_limit] (the curve cut at exactly fpr_limit) and divided by fpr_limit.
  Written as a sum over positives: in units of negatives counted from the top, a positive pixel p of region c
  adds weight 1/(K |c|) to PRO from the end of its tie block on, rising linearly across the negatives tied
  with it (the linear segment of the curve). Its share of the area is therefore closed-form, and the whole
  area is one pass over the distinct positive scores; identical to sorting every pixel (tested against a slow
  reference).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from miad.metrics.inputs import as_labels, as_scores, to_numpy, warn_undefined
from miad.metrics.ranks import SortedPool


@dataclass(frozen=True)
class RankStats:
    values: np.ndarray  # distinct positive scores, ascending
    n_pos: np.ndarray  # int64: positives at each value
    weights: np.ndarray  # float64: sum of 1/|region| over the positives at each value (AUPRO only)
    below: np.ndarray  # int64: negatives strictly below each value
    equal: np.ndarray  # int64: negatives equal to each value
    n_neg: int
    n_regions: int = 0
    floor: float = -np.inf  # values below it are unranked (below = equal = 0): AUPRO-only stats
    n_neg_below_floor: int = 0

    @property
    def total_pos(self) -> int:
        return int(self.n_pos.sum())

    @property
    def fully_ranked(self) -> bool:
        return self.values.size == 0 or self.floor <= self.values[0]


def distinct_positives(
    values: np.ndarray, inv_sizes: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(distinct values ascending, count at each, summed 1/|region| at each) of the positive scores."""
    if values.size == 0:
        return values[:0], np.zeros(0, np.int64), np.zeros(0)
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    counts = np.diff(np.append(starts, ordered.size)).astype(np.int64)
    if inv_sizes is None:
        weights = np.zeros(starts.size)
    else:
        weights = np.add.reduceat(inv_sizes[order], starts)
    return ordered[starts], counts, weights


def rank_stats(
    pools: Sequence[Any], distinct: tuple[np.ndarray, np.ndarray, np.ndarray], n_regions: int = 0
) -> RankStats:
    """Ranks of the positives (`distinct_positives` output) among the negatives of all `pools`."""
    u, counts, weights = distinct
    below, equal = np.zeros(u.size, np.int64), np.zeros(u.size, np.int64)
    for pool in pools:
        b, e = pool.below_equal(u)
        below += b
        equal += e
    floor = max((p.floor for p in pools), default=-np.inf)
    n_below = sum(p.n_below_floor for p in pools)
    return RankStats(u, counts, weights, below, equal, sum(p.size for p in pools), n_regions, floor, n_below)


def undefined_reason(stats: RankStats, unit: str) -> str | None:
    if stats.total_pos == 0:
        return f"no anomalous {unit}"
    if stats.n_neg == 0:
        return f"no normal {unit}"
    return None


def auroc(stats: RankStats) -> float:
    assert stats.fully_ranked, "AUROC needs the ranks of every positive"
    twice_u = 2 * int(stats.n_pos @ stats.below) + int(stats.n_pos @ stats.equal)  # exact integers
    return twice_u / (2 * stats.n_neg * stats.total_pos)


def _true_false_positives(stats: RankStats) -> tuple[np.ndarray, np.ndarray]:
    assert stats.fully_ranked, "AP and F1 need the ranks of every positive"
    tp = np.cumsum(stats.n_pos[::-1])[::-1]  # positives >= each value
    fp = stats.n_neg - stats.below  # negatives >= each value
    return tp, fp


def average_precision(stats: RankStats) -> float:
    tp, fp = _true_false_positives(stats)
    return float(np.sum(stats.n_pos * (tp / (tp + fp))) / stats.total_pos)


def f1_max(stats: RankStats) -> float:
    tp, fp = _true_false_positives(stats)
    return float(np.max(2 * tp / (tp + fp + stats.total_pos)))


def aupro(stats: RankStats, fpr_limit: float) -> float:
    """Area under PRO(FPR) on [0, fpr_limit] divided by fpr_limit (see the module docstring)."""
    n_neg, eq = float(stats.n_neg), stats.equal.astype(np.float64)
    limit = fpr_limit * n_neg  # the FPR limit in negatives counted from the top
    above = n_neg - stats.below - eq  # negatives strictly above each value
    full = np.maximum(limit - above - eq, 0.0)  # negatives after the tie block, within the limit
    ramp_len = np.clip(limit - above, 0.0, eq)
    ramp = np.divide(ramp_len**2, 2 * eq, out=np.zeros_like(eq), where=eq > 0)
    area = float(stats.weights @ (full + ramp))
    return area / (stats.n_regions * n_neg * fpr_limit)


def _named(name: str, stats: RankStats, unit: str, compute: Any) -> float:
    reason = undefined_reason(stats, unit)
    if reason is not None:
        warn_undefined(f"{name} is undefined: {reason}; returned NaN")
        return float("nan")
    return float(compute(stats))


def image_stats(scores: Any, labels: Any) -> RankStats:
    """Ranks of the anomalous images' scores among the normal images' scores (exact sort; few values)."""
    s = as_scores(scores, "scores")
    y = as_labels(labels, s.size)
    return rank_stats([SortedPool(s[~y])], distinct_positives(s[y]))


def image_auroc(scores: Any, labels: Any) -> float:
    """AUROC of one score per image (labels 1 = anomalous); NaN with a warning if one class is missing."""
    return _named("image AUROC", image_stats(scores, labels), "image", auroc)


def image_ap(scores: Any, labels: Any) -> float:
    """Average precision as scikit-learn defines it; NaN with a warning if one class is missing."""
    return _named("image AP", image_stats(scores, labels), "image", average_precision)


def image_f1_max(scores: Any, labels: Any) -> float:
    """Best F1 over all distinct score thresholds; NaN with a warning if one class is missing."""
    return _named("image F1-max", image_stats(scores, labels), "image", f1_max)


def f1_at_threshold(scores: Any, labels: Any, threshold: float) -> float:
    """F1 of the decision `score >= threshold` (the threshold convention of scikit-learn's curves).

    Works for image scores or flattened pixel scores. NaN with a warning when nothing is anomalous and
    nothing is predicted anomalous (0/0).
    """
    s = as_scores(to_numpy(scores).reshape(-1), "scores")
    y = as_labels(to_numpy(labels).reshape(-1), s.size)
    predicted = s >= threshold
    tp = int(np.count_nonzero(predicted & y))
    errors = int(np.count_nonzero(predicted ^ y))  # false positives + false negatives
    if 2 * tp + errors == 0:
        warn_undefined("F1 at threshold is undefined: no anomalous and no predicted-anomalous item; returned NaN")
        return float("nan")
    return 2 * tp / (2 * tp + errors)
