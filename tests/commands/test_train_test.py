"""`miad train` then `miad test` end to end on a tiny tree (test-only reference methods)."""

from __future__ import annotations

import csv
import json

import numpy as np
import yaml

from miad.cli import main


def test_train_then_test_writes_everything(tiny_tree, tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["train", "--method", "ref_mean", "--data", str(tiny_tree), "--scenario", "widget",
               "--preset", "quick", "--set", "image_size=32", "--batch-size", "4", "--out", str(out)])
    assert rc == 0 and (out / "model.pt").is_file()
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["method"] == "ref_mean" and cfg["config"]["batch_size"] == 4 and cfg["config"]["image_size"] == 32
    assert "threshold from held-out normal images" in capsys.readouterr().out

    res = tmp_path / "test"
    rc = main(["test", "--checkpoint", str(out / "model.pt"), "--data", str(tiny_tree), "--out", str(res)])
    printed = capsys.readouterr().out
    assert rc == 0 and "widget" in printed and "image_auroc" in printed and "f1@thr" in printed
    metrics = json.loads((res / "metrics.json").read_text())
    assert set(metrics["per_category"]) == {"widget"}
    rows = list(csv.DictReader((res / "scores.csv").open()))
    assert len(rows) == 4 and {r["defect_type"] for r in rows} == {"good", "scratch"}
    assert all(r["decision"] in ("0", "1") for r in rows)
    with np.load(res / "maps.npz") as maps:
        assert len(maps.files) == 4 and maps[maps.files[0]].dtype == np.float16
        assert maps[maps.files[0]].shape == (32, 32)
    assert (res / "config.yaml").is_file()


def test_known_errors_are_one_line(tiny_tree, tmp_path, capsys):
    rc = main(["train", "--method", "nope", "--data", str(tiny_tree), "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert rc == 1 and err.startswith("error: unknown method 'nope'") and err.count("\n") == 1
    rc = main(["train", "--method", "ref_ae", "--data", str(tiny_tree), "--set", "bogus=1", "--out", str(tmp_path)])
    assert rc == 1 and "valid keys" in capsys.readouterr().err
    rc = main(["test", "--checkpoint", str(tmp_path / "missing.pt"), "--data", str(tiny_tree)])
    assert rc == 1 and "does not exist" in capsys.readouterr().err
    rc = main(["train", "--method", "ref_ae", "--data", str(tmp_path / "nodata"), "--out", str(tmp_path / "y")])
    assert rc == 1 and "error:" in capsys.readouterr().err
