"""`miad synth` on the command line, and the contact sheet."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from miad.cli import main
from miad.data.synth import generate, write_sheet
from miad.data.synth.sheet import GAP, LABEL_HEIGHT, OUTLINE
from miad.errors import DataError


def test_synth_command_writes_the_tree_and_a_sheet(tmp_path, capsys):
    out, sheet = tmp_path / "mini", tmp_path / "sheet.png"
    code = main(
        [
            "synth",
            str(out),
            "--scenarios",
            "nut_and_bolt,wind_turbine",
            "--n-train",
            "2",
            "--n-test-good",
            "1",
            "--n-test-defect",
            "3",
            "--size",
            "40",
            "--seed",
            "9",
            "--viewpoint",
            "0",
            "--surface",
            "0.5",
            "--sheet",
            str(sheet),
        ]
    )
    assert code == 0
    assert "wrote 12 images of 2 scenario(s)" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["manifest.csv", "nut_and_bolt", "wind_turbine"]
    with open(out / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert all(float(r["viewpoint"]) == 0.0 and float(r["surface"]) <= 0.5 for r in rows)
    assert {r["seed"] for r in rows} == {"9"}
    assert Image.open(sheet).format == "PNG"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scenarios", "bridge"], "unknown scenario(s) ['bridge']"),
        (["--background", "2"], "background strength"),
        (["--size", "10"], "size must be an integer >= 32"),
    ],
)
def test_synth_command_reports_bad_options_in_one_line(tmp_path, capsys, args, message):
    assert main(["synth", str(tmp_path / "x"), "--n-train", "1", *args]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_sheet_has_a_row_per_scenario_and_outlines_every_mask(tmp_path):
    root = generate(
        tmp_path / "t",
        scenarios=["photovoltaic_module", "witness_mark"],
        n_train=1,
        n_test_good=1,
        n_test_defect=3,
        size=48,
    )
    path = write_sheet(root, tmp_path / "s.png")
    sheet = np.asarray(Image.open(path).convert("RGB"))
    cell_w, cell_h = 48 + GAP, 48 + LABEL_HEIGHT + GAP
    assert sheet.shape == (2 * cell_h + GAP, 4 * cell_w + GAP, 3)  # PV: good + 3 defects; witness mark: 2 cells
    magenta = (sheet == OUTLINE).all(axis=2)
    for row, defects in ((0, 3), (1, 1)):
        y0 = GAP + row * cell_h + LABEL_HEIGHT
        tiles = [magenta[y0 : y0 + 48, GAP + c * cell_w : GAP + c * cell_w + 48].any() for c in range(4)]
        assert tiles == [False] + [True] * defects + [False] * (3 - defects)


def test_sheet_of_a_folder_without_scenarios_fails_clearly(tmp_path):
    with pytest.raises(DataError, match="no scenario folders"):
        write_sheet(tmp_path, tmp_path / "s.png")
