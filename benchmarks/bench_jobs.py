"""`miad benchmark --jobs N`: the same grid of short runs with 1 worker and with N workers, as a user runs it.

    python benchmarks/bench_jobs.py [--jobs 2] [--seeds 4] [--epochs 8] [--size 64]

Builds a small synthetic tree (2 scenarios) in a temp folder, runs U-Net AE (quick preset, shortened) over
2 scenarios x `--seeds` seeds (8 runs by default) with `--jobs 1`, then with `--jobs N`, each into a fresh folder,
and prints each one's wall seconds, CPU seconds (every process of the command) and the wall-time ratio. With one
worker torch uses every core; with N workers each gets cores/N threads, so on C cores at most min(N, C)x is
possible. Wall times depend on the machine's load; run it on an idle machine.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(cmd: list[str]) -> tuple[float, float]:
    wall0, cpu0 = time.perf_counter(), _children_cpu()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - wall0, _children_cpu() - cpu0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    miad = [sys.executable, "-m", "miad"]
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        _run([*miad, "synth", str(data), "--scenarios", "metal_welding,photovoltaic_module", "--n-train", "24",
              "--n-test-good", "6", "--n-test-defect", "6", "--size", str(args.size)])
        grid = ["benchmark", "--data", str(data), "--methods", "unet_ae", "--preset", "quick",
                "--seeds", ",".join(str(s) for s in range(args.seeds)), "--set", f"epochs={args.epochs}",
                "--set", f"image_size={args.size}", "--device", "cpu", "--quiet"]
        runs = 2 * args.seeds
        timings = {}
        for jobs in (1, args.jobs):
            timings[jobs] = _run([*miad, *grid, "--jobs", str(jobs), "--out", str(Path(tmp) / f"out{jobs}")])
            wall, cpu = timings[jobs]
            print(f"--jobs {jobs}: {runs} runs in {wall:6.1f} s wall, {cpu:6.1f} s CPU")
    (w1, c1), (wn, cn) = timings[1], timings[args.jobs]
    print(f"--jobs {args.jobs} vs --jobs 1: {w1 / wn:.2f}x faster (wall), CPU {cn / c1:.2f}x")


if __name__ == "__main__":
    main()
