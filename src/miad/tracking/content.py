"""What a run logs besides its epochs: hyper-parameters, held-out heat maps, fit statistics, test metrics."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from miad.data.io import load_rgb
from miad.detector import Detector
from miad.types import Sample
from miad.visual import normal_color_range, overlay

HEATMAPS = 4  # held-out images shown at the end of a training run


def run_params(det: Detector, **extra: Any) -> dict[str, Any]:
    """The hyper-parameters of a run: the method, the command's choices (preset, data...) and the config."""
    return {"method": det.name, **extra, **det.config.to_dict()}


def final_step(det: Detector) -> int:
    """The step at which end-of-run results are logged: the last epoch (0 for methods without epochs)."""
    return len(det.history)


@torch.no_grad()
def heldout_heatmaps(det: Detector, train: Sequence[Sample], limit: int = HEATMAPS) -> dict[str, np.ndarray]:
    """'heldout/<category>_<stem>' -> the image overlaid with its map on the held-out normal scale (what the
    detector would flag: a normal image should stay dark), for the first `limit` held-out images."""
    samples = det.heldout_samples(train)[:limit]
    if not samples or det.holdout is None:
        return {}
    dataset = det.dataset(samples)
    maps = det.predict(torch.stack([dataset[i]["image"] for i in range(len(samples))])).anomaly_map.cpu()
    value_range = normal_color_range(det.holdout.pixel_quantiles.tolist())
    size = det.config.image_size
    return {f"heldout/{s.category}_{Path(s.image).stem}": overlay(np.asarray(load_rgb(s.image, size)),
                                                                  amap.numpy(), value_range)
            for s, amap in zip(samples, maps)}


def fit_statistics(det: Detector) -> dict[str, float]:
    """'fit/<name>' of a method's fit statistics (PatchCore: bank size, feature and coreset seconds)."""
    stats = getattr(det, "fit_stats", None) or {}
    return {f"fit/{k}": v for k, v in stats.items()}


def test_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """'test/mean/<metric>', 'test/<category>/<metric>' and 'test/group/<group>/<metric>' of a metrics dict
    (MetricsResult.to_dict(); undefined metrics, None, are left out)."""
    flat = {f"test/mean/{k}": v for k, v in metrics.get("mean", {}).items()}
    for cat, entry in metrics.get("per_category", {}).items():
        flat.update({f"test/{cat}/{k}": v for k, v in entry.items()})
    for group, entry in metrics.get("group_means", {}).items():
        flat.update({f"test/group/{group}/{k}": v for k, v in entry.items()})
    return {k: v for k, v in flat.items() if v is not None}
