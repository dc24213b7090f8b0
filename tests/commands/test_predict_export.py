"""`miad predict` and `miad export`: decisions at the held-out threshold, overlays/masks, ONNX parity."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from parity import assert_parity, assert_values_parity

from miad.cli import main
from miad.data.index import index_dataset
from miad.holdout import split_holdout
from miad.registry import create, get_method, list_methods


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    from conftest import make_mvtec_tree

    return make_mvtec_tree(tmp_path_factory.mktemp("predict"), n_train=10, n_good=3, n_bad=3)


def _fit(name, tree):
    samples = index_dataset(tree)
    det = create(name, "quick", pretrained=False, **get_method(name).SMOKE)
    det.fit([s for s in samples if s.split == "train"], device="cpu", progress=False)
    return det, [s for s in samples if s.split == "test"]


def test_threshold_comes_from_heldout_normal_training_images_only(tree):
    det, _ = _fit("ref_mean", tree)
    train = [s for s in index_dataset(tree) if s.split == "train"]
    ds = det.dataset(train)
    _, hold_idx = split_holdout([s.category for s in train], det.config)
    assert hold_idx and all(train[i].split == "train" and train[i].label == 0 for i in hold_idx)
    scores = det.predict(torch.stack([ds[i]["image"] for i in hold_idx])).image_score
    assert det.threshold == pytest.approx(float(torch.quantile(scores, det.config.threshold_quantile)), rel=1e-5)


def test_predict_folder_writes_overlays_masks_and_decisions(tree, tmp_path, capsys):
    det, _ = _fit("ref_mean", tree)
    ckpt = tmp_path / "model.pt"
    det.save(str(ckpt))
    out = tmp_path / "pred"
    rc = main(["predict", "--checkpoint", str(ckpt), str(tree / "widget" / "test"), "--out", str(out)])
    assert rc == 0 and "6 images scored" in capsys.readouterr().out
    rows = list(csv.DictReader((out / "predictions.csv").open()))
    assert len(rows) == 6
    for r in rows:
        assert float(r["threshold"]) == pytest.approx(det.threshold)
        assert r["anomalous"] == str(float(r["score"]) > det.threshold)
        assert (out / r["overlay"]).is_file() and (out / r["mask"]).is_file()
    assert json.loads((out / "predictions.json").read_text())["predictions"][0]["image"] == rows[0]["image"]
    rc = main(["predict", "--checkpoint", str(ckpt), str(tree / "nothing*.png"), "--out", str(out)])
    assert rc == 1 and "matches no image" in capsys.readouterr().err


@pytest.mark.parametrize("name", list_methods())
def test_onnx_export_parity(name, tree, tmp_path):
    pytest.importorskip("onnxruntime")
    from miad.export import read_metadata
    from miad.inference import open_model

    det, test = _fit(name, tree)
    ckpt = tmp_path / "model.pt"
    det.save(str(ckpt))
    onnx_path = tmp_path / "model.onnx"
    assert main(["export", "--checkpoint", str(ckpt), "--format", "onnx", "--out", str(onnx_path)]) == 0
    meta = read_metadata(onnx_path)
    assert meta["method"] == name and meta["threshold"] == pytest.approx(det.threshold)

    images = torch.stack([det.dataset(test)[i]["image"] for i in range(len(test))]).numpy()
    ref = det.predict(torch.from_numpy(images))
    model = open_model(onnx_path)
    assert_parity(model.run(images), (ref.image_score.numpy(), ref.anomaly_map.numpy()), det.threshold,
                  model.pixel_threshold, f"{name} onnx")


@pytest.mark.parametrize("fmt,name", [("onnx", "model.onnx"), ("openvino", "model.xml")])
def test_predict_with_an_exported_file_gives_the_checkpoint_scores(fmt, name, tree, tmp_path, capsys):
    pytest.importorskip("openvino" if fmt == "openvino" else "onnxruntime")
    det, _ = _fit("ref_mean", tree)
    ckpt = tmp_path / "model.pt"
    det.save(str(ckpt))
    exported = tmp_path / name
    assert main(["export", "--checkpoint", str(ckpt), "--format", fmt, "--out", str(exported)]) == 0
    assert "checked against the checkpoint at batch sizes 1 and 3" in capsys.readouterr().out
    rows = {}
    for model in (ckpt, exported):
        out = tmp_path / f"pred-{model.suffix[1:]}"
        args = ["predict", "--checkpoint", str(model), str(tree / "widget" / "test"), "--out", str(out)]
        assert main([*args, "--batch-size", "4"]) == 0  # 6 images: a partial last batch
        rows[model.suffix] = list(csv.DictReader((out / "predictions.csv").open()))
    got, want = rows[exported.suffix], rows[".pt"]
    assert [r["image"] for r in got] == [r["image"] for r in want]
    assert_values_parity(np.array([float(r["score"]) for r in got]), np.array([float(r["score"]) for r in want]),
                         det.threshold, f"predict with {name}")
