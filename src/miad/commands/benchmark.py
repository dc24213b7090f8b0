"""`miad benchmark`: every selected method on every selected scenario (and seed), then tables, figure and report.

Re-running the same command keeps finished runs and resumes an unfinished one from its last finished epoch.
`--set key=value` applies to every method; `--set method.key=value` to that method only.
"""

from __future__ import annotations

import argparse
import sys

from miad.commands._common import add_device, add_loader, add_logger, csv_list
from miad.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("benchmark", help="run methods x scenarios x seeds and write tables and a report",
                       description=__doc__)
    p.add_argument("--data", required=True, help="data root, or 'builtin' for the built-in mini-MIAD")
    p.add_argument("--methods", default="all", help="'all' or a comma list (see `miad methods`)")
    p.add_argument("--scenarios", default="all", help="'all' or a comma list of categories")
    p.add_argument("--preset", default="quick", help="paper | quick")
    p.add_argument("--seeds", type=_seeds, default=None, help="comma list of seeds, e.g. 0,1,2 (default: the preset's)")
    p.add_argument("--unified", action="store_true",
                   help="one model per method trained on all selected scenarios, evaluated per scenario")
    p.add_argument("--out", required=True, help="output folder (results, tables.md, figure_a1.png, report.html)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a config value (JSON or string); METHOD.KEY=VALUE for one method")
    p.add_argument("--config", help="YAML file of config overrides")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    add_logger(p)
    add_device(p)
    add_loader(p)
    p.set_defaults(func=run)


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in csv_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 0,1,2, got {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"expected distinct seeds like 0,1,2, got {text!r}")
    return seeds


def run(args: argparse.Namespace) -> int:
    from miad.bench import run_benchmark
    from miad.bench.progress import format_duration
    from miad.runconfig import resolve_overrides

    overrides = resolve_overrides(args.set, args.config, batch_size=args.batch_size)
    if "seed" in overrides and args.seeds:
        raise ConfigError("--set seed=... and --seeds both given; pass the seeds with --seeds only")
    result = run_benchmark(
        args.data, methods=args.methods, scenarios=args.scenarios, preset=args.preset, seeds=args.seeds,
        unified=args.unified, out=args.out, overrides=overrides, device=args.device, progress=not args.quiet,
        num_workers=args.num_workers, loggers=args.logger,
    )
    print(f"benchmark finished in {format_duration(result.seconds)}; wrote:")
    for name, path in result.outputs.items():
        print(f"  {name:20s} {path}")
    return report_failures(result.failed)


def report_failures(failed: list[str]) -> int:
    """Exit status 1 and one line per failed run (the tables hold every other run)."""
    if not failed:
        return 0
    print(f"error: {len(failed)} run(s) failed; fix the cause and re-run the same command to retry only them:",
          file=sys.stderr)
    for line in failed:
        print(f"  {line}", file=sys.stderr)
    return 1
