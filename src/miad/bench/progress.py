"""Benchmark progress lines: which run is going (i/N), its epoch, and the ETA of the whole benchmark.

One plain line per event on stderr (readable in a terminal and in a CI log alike); epoch lines at most every
`min_interval_s` per run (and always the last epoch). The ETA assumes a run that
has not started costs what the finished runs of the same method cost in this process (else the mean of all
finished runs); before any run has finished it is unknown. A run with epochs is extrapolated from its epochs.
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, TextIO


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s" if m else f"{s}s"


class BenchProgress:
    """Fed by the runner: `start_run`, `epoch`, then `end_run` or `fail_run`; or `skip_run`."""

    def __init__(self, methods: list[str], enabled: bool = True, stream: TextIO | None = None,
                 min_interval_s: float = 5.0) -> None:
        self.pending = list(methods)  # the method of every run not finished yet, in order
        self.total = len(methods)
        self.enabled = enabled
        self.min_interval_s = min_interval_s
        self.stream = stream or sys.stderr
        self.durations: dict[str, list[float]] = defaultdict(list)
        self.t_start = time.perf_counter()
        self.current: dict[str, Any] | None = None
        self.index = 0
        self.log: TextIO | None = None

    def _print(self, text: str) -> None:
        if self.enabled:
            print(text, file=self.stream, flush=True)
        if self.log is not None:
            print(text, file=self.log, flush=True)

    def log_to(self, path: Path | None) -> None:
        """Also append the lines to `path` (a run's own log) until the next call; None stops."""
        if self.log is not None:
            self.log.close()
        self.log = open(path, "a", encoding="utf-8") if path is not None else None  # noqa: SIM115

    def _label(self, method: str, setting: str, seed: int) -> str:
        return f"[{self.index}/{self.total}] {method} / {setting} / seed {seed}"

    def at(self, position: int) -> None:
        """The next run shown is the plan's run number position + 1 (workers take runs in any order)."""
        self.index = position

    def note(self, text: str) -> None:
        self._print(text)

    def skip_run(self, method: str, setting: str, seed: int, why: str = "finished earlier, kept") -> None:
        self.index += 1
        self._drop(method)
        self._print(f"{self._label(method, setting, seed)}: {why}")

    def start_run(self, method: str, setting: str, seed: int, epochs: int, resuming: bool = False) -> None:
        self.index += 1
        self.current = {"method": method, "t0": time.perf_counter(), "epochs": epochs, "done": 0,
                        "label": self._label(method, setting, seed), "epoch_t": [], "t_last": time.perf_counter()}
        resumed = ", resuming from its saved training state" if resuming else ""
        self._print(f"{self.current['label']}: started{resumed} | {self._eta_text()}")

    def epoch(self, row: dict[str, Any]) -> None:
        cur = self.current
        if cur is None:
            return
        now = time.perf_counter()
        cur["epoch_t"].append(now - cur["t_last"])
        cur["t_last"], cur["done"] = now, int(row.get("epoch", cur["done"] + 1))
        if now - cur.get("t_printed", cur["t0"]) < self.min_interval_s and cur["done"] < cur["epochs"]:
            return  # short epochs: one line every few seconds, and the last one, are enough to follow
        cur["t_printed"] = now
        losses = " ".join(f"{k} {v:.4g}" for k, v in row.items() if k.endswith("loss"))
        self._print(f"{cur['label']}: epoch {cur['done']}/{cur['epochs']} {losses} | {self._eta_text()}")

    def end_run(self, summary: str) -> None:
        cur = self.current
        if cur is not None:
            self.durations[cur["method"]].append(time.perf_counter() - cur["t0"])
            self._drop(cur["method"])
            self._print(f"{cur['label']}: {summary} | {self._eta_text(finished=True)}")
        self.current = None

    def fail_run(self, message: str) -> None:
        cur = self.current
        if cur is not None:
            self._drop(cur["method"])
            self._print(f"{cur['label']}: FAILED: {message} | {self._eta_text(finished=True)}")
        self.current = None

    def _drop(self, method: str) -> None:
        if method in self.pending:  # runs settle in any order when several workers share the folder
            self.pending.remove(method)

    def _estimate(self, method: str) -> float | None:
        own = self.durations.get(method)
        if own:
            return sum(own) / len(own)
        every = [d for ds in self.durations.values() for d in ds]
        return sum(every) / len(every) if every else None

    def _current_left(self) -> float | None:
        cur = self.current
        if cur is None:
            return 0.0
        elapsed = time.perf_counter() - cur["t0"]
        estimate = self._estimate(cur["method"])
        if cur["epoch_t"] and cur["epochs"]:
            per_epoch = sum(cur["epoch_t"]) / len(cur["epoch_t"])
            return per_epoch * (cur["epochs"] - cur["done"])
        return None if estimate is None else max(estimate - elapsed, 0.0)

    def eta_seconds(self, finished: bool = False) -> float | None:
        """Seconds left for the whole benchmark, or None while nothing is known to extrapolate from."""
        later = list(self.pending)
        if not finished and self.current is not None and self.current["method"] in later:
            later.remove(self.current["method"])
        left = 0.0 if finished else self._current_left()
        estimates = [self._estimate(m) for m in later]
        if left is None or any(e is None for e in estimates):
            return None
        return left + sum(e for e in estimates if e is not None)

    def _eta_text(self, finished: bool = False) -> str:
        elapsed = format_duration(time.perf_counter() - self.t_start)
        eta = self.eta_seconds(finished)
        if eta is not None:
            return f"elapsed {elapsed}, ETA {format_duration(eta)}"
        this_run = None if finished else self._current_left()
        hint = f" (this run: {format_duration(this_run)} left)" if this_run is not None else ""
        return f"elapsed {elapsed}, ETA unknown yet{hint}"
