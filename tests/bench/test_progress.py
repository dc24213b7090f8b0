"""Progress lines: which run (i/N), its epoch, and an ETA extrapolated from finished runs and epochs."""

from __future__ import annotations

import io

import pytest

from miad.bench import progress as progress_module
from miad.bench.progress import BenchProgress, format_duration


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    fake = _Clock()
    monkeypatch.setattr(progress_module.time, "perf_counter", fake)
    return fake


def test_eta_from_finished_runs_and_epochs(clock: _Clock) -> None:
    stream = io.StringIO()
    bar = BenchProgress(["ae", "ae", "ae", "pc"], stream=stream)
    bar.skip_run("ae", "a", 0)
    bar.start_run("ae", "b", 0, epochs=4)
    assert bar.eta_seconds() is None  # nothing finished yet
    clock.now = 10.0
    bar.epoch({"epoch": 1, "train_loss": 0.5})
    clock.now = 40.0
    bar.end_run("done")
    assert bar.eta_seconds(finished=True) == pytest.approx(80.0)  # 2 runs left, each like the finished one
    bar.start_run("ae", "c", 0, epochs=4, resuming=True)
    clock.now = 45.0
    bar.epoch({"epoch": 3, "train_loss": 0.25, "val_loss": 0.3})  # resumed: epoch 3 of 4 took 5 s
    assert bar.eta_seconds() == pytest.approx(5.0 + 40.0)
    clock.now = 46.0
    bar.epoch({"epoch": 4, "train_loss": 0.2})  # the last epoch is always shown
    lines = stream.getvalue().splitlines()
    assert lines[0] == "[1/4] ae / a / seed 0: finished earlier, kept"
    assert lines[1].startswith("[2/4] ae / b / seed 0: started | elapsed 0s, ETA unknown yet")
    assert lines[2] == ("[2/4] ae / b / seed 0: epoch 1/4 train_loss 0.5 | elapsed 10s, "
                        "ETA unknown yet (this run: 30s left)")
    assert "resuming from its saved training state" in lines[4]
    assert lines[-2].endswith("epoch 3/4 train_loss 0.25 val_loss 0.3 | elapsed 45s, ETA 45s")
    assert "epoch 4/4 train_loss 0.2" in lines[-1]


def test_short_epochs_are_throttled(clock: _Clock) -> None:
    stream = io.StringIO()
    bar = BenchProgress(["ae"], stream=stream, min_interval_s=5.0)
    bar.start_run("ae", "a", 0, epochs=10)
    for epoch in range(1, 11):
        clock.now = 2.0 * epoch
        bar.epoch({"epoch": epoch, "train_loss": 1.0})
    shown = [line.split("epoch ")[1].split(" ")[0] for line in stream.getvalue().splitlines()[1:]]
    assert shown == ["3/10", "6/10", "9/10", "10/10"]


def test_disabled_progress_prints_nothing(clock: _Clock) -> None:
    stream = io.StringIO()
    bar = BenchProgress(["x"], enabled=False, stream=stream)
    bar.start_run("x", "a", 0, epochs=0)
    bar.end_run("done")
    assert stream.getvalue() == ""


def test_format_duration() -> None:
    assert [format_duration(s) for s in (0, 59.6, 61, 3725)] == ["0s", "1m00s", "1m01s", "1h02m05s"]
