"""Inspecting new images: one interface over a torch checkpoint or an exported ONNX / OpenVINO file, and `predict_paths`
which streams any number of images in batches (bounded memory) into overlays, binary masks and CSV/JSON.

Decisions use the held-out normal threshold stored with the model (never test data) or `--threshold`; the
binary mask marks pixels above the held-out normal pixel quantile at the same level (`threshold_quantile`).
"""

from __future__ import annotations

import csv
import glob
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from miad.atomic import write_json_atomic, write_text_atomic
from miad.config import BaseConfig
from miad.data.io import is_image_file, load_rgb
from miad.errors import DataError
from miad.export import format_of, open_exported
from miad.preprocess import normalize
from miad.registry import load
from miad.visual import normal_color_range, save_mask, save_overlay


@dataclass
class LoadedModel:
    """What prediction needs, whichever the model format."""

    name: str
    image_size: int
    normalize: str
    threshold: float | None
    pixel_quantiles: list[float] | None
    threshold_quantile: float
    run: Any  # images [B,3,S,S] float32 normalised -> (scores [B], maps [B,S,S]) as numpy
    resize: str = BaseConfig.resize  # the training data's resize mode, so predict sees the same pixels

    @property
    def pixel_threshold(self) -> float | None:
        if not self.pixel_quantiles:
            return None
        return float(self.pixel_quantiles[round(self.threshold_quantile * (len(self.pixel_quantiles) - 1))])

    def color_range(self) -> tuple[float, float] | None:
        """Heat-map scale from held-out normal pixels: median -> 0, held-out maximum -> 1."""
        return normal_color_range(self.pixel_quantiles)


