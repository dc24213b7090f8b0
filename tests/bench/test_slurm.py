"""`--executor slurm` through submitit: the same worker jobs run by submitit's local executor as real processes;
a missing submitit or sbatch is one line with the fix."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import submitit  # noqa: F401  (the cluster extra; `make test` installs it: no silent skip)

from miad.bench.claims import generations
from miad.bench.rundir import read_result
from miad.cli import main

FLAGS = ["--methods", "patchcore", "--seeds", "0,1", "--set", "image_size=32", "--device", "cpu"]


@pytest.mark.slow
def test_submitit_jobs_claim_runs_from_the_folder(bench_tree: Path, tmp_path: Path, monkeypatch) -> None:
    from miad.bench.runner import prepare_benchmark
    from miad.bench.slurm import submit_workers

    src = str(Path(__file__).resolve().parents[2] / "src")
    monkeypatch.setenv("PYTHONPATH", src)  # the jobs import this checkout's miad
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    out = tmp_path / "out"
    ctx, specs = prepare_benchmark(str(bench_tree), "patchcore", "all", "quick", [0, 1], False, out,
                                   {"image_size": 32}, "cpu", False, 0)
    jobs = submit_workers(ctx.out, 2, partition="gpu", gpus_per_job=0, time_limit_min=10, device="cpu",
                          cluster="local")
    results = [job.result() for job in jobs]  # raises with the job's traceback if a worker failed
    assert [r["failed"] for r in results] == [[], []]
    for spec in specs:
        run_dir = out / spec.rel_dir
        assert read_result(run_dir)["resumed_after_epoch"] == 0
        assert (run_dir / "run.log").read_text().count(": started") == 1 and generations(run_dir) == []
    assert (out / "tables.md").is_file()
    logs = sorted(p.name for p in (out / "slurm").rglob("*.out"))
    assert len(logs) == 2 and all(j.job_id in "".join(logs) for j in jobs)  # job logs under OUT/slurm


def test_slurm_without_sbatch_is_one_line(bench_tree: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch
    code = main(["benchmark", "--data", str(bench_tree), *FLAGS, "--executor", "slurm", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "no `sbatch` on PATH" in err and "--jobs N" in err
    assert not (tmp_path / "o").exists()  # refused before anything is written


def test_slurm_without_submitit_is_one_line(bench_tree: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "submitit", None)  # as if not installed
    code = main(["benchmark", "--data", str(bench_tree), *FLAGS, "--executor", "slurm", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "pip install 'miad[cluster]'" in err
