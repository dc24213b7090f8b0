"""Figure A.1 (qualitative grid) and the factor plot, drawn from the run folders with matplotlib (Agg backend).

Figure A.1: one row per category (a defective test image: the one with the largest defect among its first 20
defective images), columns = the image, its ground truth, each method's heat map (colours stretched over that
image's own min..max: shows where a method looks, never whether it would alarm), then each method's map on a
fixed scale from its held-out normal pixel quantiles (median normal pixel = dark, the most anomalous held-out
normal pixel = saturated): what a method would flag, comparable across images. Maps come from each run's
maps.npz and quantiles from its result.json, so no model is needed. With several seeds, the lowest is shown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from miad.bench.aggregate import factor_delta_cells, label, labels_of, ordered_categories, select
from miad.bench.factors import BINS, FACTOR_NAMES
from miad.bench.rundir import MAPS, read_result, read_scores, run_dirs
from miad.data.index import load_samples
from miad.data.io import load_mask, load_rgb
from miad.evaluation import read_map
from miad.visual import normal_color_range, overlay

MAX_CANDIDATES = 20


def _pyplot() -> Any:
    import matplotlib  # here: the Agg backend must be chosen before pyplot loads, and only drawing needs them

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _runs_by_label(out: Path) -> dict[str, dict[str, Path]]:
    """label -> category -> run folder (lowest seed), for every finished run."""
    chosen: dict[str, dict[str, tuple[int, Path]]] = {}
    for run_dir in run_dirs(out):
        res = read_result(run_dir)
        for cat in res["categories"]:
            per = chosen.setdefault(label(res), {})
            if cat not in per or res["seed"] < per[cat][0]:
                per[cat] = (res["seed"], run_dir)
    return {lab: {c: p for c, (_, p) in per.items()} for lab, per in chosen.items()}


def _pick_example(category: str, run_dir: Path, data_root: Path) -> tuple[str, Path] | None:
    """(image path, mask path) of the category's illustrative defective image, or None without masks."""
    masks = {str(s.image): s.mask for s in load_samples(str(data_root), [category]) if s.mask is not None}
    candidates = [r["image"] for r in read_scores(run_dir) if r["category"] == category and r["label"] == "1"
                  and r["image"] in masks][:MAX_CANDIDATES]
    if not candidates:
        return None
    areas = [int(np.count_nonzero(load_mask(masks[c]))) for c in candidates]
    best = candidates[int(np.argmax(areas))]
    return best, masks[best]


def _map_of(run_dir: Path, image: str) -> np.ndarray | None:
    index = next((int(r["index"]) for r in read_scores(run_dir) if r["image"] == image), None)
    if index is None or not (run_dir / MAPS).is_file():
        return None
    return read_map(run_dir / MAPS, index)


def _quantiles(run_dir: Path) -> list[float] | None:
    holdout = read_result(run_dir).get("holdout")
    return holdout["pixel_quantiles"] if holdout else None


def _rgb(path: str, size: tuple[int, int]) -> np.ndarray:
    """The image as uint8 RGB [H, W, 3] at `size` (H, W)."""
    return np.asarray(load_rgb(path, (size[1], size[0])))


def figure_a1(out: Path, path: Path) -> Path | None:
    """Write Figure A.1 to `path`; None when no category has a defective image with a mask."""
    runs = _runs_by_label(out)
    labels = labels_of({"method": lab.replace(" (unified)", ""), "unified": lab.endswith("(unified)")}
                       for lab in runs)
    categories = ordered_categories({c for per in runs.values() for c in per})
    examples = []
    for cat in categories:
        first = runs[labels[0]].get(cat) or next(per[cat] for per in runs.values() if cat in per)
        root = Path(read_result(first)["data_root"])
        picked = _pick_example(cat, first, root)
        if picked:
            examples.append((cat, *picked))
    if not examples:
        return None
    plt = _pyplot()
    n_cols = 2 + 2 * len(labels)
    fig, axes = plt.subplots(len(examples), n_cols, figsize=(1.25 * n_cols, 1.35 * len(examples) + 0.4),
                             squeeze=False)
    for i, (cat, image, mask) in enumerate(examples):
        _draw_row(axes[i], cat, image, mask, [(lab, runs[lab].get(cat)) for lab in labels], top=i == 0)
    fig.tight_layout(pad=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, format="png")  # the temp name ends in .tmp
    plt.close(fig)
    return path


