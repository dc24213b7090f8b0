"""Inspecting new images: one interface over a torch checkpoint or an exported ONNX / OpenVINO file, and `predict_paths`
which streams any number of images in batches (bounded memory) into overlays, binary masks and CSV/JSON.

Decisions use the held-out normal threshold stored with the model (never test data) or `--threshold`; the
binary mask marks pixels above the held-out normal pixel quantile at the same level (`threshold_quantile`).
"""

from __future__ import annotations

import glob
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from miad.errors import DataError
from miad.visual import normal_color_range


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
    from miad.export import format_of

    path = Path(checkpoint)
    if format_of(path) is not None:
        return _open_exported(path)
    from miad.registry import load

    det = load(path, device=device)

    def run(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pred = det.predict(torch.from_numpy(images)).cpu()
        return pred.image_score.numpy(), pred.anomaly_map.numpy()

    hold = det.holdout
    return LoadedModel(det.name, det.config.image_size, det.config.normalize, hold.threshold if hold else None,
                       hold.pixel_quantiles.tolist() if hold else None, det.config.threshold_quantile, run)


def _open_exported(path: Path) -> LoadedModel:
    from miad.export import open_exported

    meta, run = open_exported(path)
    return LoadedModel(meta["method"], meta["image_size"], meta["normalize"], meta["threshold"],
                       meta["pixel_quantiles"], meta["threshold_quantile"], run)


def expand_inputs(inputs: Sequence[str]) -> list[Path]:
    """Files, folders (recursively) and glob patterns -> sorted unique image paths."""
    from miad.data.io import is_image_file

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
        found.update(dict.fromkeys(paths))
    if not found:
        raise DataError(f"no images found in {', '.join(inputs)}; supported: png, jpg, jpeg, bmp, tif, tiff")
    return list(found)


def _batches(paths: list[Path], model: LoadedModel, batch_size: int) -> Iterator[tuple[list[Path], np.ndarray]]:
    from miad.data.io import load_rgb
    from miad.preprocess import normalize

    for i in range(0, len(paths), batch_size):
        chunk = paths[i : i + batch_size]
        arrays = [np.asarray(load_rgb(p, model.image_size), dtype=np.float32) / 255.0 for p in chunk]
        images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
        yield chunk, normalize(images, model.normalize).contiguous().numpy()


def predict_paths(model: LoadedModel, paths: list[Path], out: Path, threshold: float | None = None,
                  batch_size: int = 8, progress: bool = True) -> list[dict[str, Any]]:
    """Score every image; write overlays/, masks/, predictions.csv and predictions.json into `out`."""
    from tqdm.auto import tqdm

    from miad.visual import save_mask, save_overlay

    thr = threshold if threshold is not None else model.threshold
    pix_thr = model.pixel_threshold
    rows: list[dict[str, Any]] = []
    names = _unique_names(paths)
    (out / "overlays").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=len(paths), disable=not progress, desc=f"{model.name} predict")
    for chunk, images in _batches(paths, model, batch_size):
        scores, maps = model.run(images)
        for path, score, amap in zip(chunk, scores, maps):
            name = names[path]
            save_overlay(path, amap, out / "overlays" / f"{name}.png", model.color_range())
            if pix_thr is not None:
                save_mask(path, amap > pix_thr, out / "masks" / f"{name}.png")
            rows.append({"image": str(path), "score": float(score), "threshold": thr,
                         "anomalous": None if thr is None else bool(score > thr),
                         "overlay": f"overlays/{name}.png", "mask": f"masks/{name}.png" if pix_thr else None})
        bar.update(len(chunk))
    bar.close()
    _write_tables(out, rows, model)
    return rows


def _unique_names(paths: list[Path]) -> dict[Path, str]:
    """Output file stems: the image stem, made unique with a counter when two inputs share it."""
    seen: dict[str, int] = {}
    names = {}
    for p in paths:
        k = seen.get(p.stem, 0)
        seen[p.stem] = k + 1
        names[p] = p.stem if k == 0 else f"{p.stem}-{k}"
    return names


def _write_tables(out: Path, rows: list[dict[str, Any]], model: LoadedModel) -> None:
    import csv
    import io

    from miad.runconfig import write_json_atomic, write_text_atomic

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["image", "score", "threshold", "anomalous", "overlay", "mask"])
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(out / "predictions.csv", buf.getvalue())
    write_json_atomic(out / "predictions.json", {"method": model.name, "pixel_threshold": model.pixel_threshold,
                                                 "predictions": rows})
