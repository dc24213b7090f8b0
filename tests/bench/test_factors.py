"""Factor terciles: binning, the per-bin image AUROC, controlled factors skipped, the findings sentence."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from miad.bench.factors import factor_rows, load_manifest, tercile_bins
from miad.bench.tables import factor_findings


def test_tercile_bins_split_and_skip_constant_values() -> None:
    index, ranges = tercile_bins(np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.5]))
    assert index.tolist() == [0, 0, 1, 1, 2, 2]
    assert ranges == [(0.0, 0.1), (0.2, 0.3), (0.4, 0.5)]
    assert tercile_bins(np.zeros(9)) is None
    assert tercile_bins(np.array([0.1, 0.2])) is None


def _write(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_factor_rows_compute_auroc_inside_each_tercile(tmp_path: Path) -> None:
    root, run = tmp_path / "data", tmp_path / "run"
    root.mkdir()
    run.mkdir()
    # viewpoint v: low tercile perfectly separated, mid tercile inverted, high tercile with only good images.
    images = [  # (name, label, score, viewpoint)
        ("a", 0, 0.1, 0.0), ("b", 1, 0.9, 0.05), ("c", 0, 0.8, 0.4), ("d", 1, 0.2, 0.45),
        ("e", 0, 0.5, 0.8), ("f", 0, 0.6, 0.9),
    ]
    _write(root / "manifest.csv", [{"path": f"cat/test/{n}.png", "viewpoint": v, "background": 0.0}
                                   for n, _, _, v in images])
    _write(run / "scores.csv", [{"index": i, "image": str(root / f"cat/test/{n}.png"), "category": "cat",
                                 "defect_type": "x" if lab else "good", "label": lab, "score": s, "decision": ""}
                                for i, (n, lab, s, _) in enumerate(images)])
    manifest = load_manifest(root)
    assert manifest is not None and set(manifest["cat/test/a.png"]) == {"viewpoint", "background"}
    rows = factor_rows(run, root, manifest)
    by_bin = {r["subset"]: r for r in rows}
    assert set(by_bin) == {"viewpoint/low", "viewpoint/mid", "viewpoint/high"}  # background is constant
    assert by_bin["viewpoint/low"]["image_auroc"] == 1.0
    assert by_bin["viewpoint/mid"]["image_auroc"] == 0.0
    assert by_bin["viewpoint/high"]["image_auroc"] is None and by_bin["viewpoint/high"]["n_defect"] == 0
    assert by_bin["viewpoint/low"]["value_range"] == "0-0.05"


def test_no_manifest_means_no_factor_rows(tmp_path: Path) -> None:
    assert load_manifest(tmp_path) is None
    (tmp_path / "manifest.csv").write_text("path,category\na.png,x\n")
    assert load_manifest(tmp_path) is None


def test_findings_name_the_most_and_least_affected_methods() -> None:
    def row(method, category, bin_name, auroc):
        return {"scope": "factor", "method": method, "unified": False, "seed": 0, "category": category,
                "subset": f"viewpoint/{bin_name}", "image_auroc": auroc}

    rows = [row("m1", "c", "low", 0.9), row("m1", "c", "mid", 0.8), row("m1", "c", "high", 0.6),
            row("m2", "c", "low", 0.9), row("m2", "c", "mid", 0.9), row("m2", "c", "high", 0.85)]
    (sentence,) = factor_findings(rows)
    assert "by -17.5 points" in sentence and "lowest change: m1 (-30.0)" in sentence
    assert "highest: m2 (-5.0)" in sentence
