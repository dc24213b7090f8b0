"""Benchmark worker processes on one machine (`--jobs N`); each runs `miad.bench.worker` on the output folder.

On one machine each worker is
pinned to one visible GPU (round robin when there are more workers than GPUs), or, without GPUs, gets cores/N
threads (a user's own OMP_NUM_THREADS wins). The parent shows one line per started, finished or failed run;
each worker's own output goes to `OUT/jobs/worker<i>.log`, each run's to its `run.log`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from miad.bench.claims import generations
from miad.bench.outputs import write_outputs
from miad.bench.progress import format_duration
from miad.bench.results import headline
from miad.bench.rundir import error_of, error_record, is_finished, read_result
from miad.errors import MiadError


def logger_args(loggers: list[str] | None) -> list[str]:
    """--logger flags passing a benchmark's tracker choice on to its workers."""
    return [arg for name in loggers or [] for arg in ("--logger", name)]


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def visible_gpus(device: str) -> list[str]:
    """The GPU ids a worker may be pinned to (none for --device cpu, or an explicit cuda:K)."""
    if device == "cpu" or device.startswith("cuda:"):
        return []
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        return [g.strip() for g in os.environ["CUDA_VISIBLE_DEVICES"].split(",") if g.strip()]
    return [str(i) for i in range(torch.cuda.device_count())]


def worker_env(index: int, jobs: int, gpus: list[str]) -> dict[str, str]:
    env = dict(os.environ)
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = gpus[index % len(gpus)]
    if "OMP_NUM_THREADS" not in os.environ:
        env["OMP_NUM_THREADS"] = str(max(1, cpu_count() // jobs))
    return env


def run_local_workers(out: Path, specs: list, jobs: int, device: str, num_workers: int, progress: bool,
                      loggers: list[str] | None = None) -> tuple[list[dict[str, Any]], dict[str, Path], list[str]]:
    """Start `jobs` workers on `out`, show their progress, wait; (rows, outputs, failures) as run_benchmark."""
    out = Path(out).resolve()
    (out / "jobs").mkdir(parents=True, exist_ok=True)
    gpus = visible_gpus(device)
    monitor = RunMonitor(out, specs, enabled=progress)
    where = f"{len(gpus)} GPU(s)" if gpus else f"CPU, {worker_env(0, jobs, gpus)['OMP_NUM_THREADS']} thread(s) each"
    monitor.say(f"{jobs} workers on {where}; their logs: {out / 'jobs'}/worker<i>.log")
    procs = []
    try:
        for i in range(jobs):
            with open(out / "jobs" / f"worker{i}.log", "w") as log:
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "miad.bench.worker", str(out), "--device", device,
                     "--num-workers", str(num_workers), *logger_args(loggers)], env=worker_env(i, jobs, gpus),
                    stdout=log,
                    stderr=subprocess.STDOUT))
        while any(p.poll() is None for p in procs):
            monitor.update()
            time.sleep(0.5)
        monitor.update()
    finally:
        for p in procs:  # interrupted: a stopped worker's claims are taken over at once on a re-run
            if p.poll() is None:
                p.terminate()
                p.wait()
    unsettled = monitor.unsettled()
    if unsettled:
        crashed = [f"worker {i} exited with status {p.returncode}" for i, p in enumerate(procs) if p.returncode]
        raise MiadError(f"{len(unsettled)} run(s) unfinished ({unsettled[0]} ...); {'; '.join(crashed) or 'no worker'}"
                        f" failed: see {out / 'jobs'}/worker<i>.log, then re-run the same command to finish them")
    failed = monitor.failures()
    if len(failed) == len(specs):
        raise MiadError(f"every run failed; the first: {failed[0]}")
    rows, outputs = write_outputs(out)
    return rows, outputs, failed


class RunMonitor:
    """The combined progress of several workers, read from the folder: a line per started, finished, failed run."""

    def __init__(self, out: Path, specs: list, enabled: bool = True) -> None:
        self.out, self.specs, self.enabled = out, specs, enabled
        self.t0 = time.perf_counter()
        self.state = {s.rel_dir: self._state_of(s.rel_dir) for s in specs}
        self.done_before = sum(v in ("done", "failed") for v in self.state.values())

    def say(self, text: str) -> None:
        if self.enabled:
            print(text, file=sys.stderr, flush=True)

    def _state_of(self, rel: str) -> str:
        run_dir = self.out / rel
        if is_finished(run_dir):
            return "done"
        if generations(run_dir):
            return "running"
        return "failed" if error_record(run_dir) is not None else "waiting"

    def update(self) -> None:
        for spec in self.specs:
            old, new = self.state[spec.rel_dir], self._state_of(spec.rel_dir)
            if new == old:
                continue
            self.state[spec.rel_dir] = new
            self.say(self._line(spec, new))

    def _line(self, spec: Any, state: str) -> str:
        run_dir = self.out / spec.rel_dir
        label = f"{spec.method} / {spec.setting} / seed {spec.seed}"
        settled = sum(v in ("done", "failed") for v in self.state.values())
        elapsed = time.perf_counter() - self.t0
        here = settled - self.done_before
        eta = f", ETA {format_duration(elapsed / here * (len(self.specs) - settled))}" if here else ""
        head = f"[{settled}/{len(self.specs)} settled] {label}"
        if state == "running":
            return f"{head}: started | elapsed {format_duration(elapsed)}"
        if state == "done":
            return f"{head}: {headline(read_result(run_dir))} | elapsed {format_duration(elapsed)}{eta}"
        return f"{head}: FAILED: {error_of(run_dir)} | elapsed {format_duration(elapsed)}{eta}"

    def unsettled(self) -> list[str]:
        return [rel for rel, state in self.state.items() if state not in ("done", "failed")]

    def failures(self) -> list[str]:
        return [f"{self.out / rel}: {error_of(self.out / rel)}" for rel, st in self.state.items() if st == "failed"]
