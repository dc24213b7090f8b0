"""Several benchmark workers on one folder, as real processes: `--jobs N`, commands started by hand, a worker
killed mid-run; their tables match a single process's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from miad.bench.claims import generations
from miad.bench.results import COSTS, read_results
from miad.bench.rundir import read_result
from miad.cli import main

# Real methods at smoke size: a gradient method (epochs, resumable state) and PatchCore; 8 runs of ~1 s each.
GRID = ["--methods", "unet_ae,patchcore", "--seeds", "0,1", "--set", "epochs=3", "--set", "image_size=32",
        "--device", "cpu"]
RUNS = [f"runs/{m}/{c}/seed{s}" for m in ("unet_ae", "patchcore") for s in (0, 1) for c in ("gadget", "widget")]


def _env(**extra: str) -> dict[str, str]:
    src = str(Path(__file__).resolve().parents[2] / "src")
    path = os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", **extra}  # the reference's thread count


def _benchmark(data: Path, out: Path, *flags: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "miad", "benchmark", "--data", str(data), *GRID, *flags,
                             "--out", str(out)], env=env or _env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _finish(proc: subprocess.Popen) -> str:
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output[-3000:]
    return output


def _tables_without_costs(out: Path) -> str:
    text = (out / "tables.md").read_text()
    return text[: text.index("## Cost")]


def _latex_without_costs(out: Path) -> str:
    text = (out / "tables.tex").read_text()
    return text[: text.index("Cost")]


def _metric_rows(out: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in COSTS} for r in read_results(out / "results.jsonl")]


def _started_once(out: Path, runs: list[str]) -> None:
    """Every run finished, by exactly one start, with no claim or failure left behind."""
    for run in runs:
        run_dir = out / run
        assert read_result(run_dir)["resumed_after_epoch"] == 0, run
        assert (run_dir / "run.log").read_text().count(": started") == 1, run
        assert generations(run_dir) == [] and not (run_dir / "error.json").exists(), run
    assert not list(out.rglob("*.tmp"))


@pytest.fixture(scope="module")
def reference(bench_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The grid run by one process, with the workers' thread count."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("single") / "out"
    try:
        assert main(["benchmark", "--data", str(bench_tree), *GRID, "--out", str(out), "--quiet"]) == 0
    finally:
        torch.set_num_threads(threads)
    return out


@pytest.fixture(scope="module")
def three_jobs(bench_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("jobs") / "out"
    return out, _finish(_benchmark(bench_tree, out, "--jobs", "3"))


@pytest.mark.slow
def test_three_local_workers_do_every_run_once_with_the_single_process_tables(three_jobs, reference) -> None:
    out, printed = three_jobs
    _started_once(out, RUNS)
    assert printed.count("settled]") >= len(RUNS) and "3 workers on CPU" in printed
    assert sorted(p.name for p in (out / "jobs").iterdir()) == ["worker0.log", "worker1.log", "worker2.log"]
    assert _tables_without_costs(out) == _tables_without_costs(reference)
    assert _latex_without_costs(out) == _latex_without_costs(reference)
    assert _metric_rows(out) == _metric_rows(reference)


@pytest.mark.slow
def test_two_commands_started_by_hand_cooperate(bench_tree: Path, reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first, second = _benchmark(bench_tree, out), _benchmark(bench_tree, out)
    outputs = [_finish(first), _finish(second)]
    _started_once(out, RUNS)
    assert not any("another benchmark" in o for o in outputs)
    assert _metric_rows(out) == _metric_rows(reference)
    assert _tables_without_costs(out) == _tables_without_costs(reference)


def _pid_of_holder(run_dir: Path) -> int:
    import json

    return json.loads((run_dir / f".claim.{generations(run_dir)[-1]}").read_text())["pid"]


@pytest.mark.slow
def test_a_worker_killed_mid_run_has_its_run_taken_over(bench_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    flags = ["--methods", "unet_ae", "--seeds", "0", "--set", "epochs=40"]  # later flags win: ~5 s per run
    env = _env(MIAD_CLAIM_TIMEOUT_S="3")
    workers = [_benchmark(bench_tree, out, *flags, env=env) for _ in range(2)]
    victim_run = out / "runs/unet_ae/gadget/seed0"
    deadline = time.monotonic() + 120
    while not (victim_run / "state" / "train_state.pt").is_file():  # an epoch finished: mid-run
        assert time.monotonic() < deadline and all(w.poll() is None for w in workers)
        time.sleep(0.02)
    victim = _pid_of_holder(victim_run)
    os.kill(victim, signal.SIGKILL)
    survivor = next(w for w in workers if w.pid != victim)
    _finish(survivor)
    next(w for w in workers if w.pid == victim).wait(timeout=30)
    result = read_result(victim_run)
    assert 1 <= result["resumed_after_epoch"] < 40 and len(result["history"]) == 40
    log = (victim_run / "run.log").read_text()
    assert log.count(": started") == 2 and "taking the run over" in log
    assert generations(victim_run) == []
    assert (out / "runs/unet_ae/widget/seed0/result.json").is_file() and (out / "tables.md").is_file()


def test_report_only_rebuilds_the_outputs_from_finished_runs(three_jobs, capsys, tmp_path: Path) -> None:
    out, _ = three_jobs
    tables = (out / "tables.md").read_text()
    (out / "tables.md").unlink()
    (out / "report.html").unlink()
    assert main(["benchmark", "--report-only", "--out", str(out)]) == 0
    assert (out / "tables.md").read_text() == tables and (out / "report.html").is_file()
    assert "tables.md" in capsys.readouterr().out
    assert main(["benchmark", "--report-only", "--out", str(tmp_path / "empty")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and "no finished run" in err and err.count("\n") == 1


def test_another_command_on_the_folder_is_refused_naming_the_difference(three_jobs, bench_tree, capsys) -> None:
    out, _ = three_jobs
    before = (out / "benchmark.json").read_text()
    code = main(["benchmark", "--data", str(bench_tree), *GRID, "--seeds", "0,1,2", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert "belongs to another benchmark command" in err and "runs only here: runs/unet_ae/gadget/seed2" in err
    assert (out / "benchmark.json").read_text() == before
    assert not (out / "runs/unet_ae/gadget/seed2").exists()


@pytest.mark.slow
def test_a_silent_worker_is_presumed_dead_on_the_readers_clock_and_abandons_the_run(bench_tree, tmp_path) -> None:
    """SIGSTOP freezes a worker and its heartbeat (its PID stays alive): the other worker takes the run over after
    the timeout; woken up, the frozen one sees the newer claim, leaves the run to it and exits cleanly."""
    out = tmp_path / "out"
    flags = ["--methods", "unet_ae", "--scenarios", "gadget", "--seeds", "0", "--set", "epochs=12"]
    env = _env(MIAD_CLAIM_TIMEOUT_S="2")
    frozen = _benchmark(bench_tree, out, *flags, env=env)
    run_dir = out / "runs/unet_ae/gadget/seed0"
    deadline = time.monotonic() + 120
    while not (run_dir / "state" / "train_state.pt").is_file():
        assert time.monotonic() < deadline and frozen.poll() is None
        time.sleep(0.02)
    os.kill(frozen.pid, signal.SIGSTOP)
    try:
        taker = _benchmark(bench_tree, out, *flags, env=env)
        while 1 not in generations(run_dir) and not (run_dir / "result.json").exists():
            assert time.monotonic() < deadline and taker.poll() is None
            time.sleep(0.02)
    finally:
        os.kill(frozen.pid, signal.SIGCONT)
    _finish(taker)
    frozen_output = _finish(frozen)
    result = read_result(run_dir)
    assert result["resumed_after_epoch"] >= 1 and len(result["history"]) == 12
    assert "taken over by another worker" in frozen_output
    assert "taking the run over" in (run_dir / "run.log").read_text() and generations(run_dir) == []
