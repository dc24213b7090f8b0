"""The detector contract shared by every method.

`fit(train) -> self` and `predict(images) -> Prediction` (higher = more anomalous, maps at the preset's input
size). `fit` keeps `holdout_fraction` of the normal training images out of training; their scores give the
default decision threshold, the heat-map colour scale and the validation loss. The test split is never used to
pick thresholds, epochs or checkpoints.

A method subclasses `Detector` (fit directly, e.g. PatchCore) or `GradientDetector` (exposes `encode`, `loss`
and `trainable_modules`, and shares `miad.train`).
"""

from __future__ import annotations

import abc
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from miad.checkpoint import save_checkpoint
from miad.config import BaseConfig
from miad.data.dataset import ImageDataset, TensorImageDataset
from miad.errors import ConfigError, DataError, NotFittedError
from miad.train import train_detector
from miad.types import Prediction, Sample

TrainData = Sequence[Sample] | torch.Tensor | Dataset


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


def resolve_device(device: str | torch.device | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but no CUDA GPU is available; use --device cpu or auto")
    return dev


class Detector(abc.ABC):
    """Base class: data handling, hold-out statistics, predict plumbing, checkpoints."""

    name: ClassVar[str]
    Config: ClassVar[type[BaseConfig]]
    PRESETS: ClassVar[dict[str, BaseConfig]]
    # Overrides of the `quick` preset for a seconds-long CPU smoke run (contract tests, examples).
    SMOKE: ClassVar[dict[str, Any]] = {}

    def __init__(self, config: BaseConfig, pretrained: bool = True) -> None:
        if not isinstance(config, self.Config):
            raise TypeError(f"{self.name} expects a {self.Config.__name__}, got {type(config).__name__}")
        self.config = config
        self.device = torch.device("cpu")
        with torch.random.fork_rng(devices=[]):  # weight init depends on config.seed only: reproducible
            torch.manual_seed(config.seed)
            self.model: nn.Module = self.build(pretrained)
        self.holdout: HoldoutStats | None = None
        self.trained_on: list[str] = []
        self.history: list[dict[str, float]] = []
        self.fitted = False

    # ----- to implement -----------------------------------------------------------------------------------
    @abc.abstractmethod
    def build(self, pretrained: bool) -> nn.Module:
        """Create the nn.Module (frozen backbones with ImageNet weights when `pretrained`, else random)."""

    @abc.abstractmethod
    def _fit(self, train: Dataset, val: Dataset | None, **options: Any) -> None:
        """Train on `train`; `val` holds the held-out normal images (validation only)."""

    @abc.abstractmethod
    def _predict(self, images: torch.Tensor) -> Prediction:
        """Torch-only scoring of a preprocessed batch on self.device (no numpy/scipy: exportable)."""

    # ----- public API --------------------------------------------------------------------------------------
    def fit(
        self, train: TrainData, *, device: str | torch.device | None = "auto", progress: bool = True,
        state_dir: str | None = None, num_workers: int = 0, callback: Any = None,
    ) -> Detector:
        """Fit on normal training images: a list of Samples, a preprocessed tensor [N,3,S,S] or a Dataset."""
        dataset, categories = self._as_dataset(train)
        train_idx, hold_idx = self._split_holdout(dataset, categories)
        self.to(device)
        self.trained_on = sorted({c for c in categories if c})
        train_ds = Subset(dataset, train_idx)
        hold_ds = Subset(dataset, hold_idx) if hold_idx else None
        self._fit(train_ds, hold_ds, progress=progress, state_dir=state_dir, num_workers=num_workers,
                  callback=callback)
        self.fitted = True
        self.holdout = self._holdout_stats(hold_ds, [categories[i] for i in hold_idx]) if hold_ds else None
        return self

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> Prediction:
        """images: [B,3,S,S] normalised as the preset says -> Prediction at S x S (S = config.image_size)."""
        if not self.fitted:
            raise NotFittedError(f"{self.name} is not fitted: call fit() first (or load a checkpoint)")
        self.model.eval()
        pred = self._predict(self._conform(images).to(self.device))
        return Prediction(pred.image_score.float(), pred.anomaly_map.float())

    def predict_dataset(
        self, dataset: Dataset, batch_size: int | None = None, num_workers: int = 0
    ) -> Iterator[tuple[Prediction, dict[str, torch.Tensor], float]]:
        """Yield (Prediction on CPU, batch, seconds of model time) over a Dataset of dicts with 'image' (and
        'mask', 'index'); the time includes the copy to the CPU, which waits for the device."""
        loader = DataLoader(dataset, batch_size=batch_size or self.config.batch_size, shuffle=False,
                            num_workers=num_workers)
        for batch in loader:
            t0 = time.perf_counter()
            pred = self.predict(batch["image"]).cpu()
            yield pred, batch, time.perf_counter() - t0

    def dataset(self, samples: Sequence[Sample]) -> Dataset:
        """The preset's Dataset (resize, normalisation, nearest-neighbour masks) over `samples`."""
        return ImageDataset(list(samples), self.config.image_size, self.config.normalize,
                            resize=self.config.resize)

    def run_notes(self) -> dict[str, Any]:
        """Facts of the last fit that the benchmark records in result.json ("method_notes"), e.g. a mode resolved
        at run time; empty for most methods."""
        return {}

    def heldout_samples(self, train: Sequence[Sample]) -> list[Sample]:
        """The normal images of `train` that `fit` holds out (the same seeded split): never trained on."""
        normal = [s for s in train if s.label == 0]
        _, hold_idx = self._split_holdout(normal, [s.category for s in normal])  # type: ignore[arg-type]
        return [normal[i] for i in hold_idx]

    @property
    def threshold(self) -> float | None:
        return self.holdout.threshold if self.holdout else None

    def to(self, device: str | torch.device | None) -> Detector:
        self.device = resolve_device(device)
        self.model.to(self.device)
        return self

    def load_model_state(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Restore weights from a checkpoint; methods with data-sized buffers (a memory bank) resize first."""
        self.model.load_state_dict(state_dict)

    def save(self, path: str) -> None:
        if not self.fitted:
            raise NotFittedError(f"{self.name} is not fitted: nothing to save")
        save_checkpoint(self, path)

    # ----- helpers ----------------------------------------------------------------------------------------
    def _conform(self, images: torch.Tensor) -> torch.Tensor:
        """Grayscale -> 3 channels, RGBA -> RGB, other sizes -> bilinear resize to the preset's size."""
        if images.ndim == 3:
            images = images.unsqueeze(0)
        if images.ndim != 4:
            raise DataError(f"{self.name}.predict expects images [B,3,H,W], got shape {tuple(images.shape)}")
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        elif images.shape[1] == 4:
            images = images[:, :3]
        elif images.shape[1] != 3:
            raise DataError(f"{self.name}.predict expects 1, 3 or 4 channels, got {images.shape[1]}")
        size = self.config.image_size
        if images.shape[-2:] != (size, size):
            images = torch.nn.functional.interpolate(images.float(), size=(size, size), mode="bilinear",
                                                     align_corners=False, antialias=True)
        return images.float()

    def _as_dataset(self, train: TrainData) -> tuple[Dataset, list[str]]:
        if isinstance(train, torch.Tensor):
            if train.ndim != 4 or len(train) == 0:
                raise DataError(f"training tensor must be [N,3,H,W] with N >= 1, got {tuple(train.shape)}")
            return TensorImageDataset(self._conform(train)), [""] * len(train)
        if isinstance(train, Dataset) and not isinstance(train, Sequence):
            return train, [""] * len(train)  # type: ignore[arg-type]
        samples = [s for s in train if s.label == 0]
        if not samples:
            raise DataError("the training set has no normal images; expected <category>/train/good/* images")
        return self.dataset(samples), [s.category for s in samples]

    def _split_holdout(self, dataset: Dataset, categories: list[str]) -> tuple[list[int], list[int]]:
        """Stratified by category; `max_train_images` then subsamples the training part (seeded)."""
        n = len(dataset)  # type: ignore[arg-type]
        if n == 0:
            raise DataError("the training set is empty; expected at least one normal image")
        gen = torch.Generator().manual_seed(self.config.seed)
        train_idx, hold_idx = [], []
        for cat in sorted(set(categories)):
            idx = [i for i, c in enumerate(categories) if c == cat]
            perm = [idx[j] for j in torch.randperm(len(idx), generator=gen).tolist()]
            k = _holdout_count(len(idx), self.config.holdout_fraction)
            hold_idx += perm[:k]
            train_idx += perm[k:]
        cap = self.config.max_train_images
        if cap is not None and len(train_idx) > cap:
            pick = torch.randperm(len(train_idx), generator=gen)[:cap].tolist()
            train_idx = [train_idx[j] for j in pick]
        return sorted(train_idx), sorted(hold_idx)

    def _holdout_stats(self, hold: Dataset, categories: list[str]) -> HoldoutStats:
        scores, pixels = [], []
        gen = torch.Generator().manual_seed(self.config.seed)
        for pred, _, _ in self.predict_dataset(hold):
            scores.append(pred.image_score)
            flat = pred.anomaly_map.flatten()
            keep = min(flat.numel(), 200_000)  # a bounded random sample of pixels is enough for quantiles
            pixels.append(flat[torch.randperm(flat.numel(), generator=gen)[:keep]])
        image_scores = torch.cat(scores)
        q = torch.linspace(0, 1, 101)
        pixel_q = torch.quantile(_subsample(torch.cat(pixels), 4_000_000, gen), q)
        level = self.config.threshold_quantile
        per_cat = {
            c: float(torch.quantile(image_scores[[i for i, x in enumerate(categories) if x == c]], level))
            for c in sorted(set(categories)) if c
        }
        return HoldoutStats(image_scores, pixel_q, float(torch.quantile(image_scores, level)), per_cat)


class GradientDetector(Detector):
    """A method trained by gradient descent with the shared loop in `miad.train`.

    Subclasses implement `encode(images)` (the frozen part; its output may be cached across epochs),
    `loss(inputs)` on what `encode` returned, and `trainable_modules()`.
    """

    def encode(self, images: torch.Tensor) -> Any:
        return images

    @abc.abstractmethod
    def loss(self, inputs: Any) -> torch.Tensor:
        """Scalar training loss on what `encode` returned (called in train mode, and for validation)."""

    @abc.abstractmethod
    def trainable_modules(self) -> list[nn.Module]:
        """The sub-modules whose parameters the optimiser updates."""

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for m in self.trainable_modules() for p in m.parameters() if p.requires_grad]

    def _fit(self, train: Dataset, val: Dataset | None, **options: Any) -> None:
        self.history = train_detector(self, train, val, **options)


def _holdout_count(n: int, fraction: float) -> int:
    if fraction <= 0 or n < 2:
        return 0
    return min(n - 1, max(1, math.floor(fraction * n + 0.5)))


def _subsample(x: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    return x if x.numel() <= k else x[torch.randperm(x.numel(), generator=gen)[:k]]
