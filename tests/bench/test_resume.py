"""A benchmark killed with SIGKILL mid-run and re-run ends with the tables of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from miad.bench.results import read_results
from miad.bench.rundir import read_result

CHILD = Path(__file__).with_name("bench_child.py")
METRIC_SCOPES = ("category", "defect_type", "group", "factor")


def _child(data: Path, out: Path, *flags: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(CHILD), str(data), str(out), *flags],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _finish(proc: subprocess.Popen) -> None:
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output.decode()[-3000:]


def _metric_tables(out: Path) -> str:
    text = (out / "tables.md").read_text()
    return text[: text.index("## Cost")]


def _metric_rows(out: Path) -> list[dict]:
    keep = ("method", "setting", "seed", "scope", "category", "subset", "image_auroc", "pixel_auroc", "aupro",
            "image_ap", "pixel_ap", "image_f1_max", "pixel_f1_max", "n_good", "n_defect")
    return [{k: r[k] for k in keep} for r in read_results(out / "results.jsonl") if r["scope"] in METRIC_SCOPES]


def _kill_during_second_training(proc: subprocess.Popen, out: Path) -> None:
    """SIGKILL the child once the second ref_ae run has finished an epoch (its state file appears)."""
    state = out / "runs" / "ref_ae" / "widget" / "seed0" / "state" / "train_state.pt"
    deadline = time.monotonic() + 240
    while not state.is_file():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the child ended or timed out before {state} appeared: {proc.communicate()[0][-2000:]}")
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


@pytest.mark.slow
def test_killed_benchmark_resumes_to_identical_tables(bench_tree: Path, bench_run, tmp_path: Path) -> None:
    """The reference is the shared uninterrupted run (same methods, overrides, seed and thread count)."""
    reference, interrupted = bench_run.out, tmp_path / "interrupted"
    _kill_during_second_training(_child(bench_tree, interrupted, "--slow"), interrupted)

    # Killed mid-run: the finished run is intact, the unfinished one has no result, nothing is half-written.
    kept = interrupted / "runs" / "ref_ae" / "gadget" / "seed0" / "result.json"
    kept_text = kept.read_text()
    assert read_result(kept.parent)["resumed_after_epoch"] == 0
    assert not (interrupted / "runs" / "ref_ae" / "widget" / "seed0" / "result.json").exists()
    assert not list(interrupted.rglob("*.tmp"))

    _finish(_child(bench_tree, interrupted))
    assert kept.read_text() == kept_text  # finished runs are kept, not redone
    resumed = read_result(interrupted / "runs" / "ref_ae" / "widget" / "seed0")
    assert 1 <= resumed["resumed_after_epoch"] < 6 and len(resumed["history"]) == 6
    assert not [p for p in interrupted.rglob("*") if p.name.startswith(".") and "tmp" in p.name]
    assert _metric_tables(interrupted) == _metric_tables(reference)
    assert _metric_rows(interrupted) == _metric_rows(reference)
