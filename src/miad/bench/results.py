"""Flat result rows, rebuilt from the run folders; `results.jsonl` and `results.csv` written atomically.

One row per (run, scope, category, subset). Scopes:
- "category": a category's metrics (the paper's tables);
- "defect_type": one defect type's images vs the category's good images (subset = the type);
- "group": the surface or logical defects vs the category's good images (subset = the group);
- "factor": one tercile of an uncontrolled factor (subset = "viewpoint/low", ...; see `miad.bench.factors`);
- "run": what the run cost (fit seconds, ms per image, peak memory) and what it was trained on.
Every row carries the run's identity (method, setting, seed, unified, trained_on, protocol: held-out, or
paper-selection = selected on test). Undefined metrics are None.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from miad.atomic import write_text_atomic
from miad.bench.factors import factor_rows, load_manifest
from miad.bench.rundir import read_result, run_dirs
from miad.metrics.result import COUNTS, METRICS

IDENTITY = ("method", "setting", "seed", "unified", "trained_on", "protocol", "run", "scope", "category", "subset")
COSTS = ("fit_seconds", "inference_ms_per_image", "cpu_seconds", "peak_rss_mb", "peak_cuda_mb", "epochs",
         "resumed_after_epoch", "n_train", "n_test", "git_commit", "selected_epoch", "max_epochs")
FIELDS = IDENTITY + COUNTS + METRICS + ("value_range",) + COSTS + ("procedural_textures",)


def rows_of_run(result: dict[str, Any], run: str, factors: list[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """The category, defect-type, group, factor (computed by the caller) and run rows of one result.json."""
    base = {"method": result["method"], "setting": result["setting"], "seed": result["seed"],
            "unified": bool(result.get("unified")), "trained_on": ";".join(result.get("trained_on", [])),
            "run": run, "procedural_textures": procedural_textures(result),
            "protocol": result.get("protocol", "held-out")}
    metrics = result["metrics"]
    rows = [{**base, "scope": "category", "category": c, "subset": "", **e}
            for c, e in metrics["per_category"].items()]
    for key, entry in metrics["per_defect"].items():
        category, _, defect = key.partition("/")
        rows.append({**base, "scope": "defect_type", "category": category, "subset": defect, **entry})
    for group, per in metrics["groups"].items():
        rows += [{**base, "scope": "group", "category": c, "subset": group, **e} for c, e in per.items()]
    rows += [{**base, "scope": "factor", **f} for f in factors]
    memory = result.get("memory", {})
    rows.append({
        **base, "scope": "run", "category": "", "subset": "", "fit_seconds": result["fit_seconds"],
        "inference_ms_per_image": result["inference_ms_per_image"],
        "cpu_seconds": result.get("cpu_seconds_this_process"), "peak_rss_mb": memory.get("peak_rss_mb"),
        "peak_cuda_mb": memory.get("peak_cuda_mb"), "epochs": len(result.get("history", [])),
        "resumed_after_epoch": result.get("resumed_after_epoch", 0), "n_train": result.get("n_train"),
        "n_test": result.get("n_test"), "git_commit": result.get("git_commit"),
        **_selection_of(result),
    })
    return rows


def _selection_of(result: dict[str, Any]) -> dict[str, Any]:
    """The epoch a paper-selection run kept (on the test set) and its epoch budget; empty for held-out runs."""
    chosen = result.get("selection") or {}
    return {"selected_epoch": chosen.get("selected_epoch"), "max_epochs": chosen.get("max_epochs")} if chosen else {}


def procedural_textures(result: dict[str, Any]) -> bool:
    """A DRAEM run that synthesised anomalies from procedural textures instead of DTD (the original's source)."""
    return result.get("method_notes", {}).get("anomaly_source") == "procedural"


def collect_rows(out: Path, cache: dict[str, list[dict[str, Any]]] | None = None) -> list[dict[str, Any]]:
    """All rows of every finished run in OUT (factor rows included when the data has a manifest).

    cache: rows by run folder, kept by a caller that collects again as runs finish (a finished run never changes),
    so each run's files are read once rather than once per later run.
    """
    cache = {} if cache is None else cache
    manifests: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    for run_dir in run_dirs(out):
        key = run_dir.relative_to(out).as_posix()
        if key not in cache:
            cache[key] = _rows_of_finished_run(run_dir, key, manifests)
        rows += cache[key]
    return rows


def _rows_of_finished_run(run_dir: Path, key: str, manifests: dict[str, Any]) -> list[dict[str, Any]]:
    result = read_result(run_dir)
    root = result["data_root"]
    if root not in manifests:
        manifests[root] = load_manifest(Path(root))
    factors = factor_rows(run_dir, Path(root), manifests[root]) if manifests[root] is not None else []
    return [_complete(r) for r in rows_of_run(result, key, factors)]


def _complete(row: dict[str, Any]) -> dict[str, Any]:
    """Every field present, in FIELDS order (None where it does not apply)."""
    return {k: row.get(k) for k in FIELDS}


def write_results(out: Path, rows: list[dict[str, Any]]) -> None:
    lines = "".join(json.dumps(r, sort_keys=False) + "\n" for r in rows)
    write_text_atomic(out / "results.jsonl", lines)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in r.items()} for r in rows)
    write_text_atomic(out / "results.csv", buf.getvalue())


def read_results(path: Path) -> list[dict[str, Any]]:
    """The rows of a results.jsonl."""
    with open(path, encoding="utf-8") as fh:
        return [_complete(json.loads(line)) for line in fh if line.strip()]


def headline(result: dict[str, Any]) -> str:
    """One line of a run's mean metrics, for progress output."""
    mean = result["metrics"]["mean"]
    parts = [f"{name} {100 * mean[key]:.1f}" for key, name in
             (("image_auroc", "image AUROC"), ("pixel_auroc", "pixel AUROC"), ("aupro", "AUPRO"))
             if mean.get(key) is not None]
    return ", ".join(parts) or "metrics undefined (see result.json notes)"
