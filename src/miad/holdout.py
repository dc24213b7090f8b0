"""Held-out calibration: which normal training images `fit` keeps out of training, and what their scores give.

Their scores give the default decision threshold (`threshold_quantile` of the held-out image scores, per
category for unified models), the heat-map colour scale (quantiles of held-out pixel scores) and the validation
loss. Never test images. Plain functions of the config and the predictions: the detector only calls them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

from miad.config import BaseConfig
from miad.errors import DataError
from miad.types import Prediction

PIXELS_PER_BATCH = 200_000  # a bounded random sample of each batch's pixels is enough for quantiles
PIXELS_IN_ALL = 4_000_000


@dataclass
class HoldoutStats:
    """Scores of held-out normal training images (never test images)."""

    image_scores: torch.Tensor  # [N] held-out image scores
    pixel_quantiles: torch.Tensor  # [101] quantiles 0, 0.01, ..., 1 of held-out pixel scores
    threshold: float  # decision threshold: config.threshold_quantile of image_scores
    category_thresholds: dict[str, float] = field(default_factory=dict)

    def to_state(self) -> dict[str, Any]:
        return {
            "image_scores": self.image_scores,
            "pixel_quantiles": self.pixel_quantiles,
            "threshold": self.threshold,
            "category_thresholds": dict(self.category_thresholds),
        }

    @staticmethod
    def from_state(state: dict[str, Any]) -> HoldoutStats:
        return HoldoutStats(
            state["image_scores"], state["pixel_quantiles"], float(state["threshold"]),
            dict(state.get("category_thresholds", {})),
        )


def split_holdout(categories: list[str], config: BaseConfig) -> tuple[list[int], list[int]]:
    """(train indices, held-out indices) of images with these categories: stratified by category, seeded by
    config.seed; `max_train_images` then subsamples the training part (seeded)."""
    n = len(categories)
    if n == 0:
        raise DataError("the training set is empty; expected at least one normal image")
    gen = torch.Generator().manual_seed(config.seed)
    train_idx, hold_idx = [], []
    for cat in sorted(set(categories)):
        idx = [i for i, c in enumerate(categories) if c == cat]
        perm = [idx[j] for j in torch.randperm(len(idx), generator=gen).tolist()]
        k = holdout_count(len(idx), config.holdout_fraction)
        hold_idx += perm[:k]
        train_idx += perm[k:]
    cap = config.max_train_images
    if cap is not None and len(train_idx) > cap:
        pick = torch.randperm(len(train_idx), generator=gen)[:cap].tolist()
        train_idx = [train_idx[j] for j in pick]
    return sorted(train_idx), sorted(hold_idx)


def holdout_stats(predictions: Iterable[Prediction], categories: list[str], config: BaseConfig) -> HoldoutStats:
    """The statistics of the held-out images' predictions (in the order of `categories`, one per image)."""
    scores, pixels = [], []
    gen = torch.Generator().manual_seed(config.seed)
    for pred in predictions:
        scores.append(pred.image_score)
        flat = pred.anomaly_map.flatten()
        keep = min(flat.numel(), PIXELS_PER_BATCH)
        pixels.append(flat[torch.randperm(flat.numel(), generator=gen)[:keep]])
    image_scores = torch.cat(scores)
    q = torch.linspace(0, 1, 101)
    pixel_q = torch.quantile(_subsample(torch.cat(pixels), PIXELS_IN_ALL, gen), q)
    level = config.threshold_quantile
    per_cat = {
        c: float(torch.quantile(image_scores[[i for i, x in enumerate(categories) if x == c]], level))
        for c in sorted(set(categories)) if c
    }
    return HoldoutStats(image_scores, pixel_q, float(torch.quantile(image_scores, level)), per_cat)


def holdout_count(n: int, fraction: float) -> int:
    if fraction <= 0 or n < 2:
        return 0
    return min(n - 1, max(1, math.floor(fraction * n + 0.5)))


def _subsample(x: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    return x if x.numel() <= k else x[torch.randperm(x.numel(), generator=gen)[:k]]
