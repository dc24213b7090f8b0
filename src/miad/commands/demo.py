"""`miad demo`: the whole benchmark on the built-in mini-MIAD with the quick presets, then where the report is.

Equivalent to `miad benchmark --data builtin --methods all --scenarios all --preset quick --out demo-out`.
Re-running it keeps the finished runs (delete the folder to start over).
"""

from __future__ import annotations

import argparse
import time

from miad.commands._common import add_device


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="benchmark every method on the built-in data (quick presets)",
                       description=__doc__)
    p.add_argument("--out", default="demo-out", help="output folder (default: demo-out)")
    p.add_argument("--methods", default="all", help="'all' or a comma list (see `miad methods`)")
    add_device(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from miad.bench import run_benchmark
    from miad.bench.progress import format_duration
    from miad.commands.benchmark import report_failures

    t0 = time.perf_counter()
    result = run_benchmark("builtin", methods=args.methods, scenarios="all", preset="quick", out=args.out,
                           device=args.device)
    report = result.outputs["report.html"].resolve()
    print(f"\ndemo finished in {format_duration(time.perf_counter() - t0)} "
          f"(benchmark {format_duration(result.seconds)})")
    print(f"tables:  {result.outputs['tables.md'].resolve()}")
    if "figure_a1.png" in result.outputs:
        print(f"figure:  {result.outputs['figure_a1.png'].resolve()}")
    print(f"report:  {report}  (open it in a browser: file://{report})")
    return report_failures(result.failed)
