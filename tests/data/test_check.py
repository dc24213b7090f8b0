"""`miad data check`: a table of counts, every problem on its own line, exit 0 / 1, nothing written."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from miad.cli import main
from miad.data.check import check_tree


def test_clean_tree_exits_0_with_a_table(mvtec_root: Path, capsys: pytest.CaptureFixture, trees) -> None:
    before = trees.snapshot(mvtec_root)
    assert main(["data", "check", str(mvtec_root)]) == 0
    out = capsys.readouterr().out
    assert "format mvtec" in out and "no problems found" in out
    assert any(line.split() == ["bottle", "test", "contamination", "2", "2"] for line in out.splitlines())
    assert any(line.split() == ["total", "16", "6"] for line in out.splitlines())
    assert trees.snapshot(mvtec_root) == before


def _broken_tree(root: Path, trees) -> dict[str, Path]:
    """A MIAD-looking tree with one of every problem; returns the paths each problem must name."""
    cat = trees.make_category(root, "wind_turbine", n_bad=4)
    trees.make_category(root, "wind_turbin")  # unknown name next to a MIAD one
    crack, gt = cat / "test" / "crack", cat / "ground_truth" / "crack"
    zero = cat / "train" / "good" / "000.png"
    zero.write_bytes(b"")
    truncated = crack / "001.png"
    trees.save(truncated, np.random.default_rng(1).integers(0, 255, (64, 64, 3), np.uint8))
    truncated.write_bytes(truncated.read_bytes()[:200])
    (gt / "001_mask.png").unlink()
    trees.save(
        gt / "001_mask.png", trees.square_mask(size=64)
    )  # the truncated image header says 64x64: only its decoding fails
    (gt / "002_mask.png").unlink()
    stray = trees.save(gt / "099_mask.png", trees.square_mask())
    small = trees.save(gt / "003_mask.png", trees.square_mask(size=8))
    (cat / "train" / "good" / ".DS_Store").write_bytes(b"x")
    shutil.rmtree(root / "wind_turbin" / "test" / "good")
    return {
        "zero-byte": zero,
        "truncated": truncated,
        "missing mask": crack / "002.png",
        "extra mask": stray,
        "size mismatch": small,
        "empty split": root / "wind_turbin" / "test" / "good",
        "unknown category": root,
    }


def test_broken_tree_lists_every_problem_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture, trees
) -> None:
    root = tmp_path / "MIAD copy"
    expected = _broken_tree(root, trees)
    before = trees.snapshot(root)
    assert main(["data", "check", str(root)]) == 1
    lines = capsys.readouterr().out.splitlines()
    problems = [line for line in lines if line.startswith(("error: ", "warning: "))]
    words = {
        "zero-byte": "empty (0 bytes)",
        "truncated": "not a readable image",
        "missing mask": "no mask; expected",
        "extra mask": "mask without an image",
        "size mismatch": "mask is 8x8 but its image",
        "empty split": "no normal test images",
        "unknown category": "unknown category wind_turbin",
    }
    for kind, path in expected.items():
        assert any(f"{path}: " in line and words[kind] in line for line in problems), kind
    assert len(problems) == len(expected)
    assert ".DS_Store" not in "\n".join(lines)
    assert trees.snapshot(root) == before


def test_check_tree_api(tmp_path: Path, trees) -> None:
    _broken_tree(tmp_path / "data", trees)
    report = check_tree(tmp_path / "data", progress=False)
    assert not report.ok and report.format == "mvtec"
    assert report.images[("wind_turbine", "test", "crack")] == 4
    assert report.masks[("wind_turbine", "test", "crack")] == 3  # 002 has none
    assert [p.severity for p in report.problems].count("warning") == 1
    assert len(report.errors) == 6


def test_formats_from_the_command_line(
    mvtec_root: Path, folder_root: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["data", "check", str(folder_root)]) == 0
    assert "format folder" in capsys.readouterr().out
    assert main(["data", "check", str(mvtec_root), "--format", "miad"]) == 1  # not MIAD's scenario names
    assert "warning: " in capsys.readouterr().out
    assert main(["data", "check", str(folder_root), "--format", "mvtec"]) == 1
    assert "no MVTec-like category found" in capsys.readouterr().err


def test_missing_root_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["data", "check", str(tmp_path / "nope")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "does not exist" in err and len(err.splitlines()) == 1


def test_data_without_action_prints_help(capsys: pytest.CaptureFixture) -> None:
    assert main(["data"]) == 2
    assert "check" in capsys.readouterr().out
