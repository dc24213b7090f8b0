"""Batch-wise metric accumulation: `update()` per predicted batch, `compute()` once at the end.

Storage per image: its map in the dtype it came in (float32 for float32/float16/bfloat16 maps, float64 for
float64: see `miad.metrics.inputs`), its anomalous pixels with their 8-connected region sizes (labelled at
update time, so no mask is kept), and its score. A 5,000-image test set of 256x256 float32 maps takes 1.3 GB.
Results are identical however the images are batched: everything is computed per image, in arrival order,
with exact integer counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from miad.errors import DataError
from miad.metrics.breakdown import StoredImage, evaluate_category
from miad.metrics.inputs import as_masks, score_dtype, to_numpy
from miad.metrics.pixel import Positives, image_positives, validate_fpr_limit
from miad.metrics.result import MetricsResult, mean_over
from miad.types import Prediction, Sample


class MetricAccumulator:
    """Collect predictions batch by batch; `compute()` gives a MetricsResult.

    fpr_limit: AUPRO integration limit (MVTec AD convention 0.3).
    compute_pixel: False skips the maps (image metrics only; pixel metrics are NaN and no map is stored).
    """

    def __init__(self, fpr_limit: float = 0.3, compute_pixel: bool = True) -> None:
        self.fpr_limit = validate_fpr_limit(fpr_limit)
        self.compute_pixel = compute_pixel
        self._images: list[StoredImage] = []
        self._blocks: list[np.ndarray] = []

    def __len__(self) -> int:
        return len(self._images)

    def update(self, prediction: Prediction, masks: Any, samples: Sequence[Sample]) -> None:
        """Add one batch.

        prediction: image_score [B] and anomaly_map [B,H,W]; masks: ground truth [B,H,W] at the map size
        (> 0 = defect; the Dataset's "mask" item), or None when no image of the batch has one; samples: the B
        Samples, giving category, defect type and label. An anomalous sample without a mask file
        (sample.mask is None) is left out of the pixel metrics, with a note.
        """
        samples = list(samples)
        scores = to_numpy(prediction.image_score)
        if len(samples) != scores.shape[0]:
            raise DataError(f"got {len(samples)} samples for a batch of {scores.shape[0]} predictions")
        if not samples:
            return
        scores = scores.astype(np.float64)  # widening is exact; the order of scores is unchanged
        _check_finite(scores.reshape(-1, 1), samples, "image score")
        if not self.compute_pixel:
            self._images += [StoredImage(s, float(v), -1, 0, None) for s, v in zip(samples, scores)]
            return
        maps = to_numpy(prediction.anomaly_map)
        maps = np.array(maps, dtype=score_dtype(maps.dtype), copy=True)  # own copy: callers reuse buffers
        _check_finite(maps.reshape(len(maps), -1), samples, "anomaly map")
        truth = np.zeros(maps.shape, dtype=bool) if masks is None else _masks(masks, maps.shape, samples)
        block = len(self._blocks)
        self._blocks.append(maps)
        nonnegative = ~np.signbit(maps).reshape(len(maps), -1).any(axis=1)
        for row, (sample, score) in enumerate(zip(samples, scores)):
            positives = _positives(maps[row], truth[row], sample, masks is not None)
            self._images.append(StoredImage(sample, float(score), block, row, positives, bool(nonnegative[row])))

    def compute(self) -> MetricsResult:
        """Metrics per category, mean over categories, per defect type and per surface/logical group."""
        notes: list[str] = []
        if not self.compute_pixel:
            notes.append("pixel metrics not computed (compute_pixel=False)")
        by_category: dict[str, list[StoredImage]] = {}
        for im in self._images:
            by_category.setdefault(im.sample.category, []).append(im)
        per_category, per_defect, groups = {}, {}, {}
        for category in sorted(by_category):
            res = evaluate_category(category, by_category[category], self._blocks, self.fpr_limit, self.compute_pixel)
            per_category[category] = res.entry
            per_defect.update({(category, t): e for t, e in res.per_defect.items()})
            for group, e in res.groups.items():
                groups.setdefault(group, {})[category] = e
            notes += res.notes
        if not per_category:
            notes.append("no image was added: every metric is undefined")
        mean = mean_over(per_category, "mean", notes)
        group_means = {g: mean_over(per, f"{g} mean", notes) for g, per in sorted(groups.items())}
        return MetricsResult(per_category, mean, per_defect, groups, group_means, self.fpr_limit, notes)


def evaluate(
    prediction: Prediction,
    masks: Any,
    samples: Sequence[Sample],
    fpr_limit: float = 0.3,
    compute_pixel: bool = True,
) -> MetricsResult:
    """All metrics of one Prediction for all `samples` at once (same arguments as MetricAccumulator.update)."""
    acc = MetricAccumulator(fpr_limit=fpr_limit, compute_pixel=compute_pixel)
    acc.update(prediction, masks, samples)
    return acc.compute()


def _check_finite(rows: np.ndarray, samples: Sequence[Sample], what: str) -> None:
    if rows.size == 0:
        return
    ok = np.isfinite(rows.min(axis=1)) & np.isfinite(rows.max(axis=1))  # NaN/inf propagate to min/max
    if not ok.all():
        bad = samples[int(np.flatnonzero(~ok)[0])]
        raise DataError(
            f"{bad.image}: {what} contains NaN or inf; metrics need finite scores: check the detector output "
            "for this image (e.g. a division by zero in its normalisation)"
        )


def _masks(masks: Any, shape: tuple[int, ...], samples: Sequence[Sample]) -> np.ndarray:
    try:
        return as_masks(masks, shape)
    except DataError as err:
        raise DataError(f"batch starting with {samples[0].image}: {err}") from None


def _positives(amap: np.ndarray, mask: np.ndarray, sample: Sample, has_masks: bool) -> Positives | None:
    if sample.label == 1 and (sample.mask is None or not has_masks):
        return None  # no ground truth: its pixels are neither known normal nor known anomalous
    return image_positives(amap, mask)