def run_rows(run_dir: Path) -> dict[str, np.ndarray]:
    """A finished run's own rows of Figure A.1, for trackers: category -> uint8 [H, 4W+6, 3] image (the picked
    defective image, its ground truth, the run's map on that image's own scale, then on the held-out normal
    scale; the last panel is left out without held-out images)."""
    res = read_result(run_dir)
    rows = {}
    for cat in res["categories"]:
        picked = _pick_example(cat, run_dir, Path(res["data_root"]))
        amap = _map_of(run_dir, picked[0]) if picked else None
        if amap is None:
            continue
        amap = amap.astype(np.float32)
        rgb = _rgb(picked[0], amap.shape)
        truth = np.repeat(load_mask(picked[1], (amap.shape[1], amap.shape[0]))[..., None], 3, 2).astype(np.uint8)
        panels = [rgb, truth * 255, overlay(rgb, amap, None, 0.5)]
        quant = _quantiles(run_dir)
        if quant:
            panels.append(overlay(rgb, amap, normal_color_range(quant), 0.5))
        gap = np.full((amap.shape[0], 2, 3), 255, np.uint8)
        rows[cat] = np.concatenate([p for panel in panels for p in (panel, gap)][:-1], axis=1)
    return rows


def _draw_row(axes: Any, category: str, image: str, mask: Path, runs: list[tuple[str, Path | None]],
              top: bool) -> None:
    maps = {lab: _map_of(run, image) if run else None for lab, run in runs}
    size = next((m.shape for m in maps.values() if m is not None), (256, 256))
    rgb = _rgb(image, size)
    truth = load_mask(mask, (size[1], size[0])).astype(np.float32)
    panels = [("image", rgb, None), ("ground truth", truth, None)]
    panels += [(lab, maps[lab], None) for lab, _ in runs]
    panels += [(f"{lab}\nnormal-scaled", maps[lab], _quantiles(run) if run else None) for lab, run in runs]
    for ax, (title, data, quant) in zip(axes, panels):
        ax.set_xticks([])
        ax.set_yticks([])
        if top:
            ax.set_title(title, fontsize=6)
        if data is None:
            ax.text(0.5, 0.5, "no map", ha="center", va="center", fontsize=6, transform=ax.transAxes)
        elif title in ("image", "ground truth"):
            ax.imshow(data, cmap="gray" if data.ndim == 2 else None, vmin=0)
        else:
            _overlay(ax, rgb if rgb.shape[:2] == data.shape else _rgb(image, data.shape), data, quant,
                     scaled="normal-scaled" in title)
    axes[0].set_ylabel(category.replace("_", " "), fontsize=6)


def _overlay(ax: Any, rgb: np.ndarray, amap: np.ndarray, quant: list[float] | None, scaled: bool) -> None:
    if scaled and quant is None:
        ax.text(0.5, 0.5, "no held-out\nimages", ha="center", va="center", fontsize=6, transform=ax.transAxes)
        return
    lo, hi = normal_color_range(quant) if scaled else (float(amap.min()), float(amap.max()))
    hi = max(hi, lo + 1e-12)
    ax.imshow(rgb)
    ax.imshow(amap, cmap="jet", alpha=0.5, vmin=lo, vmax=hi)


def factor_figure(rows: list[dict[str, Any]], path: Path) -> Path | None:
    """Image AUROC per factor tercile (one panel per factor, one line per method); None without factor rows."""
    rows = select(rows, "factor")
    factors = [f for f in FACTOR_NAMES if any(r["subset"].startswith(f + "/") for r in rows)]
    if not factors:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(factors), figsize=(3.2 * len(factors), 3.2), squeeze=False)
    for ax, factor in zip(axes[0], factors):
        per, _ = factor_delta_cells(rows, factor)
        for lab in labels_of(rows):
            values = [per.get(lab, {}).get(b) for b in BINS]
            if all(v is not None and v.mean is not None for v in values):
                ax.plot(BINS, [100 * v.mean for v in values], marker="o", label=lab)
        ax.set_title(factor)
        ax.set_xlabel("factor tercile")
        ax.set_ylabel("image AUROC (%)")
        ax.grid(alpha=0.3)
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=min(len(names), 6) or 1, fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.08 + 0.05 * ((len(names) - 1) // 6), 1, 1))  # room for the legend below
    fig.savefig(path, dpi=110, format="png")  # the temp name ends in .tmp
    plt.close(fig)
    return path