def open_model(checkpoint: str | Path, device: str = "cpu") -> LoadedModel:
    """A model.pt (torch, on `device`), or an exported .onnx / OpenVINO .xml file (CPU)."""
    path = Path(checkpoint)
    if format_of(path) is not None:
        return _open_exported(path)
    det = load(path, device=device)

    def run(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pred = det.predict(torch.from_numpy(images)).cpu()
        return pred.image_score.numpy(), pred.anomaly_map.numpy()

    hold = det.holdout
    return LoadedModel(det.name, det.config.image_size, det.config.normalize, hold.threshold if hold else None,
                       hold.pixel_quantiles.tolist() if hold else None, det.config.threshold_quantile, run,
                       det.config.resize)


def _open_exported(path: Path) -> LoadedModel:
    meta, run = open_exported(path)
    return LoadedModel(meta["method"], meta["image_size"], meta["normalize"], meta["threshold"],
                       meta["pixel_quantiles"], meta["threshold_quantile"], run,
                       meta.get("config", {}).get("resize", BaseConfig.resize))  # older exports: the default


def expand_inputs(inputs: Sequence[str], exclude: str | Path | None = None) -> list[Path]:
    """Files, folders (recursively) and glob patterns -> sorted unique image paths; files under `exclude` (the
    output folder) are skipped, so a second run never scores the first one's overlays."""
    skip = Path(exclude).resolve() if exclude is not None else None
    found: dict[Path, None] = {}
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            paths = sorted(q for q in p.rglob("*") if q.is_file() and is_image_file(q))
        elif p.is_file():
            paths = [p]
        else:
            paths = sorted(Path(q) for q in glob.glob(item, recursive=True) if is_image_file(Path(q)))
            if not paths:
                raise DataError(f"input {item} matches no image file; pass image files, folders or globs")
        found.update(dict.fromkeys(q for q in paths if skip is None or not q.resolve().is_relative_to(skip)))
    if not found:
        where = f" (files under the output folder {exclude} are skipped)" if exclude is not None else ""
        raise DataError(f"no images found in {', '.join(inputs)}{where}; supported: png, jpg, jpeg, bmp, tif, tiff")
    return list(found)


def _load(paths: list[Path], model: LoadedModel) -> tuple[list[Path], np.ndarray | None, dict[Path, str]]:
    """The readable images of `paths` as a normalised batch, and the reason each unreadable one failed."""
    kept, arrays, failed = [], [], {}
    for p in paths:
        try:
            arrays.append(np.asarray(load_rgb(p, model.image_size, model.resize), dtype=np.float32) / 255.0)
            kept.append(p)
        except (DataError, OSError) as exc:  # one bad file costs its own row, never the run
            failed[p] = " ".join(str(exc).split())
    if not arrays:
        return kept, None, failed
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
    return kept, normalize(images, model.normalize).contiguous().numpy(), failed


def predict_paths(model: LoadedModel, paths: list[Path], out: Path, threshold: float | None = None,
                  batch_size: int = 8, progress: bool = True) -> list[dict[str, Any]]:
    """Score every readable image; write overlays/, masks/, predictions.csv and predictions.json into `out`.
    An unreadable image gets a row with its `error` (and no score); the others are scored and written."""
    thr = threshold if threshold is not None else model.threshold
    rows: list[dict[str, Any]] = []
    names = output_names(paths)
    # a context manager: on an error the bar ends its line too, so `error: ...` starts on a line of its own
    with tqdm(total=len(paths), disable=not progress, desc=f"{model.name} predict") as bar:
        for i in range(0, len(paths), batch_size):
            chunk = paths[i : i + batch_size]
            kept, images, failed = _load(chunk, model)
            scored = dict(zip(kept, zip(*model.run(images)))) if images is not None else {}
            for path in chunk:
                if path in failed:
                    rows.append({"image": str(path), "score": None, "threshold": thr, "anomalous": None,
                                 "overlay": None, "mask": None, "error": failed[path]})
                else:
                    rows.append(_write_outputs(model, path, *scored[path], out, names[path], thr))
            bar.update(len(chunk))
    _write_tables(out, rows, model)
    return rows


def _write_outputs(model: LoadedModel, path: Path, score: Any, amap: np.ndarray, out: Path, name: str,
                   thr: float | None) -> dict[str, Any]:
    pix_thr = model.pixel_threshold
    (out / "overlays" / name).parent.mkdir(parents=True, exist_ok=True)
    save_overlay(path, amap, out / "overlays" / name, model.color_range())
    if pix_thr is not None:
        (out / "masks" / name).parent.mkdir(parents=True, exist_ok=True)
        save_mask(path, amap > pix_thr, out / "masks" / name)
    return {"image": str(path), "score": float(score), "threshold": thr,
            "anomalous": None if thr is None else bool(score > thr), "overlay": f"overlays/{name}",
            "mask": f"masks/{name}" if pix_thr is not None else None, "error": None}


def output_names(paths: list[Path]) -> dict[Path, str]:
    """Output file names (.png): each input's path relative to the common parent of all inputs, so `a/x.png` and
    `b/x.png` never collide; `x.jpg` beside `x.png` becomes `x.jpg.png` (then a counter, should that exist)."""
    absolute = [Path(os.path.abspath(p)) for p in paths]
    parent = Path(os.path.commonpath([p.parent for p in absolute]))
    used: set[str] = set()
    names = {}
    for p, a in zip(paths, absolute):
        rel = a.relative_to(parent).as_posix()
        candidates = [Path(rel).with_suffix(".png").as_posix(), f"{rel}.png"]
        candidates += [f"{rel}-{k}.png" for k in range(1, len(paths) + 1)]  # a free one always exists
        name = next(c for c in candidates if c not in used)
        used.add(name)
        names[p] = name
    return names


def _write_tables(out: Path, rows: list[dict[str, Any]], model: LoadedModel) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["image", "score", "threshold", "anomalous", "overlay", "mask", "error"])
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(out / "predictions.csv", buf.getvalue(), errors="surrogateescape")  # any file name's bytes
    write_json_atomic(out / "predictions.json", {"method": model.name, "pixel_threshold": model.pixel_threshold,
                                                 "predictions": rows})
