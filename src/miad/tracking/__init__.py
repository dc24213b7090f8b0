"""Logging a training run to the trackers people already use: `metrics.csv`, TensorBoard, MLflow.

`--logger none|csv|tensorboard|mlflow` (repeatable; default csv). One small interface (`Tracker`: log_params,
log_epoch, log_images, log_metrics, close) fans out to the chosen back-ends. The training loop logs an epoch only
after its resume state is saved, and a resumed run hands the tracker the epochs already finished (`RunInfo.done`,
from the resume state): every back-end then makes its log hold exactly those epochs before the run continues,
so a kill at any moment neither duplicates nor drops an epoch (see each back-end for how). Only rank 0 of a
torchrun job opens a tracker.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from miad.errors import ConfigError
from miad.tracking.csv_log import CsvBackend
from miad.tracking.mlflow_log import MlflowBackend
from miad.tracking.tensorboard_log import TensorBoardBackend

LOGGERS = ("none", "csv", "tensorboard", "mlflow")
DEFAULT_LOGGERS = ("csv",)
_PACKAGE = {"tensorboard": "tensorboard", "mlflow": "mlflow"}  # logger -> the module (and miad extra) it needs


def resolve_loggers(values: Sequence[str] | None) -> tuple[str, ...]:
    """--logger values (repeated or comma lists) -> back-end names; () for `none`. Unknown names and missing
    packages fail here, before anything is trained."""
    names = [n.strip() for v in (values or DEFAULT_LOGGERS) for n in v.split(",") if n.strip()]
    unknown = [n for n in names if n not in LOGGERS]
    if unknown or not names:
        raise ConfigError(f"unknown --logger {', '.join(unknown) or repr('')}; use one or more of {', '.join(LOGGERS)}")
    if "none" in names:
        if len(set(names)) > 1:
            raise ConfigError("--logger none cannot be combined with other loggers; pass none alone")
        return ()
    names = list(dict.fromkeys(names))
    for name in names:
        package = _PACKAGE.get(name)
        if package and importlib.util.find_spec(package) is None:
            raise ConfigError(f"--logger {name} needs the {package} package, which is not installed: "
                              f"pip install 'miad[{name}]'")
    return tuple(names)


@dataclass
class RunInfo:
    """Where and as what one run is logged."""

    folder: Path  # metrics.csv and tensorboard/ go here (the train --out, or a benchmark run folder)
    state_dir: Path  # the run's resume state folder: the MLflow run id is kept here until the run is finished
    store: Path  # MLflow's default local store goes here (the --out of the command)
    experiment: str  # MLflow experiment (one per benchmark; "miad train" for `miad train`)
    run_name: str
    tags: dict[str, str] = field(default_factory=dict)
    done: list[dict[str, Any]] = field(default_factory=list)  # history rows of the epochs already finished


class Tracker:
    """The chosen back-ends behind one interface; a context manager that closes them (a failed or interrupted
    run is closed as such: MLflow marks it FAILED or KILLED)."""

    def __init__(self, backends: Sequence[Any]) -> None:
        self.backends = list(backends)

    @property
    def wants_images(self) -> bool:
        """Whether any back-end shows images (so that making them is worth it)."""
        return any(b.wants_images for b in self.backends)

    def log_params(self, params: dict[str, Any]) -> None:
        for b in self.backends:
            b.log_params(params)

    def log_epoch(self, epoch: int, scalars: dict[str, float]) -> None:
        """One finished epoch (its resume state already saved); `scalars` are its history row."""
        for b in self.backends:
            b.log_epoch(epoch, {k: float(v) for k, v in scalars.items() if k != "epoch" and _is_number(v)})

    def log_images(self, images: dict[str, np.ndarray], step: int) -> None:
        """name -> uint8 [H,W,3] image (heat maps, Figure A.1 rows)."""
        for b in self.backends:
            b.log_images(images, step)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Results that are not per epoch (test metrics, PatchCore's fit statistics); None values are left out."""
        clean = {k: float(v) for k, v in metrics.items() if _is_number(v)}
        for b in self.backends:
            b.log_metrics(clean, step)

    def close(self, status: str = "FINISHED") -> None:
        for b in self.backends:
            b.close(status)
        self.backends = []

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, kind: Any, *_: Any) -> None:
        if kind is None:
            self.close("FINISHED")
        else:
            self.close("KILLED" if issubclass(kind, KeyboardInterrupt) else "FAILED")


def open_tracker(names: Sequence[str], run: RunInfo) -> Tracker:
    """The back-ends `names` (from `resolve_loggers`) for `run`, each already holding `run.done`'s epochs."""
    kinds = {"csv": CsvBackend, "tensorboard": TensorBoardBackend, "mlflow": MlflowBackend}
    return Tracker([kinds[name](run) for name in names])


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool) \
        and np.isfinite(value)
