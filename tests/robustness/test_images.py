"""Hostile image files through `miad predict`: odd modes work, broken files give one-line errors."""

from __future__ import annotations

import csv
import resource

import numpy as np
import pytest
from PIL import Image

from miad.cli import main


def _err(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line[line.index("error: "):] for line in err.splitlines() if "error: " in line]
    assert len(lines) == 1 and "Traceback" not in err, err  # one line, no traceback (progress bars aside)
    return lines[0]


def _predict(checkpoint, inputs, out) -> int:
    return main(["predict", "--checkpoint", str(checkpoint), *map(str, inputs), "--out", str(out)])


def _rows(out):
    return list(csv.DictReader((out / "predictions.csv").open()))


def test_odd_image_modes_and_sizes_are_converted(checkpoint, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    rgb = (np.random.default_rng(0).random((40, 30, 3)) * 255).astype(np.uint8)
    Image.fromarray(rgb).convert("L").save(src / "gray.png")
    Image.fromarray(rgb).convert("RGBA").save(src / "rgba.png")
    Image.fromarray(rgb).convert("P").save(src / "palette.png")
    Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(src / "deep16.png")
    Image.fromarray(rgb[:1, :1]).save(src / "one_pixel.png")
    Image.fromarray(rgb).save(src / "jpeg_named_png.png", format="JPEG")  # wrong extension for the content
    Image.fromarray(rgb).save(src / "UPPER.JPG")
    (src / ".DS_Store").write_bytes(b"\x00\x01")
    (src / "Thumbs.db").write_bytes(b"\x00\x01")
    out = tmp_path / "out"
    assert _predict(checkpoint, [src], out) == 0
    rows = _rows(out)
    assert len(rows) == 7 and all(np.isfinite(float(r["score"])) for r in rows)
    assert all((out / r["overlay"]).is_file() for r in rows)
    one = Image.open(out / "overlays" / "one_pixel.png")
    assert one.size == (1, 1)  # overlays keep the input's own size


def test_very_large_jpeg_is_resized_without_exhausting_memory(checkpoint, tmp_path):
    big = tmp_path / "big.jpg"
    Image.new("RGB", (8000, 8000), (90, 120, 150)).save(big, quality=70)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert _predict(checkpoint, [big], tmp_path / "out") == 0
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 150  # a full 8000x8000 RGB decode alone would be 183 MB
    assert Image.open(tmp_path / "out" / "overlays" / "big.png").size == (1024, 1024)


@pytest.mark.parametrize("case", ["zero_byte", "truncated_png", "truncated_jpeg", "not_an_image"])
def test_broken_files_give_one_line_errors_naming_the_file(case, checkpoint, tmp_path, capsys):
    path = tmp_path / ("x.jpg" if "jpeg" in case else "x.png")
    if case == "zero_byte":
        path.write_bytes(b"")
    elif case == "not_an_image":
        path.write_text("hello, I am text")
    else:
        full = tmp_path / ("full.jpg" if "jpeg" in case else "full.png")
        Image.fromarray((np.random.default_rng(1).random((64, 64, 3)) * 255).astype(np.uint8)).save(full)
        path.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    assert _predict(checkpoint, [path], tmp_path / "out") == 3  # exit 3: some inputs failed, rows still written
    assert str(path) in _err(capsys)
    assert [(r["image"], r["score"]) for r in _rows(tmp_path / "out")] == [(str(path), "")]
    assert str(path) in _rows(tmp_path / "out")[0]["error"]


def test_missing_input_and_unicode_paths(checkpoint, tmp_path, capsys):
    assert _predict(checkpoint, [tmp_path / "nowhere"], tmp_path / "out") == 1
    assert "nowhere" in _err(capsys)
    uni = tmp_path / "dossier été" / "photo 1 – ünïcode.png"
    uni.parent.mkdir()
    Image.new("RGB", (20, 20), (10, 200, 30)).save(uni)
    assert _predict(checkpoint, [uni.parent], tmp_path / "out2") == 0
    assert _rows(tmp_path / "out2")[0]["image"] == str(uni)
