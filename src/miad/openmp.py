"""How idle OpenMP threads wait: chosen once per process, from the machine's load, before torch loads."""

from __future__ import annotations

import os
import time


def busy_cores(window: float = 0.1) -> float:
    """Cores kept busy by other processes right now (/proc/stat over `window` s; load average elsewhere)."""
    try:
        with open("/proc/stat") as f:
            before = [int(v) for v in f.readline().split()[1:]]
        time.sleep(window)
        with open("/proc/stat") as f:
            after = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    delta = [a - b for a, b in zip(after, before)]
    idle = delta[3] + (delta[4] if len(delta) > 4 else 0)  # idle + iowait
    return (1 - idle / max(1, sum(delta))) * (os.cpu_count() or 1)


def set_wait_policy() -> None:
    """Choose how idle OpenMP threads wait, before torch loads (`miad.cli.main` and the benchmark worker's
    main call it first; this module imports nothing of torch); a user's own OMP/GOMP setting wins.

    Spinning threads steal the cores from each other when anything else runs (on 2 busy cores a DRAEM fit took
    15x the CPU time), so a busy machine gets passive waiting. On an idle machine passive waiting makes the
    many small kernels of the CPU presets slow (U-Net AE quick step: 91 ms passive, 56 ms spinning), so there
    threads spin briefly (GOMP_SPINCOUNT=10000, a few microseconds) before they sleep.
    """
    if any(k in os.environ for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")):
        return
    if busy_cores() >= 0.5:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    else:
        os.environ["GOMP_SPINCOUNT"] = "10000"
