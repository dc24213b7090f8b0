"""Configs, CLI values, data trees and checkpoints a user gets wrong: one-line errors listing valid values."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from miad.cli import main


def _err(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line[line.index("error: "):] for line in err.splitlines() if "error: " in line]
    assert len(lines) == 1 and "Traceback" not in err, err  # one line, no traceback (progress bars aside)
    return lines[0]


@pytest.fixture
def tree(tmp_path):
    from conftest import make_mvtec_tree

    return make_mvtec_tree(tmp_path / "data")


def _train(tree, out, *extra) -> int:
    return main(["train", "--method", "ref_ae", "--data", str(tree), "--out", str(out), *extra])


@pytest.mark.parametrize(("extra", "expect"), [
    (["--set", "nope=1"], "valid keys:"),
    (["--set", "epochs=\"many\""], "wrong type"),
    (["--set", "image_size=-4"], "image_size"),
    (["--set", "batch_size=0"], "batch_size"),
    (["--set", "holdout_fraction=1.5"], "holdout_fraction"),
    (["--preset", "fastest"], "valid presets: quick, paper"),
    (["--scenario", "bogus"], "widget"),
])
def test_bad_config_values(extra, expect, tree, tmp_path, capsys):
    assert _train(tree, tmp_path / "out", *extra) == 1
    assert expect in _err(capsys)


def test_unknown_method_lists_valid_ones(tree, tmp_path, capsys):
    assert main(["train", "--method", "patchkore", "--data", str(tree), "--out", str(tmp_path)]) == 1
    assert "valid methods:" in _err(capsys)


def test_bad_config_file(tree, tmp_path, capsys):
    bad = tmp_path / "c.yaml"
    bad.write_text("lr: [unclosed\n")
    assert _train(tree, tmp_path / "out", "--config", str(bad)) == 1
    assert "not valid YAML" in _err(capsys)


def test_broken_trees(tree, tmp_path, capsys):
    shutil.rmtree(tree / "widget" / "train")
    assert _train(tree, tmp_path / "out") == 1
    assert "train" in _err(capsys)
    assert main(["train", "--method", "ref_ae", "--data", str(tmp_path / "absent"), "--out", str(tmp_path)]) == 1
    assert "absent" in _err(capsys)


def test_mask_problems_fail_training_data_with_the_file(tree, tmp_path, capsys):
    mask = next((tree / "widget" / "ground_truth" / "scratch").iterdir())
    Image.fromarray(np.zeros((7, 7), np.uint8)).save(mask)  # wrong size: signals mis-pairing
    assert main(["data", "check", str(tree)]) == 1
    assert str(mask) in capsys.readouterr().out
    mask.unlink()  # an image without its mask
    assert _train(tree, tmp_path / "out") == 1
    assert "mask" in _err(capsys)


def test_checkpoint_problems(checkpoint, tree, tmp_path, capsys):
    truncated = tmp_path / "t.pt"
    truncated.write_bytes(checkpoint.read_bytes()[:1000])
    assert main(["test", "--checkpoint", str(truncated), "--data", str(tree)]) == 1
    assert "truncated or corrupt" in _err(capsys)

    class Payload:
        def __reduce__(self):
            return (print, ("code ran",))

    evil = tmp_path / "evil.pt"
    torch.save({"format": "miad-checkpoint", "x": Payload()}, evil)
    assert main(["predict", "--checkpoint", str(evil), str(tree), "--out", str(tmp_path / "o")]) == 1
    assert "refused" in _err(capsys) and "code ran" not in capsys.readouterr().out


def test_debug_flag_shows_the_traceback(tree, tmp_path):
    with pytest.raises(Exception, match="valid keys"):
        main(["--debug", "train", "--method", "ref_ae", "--data", str(tree), "--set", "x=1", "--out", str(tmp_path)])
