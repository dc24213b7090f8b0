"""One benchmark worker: `python -m miad.bench.worker OUT`, the function SLURM jobs and `--jobs` processes run.

A worker needs only the output folder: it reads the command recorded there (`benchmark.json`) and runs it, so it
claims runs exactly as a second `miad benchmark` command on the folder would.

    python -m miad.bench.worker OUT [--device auto] [--num-workers 0]    # one more worker on OUT
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from miad.errors import MiadError
from miad.openmp import set_wait_policy


def work(out: str | Path, device: str = "auto", num_workers: int = 0, progress: bool = True,
         loggers: list[str] | None = None) -> list[str]:
    """Be one more worker of the benchmark recorded in `out`; the runs this worker saw fail."""
    # here, not at the top: `main` sets the OpenMP wait policy first, and these load torch
    from miad.bench.command import read_command
    from miad.bench.runner import run_benchmark

    cmd = read_command(Path(out))
    data = cmd["data"] if cmd["data"] == "builtin" else cmd["data_root"]
    result = run_benchmark(data, methods=cmd["methods"], scenarios=cmd["scenarios"], preset=cmd["preset"],
                           seeds=cmd["seeds"], unified=cmd["unified"], out=out, overrides=cmd["overrides"],
                           device=device, progress=progress, num_workers=num_workers, loggers=loggers,
                           protocols=cmd.get("protocols"))
    return result.failed


def main(argv: list[str] | None = None) -> int:
    set_wait_policy()  # before torch loads

    parser = argparse.ArgumentParser(prog="python -m miad.bench.worker", description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--num-workers", default="auto", help="an integer, or auto")
    parser.add_argument("--logger", action="append", default=None)
    args = parser.parse_args(argv)
    if "OMP_NUM_THREADS" in os.environ:
        import torch  # here: after the wait policy

        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    try:
        workers = args.num_workers if args.num_workers == "auto" else int(args.num_workers)
        failed = work(args.out, args.device, workers, loggers=args.logger)
    except MiadError as exc:
        print("error: " + " ".join(str(exc).split()), file=sys.stderr)
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
