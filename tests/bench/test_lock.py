"""One benchmark per output folder: a second one is refused while the first runs; a killed holder frees it."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from miad.bench.lock import BenchmarkLock, BenchmarkLockedError

HOLDER = """
import sys, time
from miad.bench.lock import BenchmarkLock
BenchmarkLock(sys.argv[1]).acquire()
print("locked", flush=True)
time.sleep(120)
"""


def test_second_benchmark_is_refused_until_the_holder_dies(bench_tree: Path, tmp_path: Path) -> None:
    from miad.bench import run_benchmark

    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(BenchmarkLockedError) as err:
            run_benchmark(str(bench_tree), methods=["ref_mean"], out=out, progress=False)
        message = str(err.value)
        assert str(out) in message and f"pid {holder.pid}" in message and "--out" in message
        assert "\n" not in message
        assert not (out / "runs").exists()  # refused before writing anything
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    with BenchmarkLock(out):  # the kernel released the killed holder's lock
        pass


def test_lock_is_exclusive_within_one_process_and_reusable(tmp_path: Path) -> None:
    with BenchmarkLock(tmp_path):
        with pytest.raises(BenchmarkLockedError, match="another benchmark"):
            BenchmarkLock(tmp_path).acquire()
    with BenchmarkLock(tmp_path):
        pass
