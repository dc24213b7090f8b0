"""Trackers for a benchmark: each run is logged as its own run (its folder gets `metrics.csv` and
`tensorboard/`, so `tensorboard --logdir OUT/runs` compares them all), and in MLflow all runs of one benchmark
form one experiment (named after the benchmark's --out; the default store is `OUT/mlflow.db`), each run tagged
with its method, scenario, seed and preset. A finished run also logs its test metrics, its rows of Figure A.1
and a few held-out heat maps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from miad.bench.figures import run_rows
from miad.detector import Detector
from miad.tracking import RunInfo, Tracker, open_tracker
from miad.tracking.content import final_step, fit_statistics, heldout_heatmaps, run_params, test_metrics
from miad.train import finished_epochs


@dataclass(frozen=True)
class BenchTracking:
    loggers: tuple[str, ...]  # from miad.tracking.resolve_loggers
    preset: str
    out: Path  # the benchmark's --out


def experiment_name(out: Path) -> str:
    return f"miad benchmark {Path(out).resolve()}"


def open_run_tracker(tracking: BenchTracking | None, spec: Any, run_dir: Path, det: Detector) -> Tracker:
    """The tracker of one benchmark run (spec: a RunSpec), holding the epochs of its resume state."""
    if tracking is None or not tracking.loggers:
        return Tracker([])
    tags = {"method": spec.method, "scenario": spec.setting, "seed": str(spec.seed), "preset": tracking.preset,
            "categories": ",".join(spec.categories), "run_dir": str(Path(run_dir).resolve())}
    run = RunInfo(folder=run_dir, state_dir=run_dir / "state", store=tracking.out,
                  experiment=experiment_name(tracking.out), run_name=f"{spec.method}/{spec.setting}/seed{spec.seed}",
                  tags=tags, done=finished_epochs(run_dir / "state"))
    tracker = open_tracker(tracking.loggers, run)
    tracker.log_params(run_params(det, preset=tracking.preset, setting=spec.setting))
    return tracker


def log_run_end(tracker: Tracker, det: Detector, train: list[Any], result: dict[str, Any], run_dir: Path) -> None:
    """A finished run's test metrics, fit statistics and time, then its Figure A.1 rows and held-out heat maps
    (run_dir holds result.json, scores.csv and maps.npz by now)."""
    step = final_step(det)
    tracker.log_metrics({**test_metrics(result["metrics"]), **fit_statistics(det),
                         "fit/seconds": result["fit_seconds"], "fit/threshold": det.threshold,
                         "test/inference_ms_per_image": result["inference_ms_per_image"]}, step)
    if tracker.wants_images:
        rows = {f"figure_a1/{category}": image for category, image in run_rows(run_dir).items()}
        tracker.log_images({**rows, **heldout_heatmaps(det, train)}, step)
