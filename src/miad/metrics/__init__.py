"""Exact anomaly-detection metrics: plain functions on arrays, and a batch accumulator with breakdowns.

Image level: image_auroc, image_ap, image_f1_max, f1_at_threshold (one score per image, label 1 = anomalous).
Pixel level: pixel_auroc, pixel_ap, pixel_f1_max, aupro, pixel_metrics (all four in one pass), on [N,H,W]
maps and masks. Every distinct score is a threshold, ties are exact, only ranks matter (no sigmoid, clamping or
binning). AUPRO follows the MVTec AD convention (8-connected regions over the whole set, FPR over all normal
pixels, curve cut at exactly fpr_limit, area divided by fpr_limit). Undefined cases give NaN with an
UndefinedMetricWarning (the accumulator records them in `MetricsResult.notes`); NaN or inf scores raise
DataError naming the image. Dtypes: see `miad.metrics.inputs` (float32 stays float32, float64 stays float64).
"""

from miad.metrics.accumulator import MetricAccumulator, evaluate
from miad.metrics.curves import f1_at_threshold, image_ap, image_auroc, image_f1_max
from miad.metrics.inputs import UndefinedMetricWarning
from miad.metrics.pixel import aupro, pixel_ap, pixel_auroc, pixel_f1_max, pixel_metrics
from miad.metrics.result import METRICS, MetricsResult

__all__ = [
    "METRICS",
    "MetricAccumulator",
    "MetricsResult",
    "UndefinedMetricWarning",
    "aupro",
    "evaluate",
    "f1_at_threshold",
    "image_ap",
    "image_auroc",
    "image_f1_max",
    "pixel_ap",
    "pixel_auroc",
    "pixel_f1_max",
    "pixel_metrics",
]
