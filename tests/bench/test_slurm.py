"""`--executor slurm` through submitit: the same worker jobs run by submitit's local executor as real processes;
a missing submitit or sbatch is one line with the fix."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import submitit  # the cluster extra; `make test` installs it: no silent skip

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


# A real method without batch norm in its trainable parts, so 2 processes compute the same update as one
# (tests/core/test_distributed.py); 5 training images after the hold-out: one global batch of 4 per epoch.
TOGETHER = {"image_size": 32, "epochs": 2, "weights": "random", "flow_steps": 2, "batch_size": 4}


def _scores(run_dir: Path) -> list[float]:
    import csv

    with open(run_dir / "scores.csv", newline="") as fh:
        return [float(row["score"]) for row in csv.DictReader(fh)]


@pytest.mark.slow
def test_a_job_of_two_tasks_trains_each_run_together(bench_tree: Path, tmp_path: Path, monkeypatch) -> None:
    """--gpus-per-run 2 on CPU: one submitit job of 2 tasks (gloo) trains each run with DDP, as one process would."""
    from miad.bench.runner import prepare_benchmark, run_benchmark
    from miad.bench.slurm import submit_workers

    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[2] / "src"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    plan = dict(methods="fastflow", scenarios="gadget", preset="quick", seeds=[0, 1], unified=False,
                overrides=TOGETHER, device="cpu", progress=False, num_workers=0)
    one = run_benchmark(str(bench_tree), out=tmp_path / "one", **plan)
    ctx, specs = prepare_benchmark(str(bench_tree), out=tmp_path / "two", **plan)
    job, = submit_workers(ctx.out, 1, gpus_per_job=0, gpus_per_run=2, time_limit_min=10, device="cpu",
                          cluster="local")
    assert [r["failed"] for r in job.results()] == [[], []]  # both tasks finished without a failed run
    for spec in specs:
        a, b = one.out / spec.rel_dir, ctx.out / spec.rel_dir
        ra, rb = read_result(a), read_result(b)
        assert (ra["processes"], rb["processes"]) == (1, 2)
        assert (b / "run.log").read_text().count(": started") == 1 and generations(b) == []
        assert _scores(b) == pytest.approx(_scores(a), rel=1e-4, abs=1e-5)
        assert rb["metrics"]["mean"] == pytest.approx(ra["metrics"]["mean"], abs=1e-4)
    assert (ctx.out / "tables.md").is_file()
    assert "one worker of 2 processes" in "".join(p.read_text() for p in (ctx.out / "slurm").rglob("*.err"))


@pytest.mark.slow
def test_a_failed_run_ends_a_job_of_two_tasks_and_is_recorded(bench_tree: Path, tmp_path: Path, monkeypatch) -> None:
    from miad.bench.runner import prepare_benchmark
    from miad.bench.slurm import submit_workers

    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[2] / "src"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    odd = {**TOGETHER, "batch_size": 3}  # a global batch 2 processes cannot split: refused on every rank
    ctx, specs = prepare_benchmark(str(bench_tree), "fastflow", "gadget", "quick", [0], False, tmp_path / "o", odd,
                                   "cpu", False, 0)
    job, = submit_workers(ctx.out, 1, gpus_per_job=0, gpus_per_run=2, time_limit_min=10, device="cpu",
                          cluster="local")
    with pytest.raises(submitit.core.utils.FailedJobError, match="processes stop"):
        job.results()
    error = (ctx.out / specs[0].rel_dir / "error.json").read_text()
    assert "must be divisible by the 2 processes" in error


def test_gpus_per_run_needs_as_many_gpus_per_job(bench_tree: Path, tmp_path: Path, capsys) -> None:
    code = main(["benchmark", "--data", str(bench_tree), *FLAGS, "--executor", "slurm", "--gpus-per-run", "2",
                 "--gpus-per-job", "4", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "pass --gpus-per-job 2" in err
    code = main(["benchmark", "--data", str(bench_tree), *FLAGS, "--gpus-per-run", "2", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 1 and "torchrun --nproc_per_node=2 -m miad benchmark" in err
    assert not (tmp_path / "o").exists()


def test_a_lost_claim_is_raised_on_every_rank_from_rank_zero_verdict() -> None:
    from miad.bench.claims import ClaimLostError
    from miad.bench.group import GroupLead

    class Lost:
        def check(self) -> None:
            raise ClaimLostError("run x was taken over")

    class Held:
        def check(self) -> None:
            pass

    lead = GroupLead()  # one process: the broadcast hands rank 0's verdict back to itself
    lead.check_claim(Held())
    lead.check_claim(None)
    with pytest.raises(ClaimLostError, match="taken over"):
        lead.check_claim(Lost())
