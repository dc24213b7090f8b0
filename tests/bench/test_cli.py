"""`miad benchmark` on the command line: outputs listed, known errors as one line, bad flags rejected."""

from __future__ import annotations

from pathlib import Path

import pytest

from miad.cli import main


def test_benchmark_command_runs_and_lists_its_outputs(bench_tree: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    code = main(["benchmark", "--data", str(bench_tree), "--methods", "ref_mean", "--scenarios", "widget",
                 "--preset", "quick", "--seeds", "3", "--out", str(out), "--quiet", "--device", "cpu"])
    printed = capsys.readouterr()
    assert code == 0
    assert "report.html" in printed.out and str(out / "tables.md") in printed.out
    assert printed.err == ""  # --quiet
    assert (out / "runs" / "ref_mean" / "widget" / "seed3" / "result.json").is_file()
    assert "| ref_mean |" in (out / "tables.md").read_text()


def test_known_errors_are_one_line(bench_tree: Path, tmp_path: Path, capsys) -> None:
    code = main(["benchmark", "--data", str(bench_tree), "--methods", "nosuch", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("error: unknown method 'nosuch'") and err.count("\n") == 1
    code = main(["benchmark", "--data", str(bench_tree), "--methods", "ref_mean", "--scenarios", "nosuch",
                 "--out", str(tmp_path)])
    assert code == 1 and "nosuch" in capsys.readouterr().err
    code = main(["benchmark", "--data", str(bench_tree), "--methods", "ref_mean", "--seeds", "1",
                 "--set", "seed=2", "--out", str(tmp_path)])
    assert code == 1 and "--seeds only" in capsys.readouterr().err


@pytest.mark.parametrize("seeds", ["a,b", "1,1", ","])
def test_bad_seed_lists_are_rejected(seeds: str, tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["benchmark", "--data", "x", "--seeds", seeds, "--out", str(tmp_path)])
    assert exc.value.code == 2 and "seeds" in capsys.readouterr().err


@pytest.mark.parametrize("flags", [["--jobs", "0"], ["--jobs", "x"], ["--gpus-per-job", "-1"], ["--time-limit", "0"],
                                   ["--executor", "pbs"]])
def test_bad_worker_options_are_rejected(flags: list[str], tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["benchmark", "--data", "x", *flags, "--out", str(tmp_path)])
    assert exc.value.code == 2 and flags[0] in capsys.readouterr().err


def test_data_is_required_unless_report_only(tmp_path: Path, capsys) -> None:
    assert main(["benchmark", "--out", str(tmp_path)]) == 1
    assert "--data is required" in capsys.readouterr().err
