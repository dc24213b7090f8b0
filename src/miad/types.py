"""Core value types shared by data, methods, metrics and the benchmark.

`Sample` describes one image on disk; `Prediction` is what every detector returns.
Higher scores always mean "more anomalous".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

GOOD = "good"  # defect_type of normal images, as in the MVTec/MIAD folder layout


@dataclass(frozen=True)
class Sample:
    """One image of a data set.

    image: path of the image file.
    label: 0 = normal, 1 = anomalous.
    mask: path of the ground-truth mask, or None (normal images, or defects without masks).
    category: scenario / object name (e.g. "wind_turbine").
    defect_type: "good" for normal images, otherwise the defect folder name; a defect type is
        identified by (category, defect_type).
    split: "train" or "test".
    """

    image: Path
    label: int
    mask: Path | None
    category: str
    defect_type: str
    split: str

    def __post_init__(self) -> None:
        if self.label not in (0, 1):
            raise ValueError(f"Sample.label must be 0 or 1, got {self.label!r} for {self.image}")
        if self.split not in ("train", "test"):
            raise ValueError(f"Sample.split must be 'train' or 'test', got {self.split!r} for {self.image}")

    @property
    def defect_key(self) -> tuple[str, str]:
        return (self.category, self.defect_type)


@dataclass
class Prediction:
    """Detector output for a batch of B images.

    image_score: float tensor [B].
    anomaly_map: float tensor [B, H, W] at the preset's input size.
    """

    image_score: torch.Tensor
    anomaly_map: torch.Tensor

    def __post_init__(self) -> None:
        if self.image_score.ndim != 1:
            raise ValueError(f"image_score must be [B], got shape {tuple(self.image_score.shape)}")
        if self.anomaly_map.ndim != 3 or self.anomaly_map.shape[0] != self.image_score.shape[0]:
            raise ValueError(
                f"anomaly_map must be [B,H,W] with B={self.image_score.shape[0]}, "
                f"got shape {tuple(self.anomaly_map.shape)}"
            )

    def __len__(self) -> int:
        return int(self.image_score.shape[0])

    def cpu(self) -> Prediction:
        return Prediction(self.image_score.detach().cpu(), self.anomaly_map.detach().cpu())

    @staticmethod
    def cat(parts: list[Prediction]) -> Prediction:
        return Prediction(
            torch.cat([p.image_score for p in parts]), torch.cat([p.anomaly_map for p in parts])
        )
