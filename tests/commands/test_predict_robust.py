"""`miad predict` keeps every finished result: bad files get error rows, odd names round-trip, outputs never
collide or feed back in; `miad export` never replaces a file that is not a model of its format."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from miad.cli import main

ODD = b"caf\xe9"  # a Latin-1 byte: not valid UTF-8


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    from conftest import make_mvtec_tree

    root = make_mvtec_tree(tmp_path_factory.mktemp("pred-data"), n_train=6)
    out = tmp_path_factory.mktemp("pred-run")
    assert main(["train", "--method", "ref_mean", "--data", str(root), "--out", str(out)]) == 0
    return out / "model.pt"


def _images(folder: Path, names: list[str | bytes]) -> list[Path]:
    from conftest import write_png

    rng = np.random.default_rng(0)
    paths = []
    for name in names:
        path = folder / (os.fsdecode(name) if isinstance(name, bytes) else name)
        paths.append(write_png(path, rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)))
    return paths


def _csv_rows(out: Path) -> list[dict[str, str]]:
    with open(out / "predictions.csv", encoding="utf-8", errors="surrogateescape", newline="") as fh:
        return list(csv.DictReader(fh))


def test_a_corrupt_image_costs_only_its_own_row(ckpt, tmp_path, capsys):
    folder = tmp_path / "in"
    _images(folder, [f"{i:02d}.png" for i in range(11)])
    (folder / "05b.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)  # truncated
    out = tmp_path / "out"
    rc = main(["predict", "--checkpoint", str(ckpt), str(folder), "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 3
    rows = _csv_rows(out)
    assert len(rows) == 12
    bad = [r for r in rows if r["error"]]
    assert len(bad) == 1 and bad[0]["image"].endswith("05b.png") and bad[0]["score"] == ""
    assert all(r["score"] and (out / r["overlay"]).is_file() for r in rows if not r["error"])
    doc = json.loads((out / "predictions.json").read_text())
    assert len(doc["predictions"]) == 12 and sum(1 for r in doc["predictions"] if r["error"]) == 1
    summary = [line for line in captured.err.splitlines() if "05b.png" in line or "1 of 12" in line]
    assert len(summary) == 1 and "1 of 12" in summary[0] and "Traceback" not in captured.err


def test_non_utf8_file_names_round_trip(ckpt, tmp_path, capsys):
    folder = tmp_path / "in"
    _images(folder, [ODD + b".png", "plain.png"])
    (folder / os.fsdecode(ODD + b"-broken.png")).write_bytes(b"not an image")
    out = tmp_path / os.fsdecode(ODD + b"-out")
    assert main(["predict", "--checkpoint", str(ckpt), str(folder), "--out", str(out)]) == 3
    assert "1 of 3" in capsys.readouterr().err
    names = {os.fsencode(r["image"]) for r in _csv_rows(out)}
    assert os.fsencode(folder) + b"/" + ODD + b".png" in names  # the CSV holds the name's own bytes
    doc = json.loads((out / "predictions.json").read_text(encoding="utf-8"))
    odd = [r for r in doc["predictions"] if os.fsencode(r["image"]).endswith(ODD + b".png")]
    assert len(odd) == 1 and Path(odd[0]["image"]).is_file() and (out / odd[0]["overlay"]).is_file()


def test_miad_test_writes_scores_of_non_utf8_file_names(tmp_path, capsys):
    from conftest import make_mvtec_tree

    root = make_mvtec_tree(tmp_path / "data", n_train=6)
    good = root / "widget" / "test" / "good"
    (good / "000.png").rename(good / os.fsdecode(ODD + b".png"))
    run, res = tmp_path / "run", tmp_path / "res"
    assert main(["train", "--method", "ref_mean", "--data", str(root), "--out", str(run)]) == 0
    assert main(["test", "--checkpoint", str(run / "model.pt"), "--data", str(root), "--out", str(res)]) == 0
    with open(res / "scores.csv", encoding="utf-8", errors="surrogateescape", newline="") as fh:
        images = [os.fsencode(r["image"]) for r in csv.DictReader(fh)]
    assert any(p.endswith(b"/good/" + ODD + b".png") for p in images)


def test_outputs_mirror_input_paths_and_never_collide(ckpt, tmp_path, capsys):
    folder = tmp_path / "in"
    _images(folder, ["a/x.png", "b/x.png", "c/x-1.png", "c/x.jpg"])
    (folder / "c" / "x.jpg").rename(folder / "c" / "x.png.jpg")
    shutil.copy(folder / "a" / "x.png", folder / "c" / "x.jpg")  # x.jpg and x.png.jpg side by side
    out = tmp_path / "out"
    assert main(["predict", "--checkpoint", str(ckpt), str(folder / "a"), str(folder / "b"), str(folder / "c"),
                 "--out", str(out)]) == 0
    rows = _csv_rows(out)
    overlays = [r["overlay"] for r in rows]
    assert len(rows) == 5 and len(set(overlays)) == 5 and len({r["mask"] for r in rows}) == 5
    assert {"overlays/a/x.png", "overlays/b/x.png", "overlays/c/x-1.png"} <= set(overlays)
    assert all((out / o).is_file() for o in overlays)


def test_files_under_out_are_never_inputs(ckpt, tmp_path, capsys):
    folder = tmp_path / "in"
    _images(folder, [f"{i}.png" for i in range(6)])
    out = folder / "pred"
    for _ in range(2):
        assert main(["predict", "--checkpoint", str(ckpt), str(folder), "--out", str(out)]) == 0
        assert len(_csv_rows(out)) == 6
        assert "6 images scored" in capsys.readouterr().out


def test_export_refuses_other_suffixes_and_never_replaces_other_files(ckpt, tmp_path, capsys):
    pytest.importorskip("onnx")
    victim = tmp_path / "victim.png"
    victim.write_bytes(b"precious")
    assert main(["export", "--checkpoint", str(ckpt), "--format", "onnx", "--out", str(victim)]) == 1
    assert ".onnx" in capsys.readouterr().err and victim.read_bytes() == b"precious"
    impostor = tmp_path / "notes.onnx"
    impostor.write_text("my notes")
    assert main(["export", "--checkpoint", str(ckpt), "--format", "onnx", "--out", str(impostor)]) == 1
    err = capsys.readouterr().err
    assert "not an ONNX model" in err and err.count("\n") == 1 and impostor.read_text() == "my notes"
    model = tmp_path / "model.onnx"
    assert main(["export", "--checkpoint", str(ckpt), "--format", "onnx", "--out", str(model)]) == 0
    assert main(["export", "--checkpoint", str(ckpt), "--format", "onnx", "--out", str(model)]) == 0  # replaced


def test_export_target_rules_cover_openvino(tmp_path):
    from miad.commands.export import check_export_target
    from miad.errors import ConfigError

    with pytest.raises(ConfigError, match=r"\.xml"):
        check_export_target(tmp_path / "m.onnx", "openvino")
    ir = tmp_path / "m.xml"
    ir.write_text('<?xml version="1.0"?>\n<!-- exported -->\n<net name="miad" version="11"><layers/></net>\n')
    check_export_target(ir, "openvino")  # an OpenVINO IR may be replaced
    other = tmp_path / "o.xml"
    other.write_text('<?xml version="1.0"?><project/>')
    with pytest.raises(ConfigError, match="not an OpenVINO"):
        check_export_target(other, "openvino")
    (tmp_path / "w.bin").write_bytes(b"data")
    with pytest.raises(ConfigError, match="w.bin"):
        check_export_target(tmp_path / "w.xml", "openvino")


def test_an_error_during_predict_starts_on_its_own_line_after_the_progress_bar(ckpt, tmp_path, capsys):
    from miad.errors import MiadError
    from miad.inference import open_model, predict_paths

    paths = _images(tmp_path / "in", ["a.png", "b.png", "c.png"])
    model = open_model(ckpt)

    def fail(images):
        raise MiadError("the model failed")

    model.run = fail
    try:
        predict_paths(model, paths, tmp_path / "out", batch_size=1, progress=True)
    except MiadError:  # where the CLI prints `error: ...`, with the traceback (and so the bar) still alive
        err = capsys.readouterr().err
    assert "predict" in err and err.endswith("\n")  # the bar's line is ended before anything else is printed
