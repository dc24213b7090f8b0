"""How detection degrades as an uncontrolled factor grows (beyond the paper).

MIAD's three uncontrolled factors are viewpoint, background and surface. When the data carries a `manifest.csv`
with each image's factor values (the built-in mini-MIAD does), the test images of each category are split into
terciles of each factor's value (low / mid / high) and image AUROC is computed inside each tercile: that
tercile's defective images against that tercile's good images, with the run's own scores. A factor that does not
vary in a category (a controlled factor) is skipped there, as is a tercile without both good and defective
images. Terciles are taken per category because each category has its own factor strengths.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np

from miad.bench.rundir import read_scores
from miad.metrics import image_auroc

FACTOR_NAMES = ("viewpoint", "background", "surface")
BINS = ("low", "mid", "high")
MANIFEST = "manifest.csv"

Manifest = dict[str, dict[str, float]]  # image path relative to the data root -> factor -> value


def load_manifest(root: Path) -> Manifest | None:
    """Factor values per image from ROOT/manifest.csv, or None when there is none (or no factor column)."""
    path = root / MANIFEST
    if not path.is_file():
        return None
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        factors = [f for f in FACTOR_NAMES if f in (reader.fieldnames or [])]
        if "path" not in (reader.fieldnames or []) or not factors:
            return None
        return {row["path"]: {f: _number(row[f]) for f in factors} for row in reader}


def _number(text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def _scored_images(run_dir: Path, root: Path, manifest: Manifest) -> list[dict[str, Any]]:
    """The run's test scores joined with the manifest's factor values (images absent from it are dropped)."""
    out = []
    for row in read_scores(run_dir):
        try:
            rel = Path(row["image"]).relative_to(root).as_posix()
        except ValueError:
            continue
        if rel in manifest:
            out.append({"category": row["category"], "label": int(row["label"]), "score": float(row["score"]),
                        **manifest[rel]})
    return out


def tercile_bins(values: np.ndarray) -> tuple[np.ndarray, list[tuple[float, float]]] | None:
    """Bin index 0/1/2 per value and each bin's value range; None when the values do not vary."""
    finite = values[np.isfinite(values)]
    if finite.size < 3 or float(finite.max() - finite.min()) <= 1e-12:
        return None
    q1, q2 = np.quantile(finite, [1 / 3, 2 / 3])
    index = np.where(values <= q1, 0, np.where(values <= q2, 1, 2))
    index[~np.isfinite(values)] = -1
    ranges = [(float(values[index == b].min()), float(values[index == b].max())) if (index == b).any()
              else (math.nan, math.nan) for b in range(3)]
    return index, ranges


def factor_rows(run_dir: Path, root: Path, manifest: Manifest) -> list[dict[str, Any]]:
    """Rows (category, subset "factor/bin", counts, image_auroc, value_range) for one finished run."""
    images = _scored_images(run_dir, root, manifest)
    rows: list[dict[str, Any]] = []
    for category in sorted({im["category"] for im in images}):
        cat = [im for im in images if im["category"] == category]
        labels = np.array([im["label"] for im in cat])
        scores = np.array([im["score"] for im in cat], dtype=np.float64)
        for factor in FACTOR_NAMES:
            if factor not in cat[0]:
                continue
            binned = tercile_bins(np.array([im[factor] for im in cat], dtype=np.float64))
            if binned is None:
                continue
            index, ranges = binned
            for b, name in enumerate(BINS):
                sel = index == b
                n_defect, n_good = int(labels[sel].sum()), int((labels[sel] == 0).sum())
                auroc = float(image_auroc(scores[sel], labels[sel])) if n_defect and n_good else None
                rows.append({"category": category, "subset": f"{factor}/{name}", "n_good": n_good,
                             "n_defect": n_defect, "image_auroc": auroc,
                             "value_range": f"{ranges[b][0]:.3g}-{ranges[b][1]:.3g}"})
    return rows
