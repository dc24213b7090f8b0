"""The detector contract shared by every method.

`fit(train) -> self` and `predict(images) -> Prediction` (higher = more anomalous, maps at the preset's input
size). `fit` keeps `holdout_fraction` of the normal training images out of training; their scores give the
default decision threshold, the heat-map colour scale and the validation loss. The test split is never used to
pick thresholds, epochs or checkpoints, except under the opt-in `selection` (miad.selection: the peers' protocol,
its outputs marked "selected on test").

A method subclasses `Detector` (fit directly, e.g. PatchCore) or `GradientDetector` (exposes `encode`, `loss`
and `trainable_modules`, and shares `miad.train`). Held-out calibration is in `miad.holdout`, input shaping in
`miad.preprocess`; `state()` / `from_state()` are the only code that writes / reads a checkpoint's detector state.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from miad.checkpoint import save_checkpoint
from miad.config import BaseConfig, apply_overrides
from miad.data.dataset import ImageDataset, TensorImageDataset
from miad.errors import CheckpointError, ConfigError, DataError, NotFittedError
from miad.holdout import HoldoutStats, holdout_stats, split_holdout
from miad.preprocess import conform_images
from miad.train import train_detector
from miad.types import Prediction, Sample

TrainData = Sequence[Sample] | torch.Tensor | Dataset


def resolve_device(device: str | torch.device | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but no CUDA GPU is available; use --device cpu or auto")
    return dev


class Detector(abc.ABC):
    """Base class: the contract (fit, predict, save), its data plumbing and the checkpoint state."""

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
        """Create the nn.Module (frozen backbones with ImageNet weights when `pretrained`, else random). Its forward
        is the whole torch-only inference graph: preprocessed images [B,3,S,S] -> (image scores [B], maps [B,S,S])
        (no numpy/scipy: exportable)."""

    @abc.abstractmethod
    def _fit(self, train: Dataset, val: Dataset | None, **options: Any) -> None:
        """Train on `train`; `val` holds the held-out normal images (validation only)."""

    # ----- public API --------------------------------------------------------------------------------------
    def fit(
        self, train: TrainData, *, device: str | torch.device | None = "auto", progress: bool = True,
        state_dir: str | None = None, num_workers: int | str = 0, callback: Any = None, image_cache: bool = True,
        selection: Any = None,
    ) -> Detector:
        """Fit on normal training images: a list of Samples, a preprocessed tensor [N,3,S,S] or a Dataset.

        num_workers: data-loading processes, or "auto" (miad.data.feed.resolve_workers). image_cache: let
        gradient training decode each image once into the decoded-image cache (same weights; miad.data.cache).
        `selection`: the opt-in test-set model selection (miad.selection; gradient methods only)."""
        dataset, categories = self._as_dataset(train)
        train_idx, hold_idx = split_holdout(categories, self.config)
        self.to(device)
        self.trained_on = sorted({c for c in categories if c})
        train_ds = Subset(dataset, train_idx)
        hold_ds = Subset(dataset, hold_idx) if hold_idx else None
        options = {"selection": selection} if selection is not None else {}
        self._fit(train_ds, hold_ds, progress=progress, state_dir=state_dir, num_workers=num_workers,
                  callback=callback, image_cache=image_cache, **options)
        self.fitted = True
        if hold_ds:
            predictions = (pred for pred, _, _ in self.predict_dataset(hold_ds))
            self.holdout = holdout_stats(predictions, [categories[i] for i in hold_idx], self.config)
        else:
            self.holdout = None
        return self

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> Prediction:
        """images: [B,3,S,S] normalised as the preset says -> Prediction at S x S (S = config.image_size)."""
        if not self.fitted:
            raise NotFittedError(f"{self.name} is not fitted: call fit() first (or load a checkpoint)")
        self.model.eval()
        score, amap = self.model(conform_images(images, self.config.image_size, f"{self.name}.predict").to(self.device))
        return Prediction(score.float(), amap.float())

    def predict_dataset(
        self, dataset: Dataset, batch_size: int | None = None, num_workers: int | str = 0
    ) -> Iterator[tuple[Prediction, dict[str, torch.Tensor], float]]:
        """Yield (Prediction on CPU, batch, seconds of model time) over a Dataset of dicts with 'image' (and
        'mask', 'index'); the time includes the copy to the CPU, which waits for the device."""
        from miad.data.feed import resolve_workers

        loader = DataLoader(dataset, batch_size=batch_size or self.config.batch_size, shuffle=False,
                            num_workers=resolve_workers(num_workers, len(dataset)),  # type: ignore[arg-type]
                            pin_memory=self.device.type == "cuda")
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
        _, hold_idx = split_holdout([s.category for s in normal], self.config)
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

    def save(self, path: str | Path, identity: dict[str, Any] | None = None) -> None:
        """A checkpoint of `state()`; `identity`: what `miad train` made the model from (see miad.train_out)."""
        if not self.fitted:
            raise NotFittedError(f"{self.name} is not fitted: nothing to save")
        save_checkpoint(self.state(), path, identity)

    # ----- checkpoint state: the only code that reads or writes it ----------------------------------------
    def state(self) -> dict[str, Any]:
        """What a checkpoint holds of the detector: {method, config, state_dict, holdout, trained_on, history}."""
        return {
            "method": self.name,
            "config": self.config.to_dict(),
            "state_dict": self.model.state_dict(),
            "holdout": self.holdout.to_state() if self.holdout else None,
            "trained_on": list(self.trained_on),
            "history": list(self.history),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], source: str | Path = "checkpoint") -> Detector:
        """A fitted detector from `state()`'s dict; `source` (the file) is named in errors."""
        try:
            config = apply_overrides(cls.Config(), state["config"])
        except ConfigError as exc:
            raise CheckpointError(f"checkpoint {source} has a config this miad cannot use ({exc})") from None
        det = cls(config, pretrained=False)
        try:
            det.load_model_state(state["state_dict"])
        except RuntimeError as exc:
            first = str(exc).splitlines()[0][:200]
            raise CheckpointError(f"checkpoint {source} does not match the {cls.name} model ({first})") from None
        det.holdout = HoldoutStats.from_state(state["holdout"]) if state.get("holdout") else None
        det.trained_on = list(state.get("trained_on", []))
        det.history = list(state.get("history", []))
        det.fitted = True
        return det

    # ----- helpers ----------------------------------------------------------------------------------------
    def _as_dataset(self, train: TrainData) -> tuple[Dataset, list[str]]:
        if isinstance(train, torch.Tensor):
            if train.ndim != 4 or len(train) == 0:
                raise DataError(f"training tensor must be [N,3,H,W] with N >= 1, got {tuple(train.shape)}")
            return TensorImageDataset(conform_images(train, self.config.image_size, f"{self.name}.fit")), \
                [""] * len(train)
        if isinstance(train, Dataset) and not isinstance(train, Sequence):
            return train, [""] * len(train)  # type: ignore[arg-type]
        samples = [s for s in train if s.label == 0]
        if not samples:
            raise DataError("the training set has no normal images; expected <category>/train/good/* images")
        return self.dataset(samples), [s.category for s in samples]


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

