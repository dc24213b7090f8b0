"""`--protocol held-out,paper-selection` on the built-in data: the peers' test-set selection keeps another epoch
than miad's default (the last), its run has its own folder and identity, and every output it touches says
"selected on test". Real preset (`quick` Reverse Distillation) on the built-in electrical_insulator scenario, made
small with --set (64 px, 4 epochs): the anomalib rule validates at epochs 2 and 4 and keeps epoch 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from miad.cli import main

SCENARIO = "electrical_insulator"


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from miad.data.builtin import BUILTIN_SPEC
    from miad.data.synth.writer import build_tree

    root = tmp_path_factory.mktemp("builtin") / "data"
    build_tree(root, **{**BUILTIN_SPEC, "scenarios": [SCENARIO]})  # the built-in set's scenario, alone
    out = root.parent / "bench"
    assert main(_command(root, out)) == 0
    return out


def _command(root: Path, out: Path) -> list[str]:
    return ["benchmark", "--data", str(root), "--methods", "reverse_distillation,patchcore", "--scenarios", SCENARIO,
            "--set", "epochs=4", "--set", "image_size=64", "--protocol", "held-out,paper-selection",
            "--logger", "none", "--quiet", "--out", str(out)]


def _result(out: Path, run: str) -> dict:
    return json.loads((out / "runs" / run / SCENARIO / "seed0" / "result.json").read_text())


def test_selection_keeps_another_epoch_and_marks_result_json(both: Path) -> None:
    held = _result(both, "reverse_distillation")
    chosen = json.loads((both / f"runs/reverse_distillation/{SCENARIO}/seed0-paper-selection/result.json").read_text())
    assert "protocol" not in held and "selection" not in held
    assert chosen["protocol"] == "paper-selection" and chosen["selection"]["mark"] == "selected on test"
    assert [r["epoch"] for r in held["history"]] == [1, 2, 3, 4]  # held-out: the last epoch is the model
    tested = {r["epoch"]: r["test_pixel_auroc"] for r in chosen["history"] if "test_pixel_auroc" in r}
    assert sorted(tested) == [2, 4] and tested[2] > tested[4]
    assert chosen["selection"]["selected_epoch"] == 2 and chosen["selection"]["stopped_early_at"] is None
    # the kept weights are epoch 2's: the evaluation reproduces the pixel AUROC they were selected with
    assert chosen["metrics"]["mean"]["pixel_auroc"] == pytest.approx(tested[2], abs=1e-6)
    # validating on the test set does not perturb training: the same losses epoch by epoch
    assert [r["train_loss"] for r in chosen["history"]] == [r["train_loss"] for r in held["history"]]


def test_tables_mark_the_selected_runs_and_show_the_difference(both: Path) -> None:
    tables = (both / "tables.md").read_text()
    assert "| reverse_distillation [selected on test] |" in tables
    section = tables[tables.index("## Test-set selection (paper-selection) vs held-out"):]
    row = next(line for line in section.splitlines() if line.startswith("| reverse_distillation |"))
    assert row.endswith("| 2 / 4 |")
    assert "patchcore: a single pass" in section  # no paper-selection run for it, and the table says why
    assert not (both / f"runs/patchcore/{SCENARIO}/seed0-paper-selection").exists()
    rows = [json.loads(line) for line in (both / "results.jsonl").read_text().splitlines()]
    assert {r["protocol"] for r in rows if r["method"] == "reverse_distillation"} == {"held-out", "paper-selection"}


def test_rerun_keeps_both_protocols_runs(both: Path, capsys) -> None:
    before = {p: p.stat().st_mtime_ns for p in both.glob("runs/*/*/seed0*/result.json")}
    assert len(before) == 3
    root = both.parent / "data"
    assert main(_command(root, both)) == 0
    assert {p: p.stat().st_mtime_ns for p in both.glob("runs/*/*/seed0*/result.json")} == before
