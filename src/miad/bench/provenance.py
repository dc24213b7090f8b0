"""What a result was produced with and what it cost: git commit, package versions, host, peak memory.

Peak memory per run: `ru_maxrss` only ever grows over a process's life, so a benchmark running many methods in
one process would charge every run with the largest one before it. A sampling thread reads the resident set
size from /proc/self/statm instead (every 50 ms) and keeps the maximum seen during the run; where /proc is
missing, the process-wide `ru_maxrss` is reported and labelled as such. On CUDA, `max_memory_allocated` is
reset at the start of each run.
"""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
import threading
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import Any

import torch

PACKAGES = ("miad", "torch", "torchvision", "timm", "numpy")
_STATM = Path("/proc/self/statm")


def git_commit(repo: Path | None = None) -> str:
    """The commit of the miad source tree (suffixed '+dirty' with local changes), or 'unknown'."""
    where = repo or Path(__file__).resolve().parent
    try:
        sha = _git(where, "rev-parse", "HEAD")
        dirty = _git(where, "status", "--porcelain", "--untracked-files=no", "--", str(where))
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{sha}+dirty" if dirty else sha


def _git(where: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=where, capture_output=True, text=True, timeout=10, check=True)
    return done.stdout.strip()


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def host_info(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {
        "hostname": platform.node(), "platform": platform.platform(), "python": sys.version.split()[0],
        "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "device": str(device),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _rss_bytes() -> int:
    pages = int(_STATM.read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


class PeakMemory:
    """`with PeakMemory(device) as peak:` ...; then `peak.summary()` (MB)."""

    def __init__(self, device: torch.device, interval_s: float = 0.05) -> None:
        self.device = device
        self.interval_s = interval_s
        self.peak_rss = 0
        self.source = "statm" if _STATM.is_file() else "ru_maxrss"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while True:
            self.peak_rss = max(self.peak_rss, _rss_bytes())
            if self._stop.wait(self.interval_s):
                return

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        if self.source == "statm":
            self._thread = threading.Thread(target=self._sample, name="miad-peak-memory", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self.peak_rss = max(self.peak_rss, _rss_bytes())
        else:  # ru_maxrss is in kB on Linux
            self.peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"peak_rss_mb": round(self.peak_rss / 2**20, 1), "peak_rss_source": self.source}
        if self.device.type == "cuda":
            out["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated(self.device) / 2**20, 1)
        return out
