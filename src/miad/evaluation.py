"""Evaluate a fitted detector on test samples: metrics through the accumulator, per-image scores, float16 maps.

`evaluate_detector` is the public `miad.evaluate(det, samples)`; used by `miad test` and the benchmark runner.
Maps are streamed into a compressed `.npz` (one float16 array per image, keyed by its index in the score CSV) so
a MIAD-sized test set never sits in memory.
"""

from __future__ import annotations

import csv
import io
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from miad.atomic import publish, temp_beside, write_text_atomic
from miad.detector import Detector
from miad.metrics import MetricAccumulator, MetricsResult
from miad.types import Sample

SCORE_FIELDS = ("index", "image", "category", "defect_type", "label", "score", "decision")


@dataclass
class Evaluation:
    metrics: MetricsResult
    rows: list[dict[str, Any]]  # per-image scores and decisions
    seconds: float  # wall time of the whole evaluation (loading, prediction, metrics, maps)
    ms_per_image: float  # model time per image (predict only, device synchronised)


class MapWriter:
    """Append float16 maps to a compressed npz written to a temp file and renamed on close."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = temp_beside(path)
        self.zip = zipfile.ZipFile(self.tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1)

    def add(self, index: int, amap: torch.Tensor) -> None:
        buf = io.BytesIO()
        np.save(buf, amap.numpy().astype(np.float16))
        self.zip.writestr(f"{_map_key(index)}.npy", buf.getvalue())

    def close(self) -> None:
        self.zip.close()
        publish(self.tmp, self.path)

    def abort(self) -> None:
        self.zip.close()
        self.tmp.unlink(missing_ok=True)


def decision_threshold(det: Detector, category: str, override: float | None = None) -> float | None:
    """--threshold, else the category's held-out threshold (unified models), else the global one."""
    if override is not None:
        return override
    if det.holdout is None:
        return None
    return det.holdout.category_thresholds.get(category, det.holdout.threshold)


def evaluate_detector(
    det: Detector, samples: Sequence[Sample], *, batch_size: int | None = None, num_workers: int = 0,
    maps_path: Path | None = None, progress: bool = True, threshold: float | None = None,
) -> Evaluation:
    """Predict every test sample once; feed the metrics accumulator; optionally stream maps to `maps_path`.
    The metrics are in `.metrics` (`.mean`, `.per_category`, ...), per-image scores and decisions in `.rows`."""
    samples = list(samples)
    acc = MetricAccumulator()
    writer = MapWriter(maps_path) if maps_path else None
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    predict_s = 0.0  # model time only (loading, metrics and map writing excluded)
    try:
        ds = det.dataset(samples)
        bar = tqdm(total=len(samples), disable=not progress, leave=False, desc=f"{det.name} test")
        batches = det.predict_dataset(ds, batch_size=batch_size, num_workers=num_workers)
        for pred, batch, seconds in batches:
            predict_s += seconds
            idx = batch["index"].tolist()
            batch_samples = [samples[i] for i in idx]
            acc.update(pred, batch["mask"], batch_samples)
            for j, (i, s) in enumerate(zip(idx, batch_samples)):
                rows.append(_row(det, i, s, float(pred.image_score[j]), threshold))
                if writer:
                    writer.add(i, pred.anomaly_map[j])
            bar.update(len(idx))
        bar.close()
    except BaseException:
        if writer:
            writer.abort()
        raise
    seconds = time.perf_counter() - t0
    if writer:
        writer.close()
    return Evaluation(acc.compute(), rows, seconds, 1000 * predict_s / max(len(samples), 1))


def _row(det: Detector, index: int, s: Sample, score: float, override: float | None) -> dict[str, Any]:
    thr = decision_threshold(det, s.category, override)
    return {
        "index": index, "image": str(s.image), "category": s.category, "defect_type": s.defect_type,
        "label": s.label, "score": score, "decision": "" if thr is None else int(score > thr),
    }


def write_scores_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=SCORE_FIELDS)
    w.writeheader()
    w.writerows(rows)
    write_text_atomic(path, buf.getvalue(), errors="surrogateescape")  # file names of any bytes, as they are


def _map_key(index: int) -> str:
    return f"{index:06d}"  # the image's index in the scores CSV


def read_map(path: Path, index: int) -> np.ndarray:
    """One float16 map of an npz written by MapWriter, as float32."""
    with np.load(path) as z:
        return z[_map_key(index)].astype(np.float32)
