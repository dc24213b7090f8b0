"""`miad benchmark`: every selected method on every selected scenario (and seed), then tables, figure and report.

Re-running the same command keeps finished runs and resumes an unfinished one from its last finished epoch.
`--set key=value` applies to every method; `--set method.key=value` to that method only. Any number of workers
(`--jobs N`, SLURM jobs with `--executor slurm`, or the same command started again by hand, on any machine that
sees the folder) share one `--out`: each claims the next unfinished run. A different command on the folder is
refused. `--report-only --out OUT` rebuilds the tables, figures and report from the finished runs.
"""

from __future__ import annotations

import argparse
import sys

from miad.commands._common import add_device, add_loader, add_logger, check_output_folder, csv_list, whole_number
from miad.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("benchmark", help="run methods x scenarios x seeds and write tables and a report",
                       description=__doc__)
    p.add_argument("--data", help="data root, or 'builtin' for the built-in mini-MIAD (required unless --report-only)")
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
    p.add_argument("--jobs", type=_positive, default=1,
                   help="worker processes on this machine (one per GPU, else cores/N threads each); with "
                        "--executor slurm, the number of SLURM jobs")
    p.add_argument("--executor", choices=("local", "slurm"), default="local",
                   help="local: workers on this machine; slurm: submit --jobs worker jobs through submitit")
    p.add_argument("--partition", help="SLURM partition (--executor slurm)")
    p.add_argument("--gpus-per-job", type=whole_number, default=1,
                   help="GPUs per SLURM job, one worker each (default 1; 0: one CPU worker per job)")
    p.add_argument("--gpus-per-run", type=_positive, default=1,
                   help="--executor slurm: the tasks (GPUs) of each job train every run together with "
                        "DistributedDataParallel, one worker per job (default 1: one worker per GPU)")
    p.add_argument("--time-limit", type=_positive, default=24 * 60, metavar="MINUTES",
                   help="SLURM time limit per job in minutes (default 1440); a job cut off mid-run is resumed by "
                        "another")
    p.add_argument("--protocol", default="held-out", metavar="held-out|paper-selection",
                   help="held-out (default): never looks at test data; paper-selection: the peers' model selection on "
                        "the TEST set (miad.selection), its runs marked 'selected on test'; a comma list runs both "
                        "side by side, each in its own run folder, with a table of the difference")
    p.add_argument("--report-only", action="store_true",
                   help="only rebuild results, tables, figures and report in --out from its finished runs")
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


def _positive(text: str) -> int:
    value = whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def run(args: argparse.Namespace) -> int:
    from miad.bench.progress import format_duration
    from miad.bench.runner import prepare_benchmark, run_benchmark
    from miad.config import resolve_overrides

    if args.report_only:
        return _report_only(args.out)
    check_output_folder(args.out)  # an existing file there: one line, before anything is indexed or written
    if not args.data:
        raise ConfigError("--data is required (a data root, or builtin); only --report-only works without it")
    overrides = resolve_overrides(args.set, args.config, batch_size=args.batch_size)
    if "seed" in overrides and args.seeds:
        raise ConfigError("--set seed=... and --seeds both given; pass the seeds with --seeds only")
    protocols = _protocols(args.protocol, args.methods)
    plan = dict(data=args.data, methods=args.methods, scenarios=args.scenarios, preset=args.preset, seeds=args.seeds,
                unified=args.unified, out=args.out, overrides=overrides, device=args.device,
                progress=not args.quiet, num_workers=args.num_workers, loggers=args.logger, protocols=protocols)
    if args.executor == "slurm":
        from miad.bench.slurm import check_executor, check_gpus_per_run, submit_workers

        check_gpus_per_run(args.gpus_per_run, args.gpus_per_job)
        check_executor()  # a missing submitit or sbatch is reported before anything is indexed or written
        ctx, _ = prepare_benchmark(**plan)
        jobs = submit_workers(ctx.out, args.jobs, args.partition, args.gpus_per_job, args.time_limit,
                              args.device, args.num_workers, args.logger, gpus_per_run=args.gpus_per_run)
        print(f"submitted {len(jobs)} SLURM job(s) ({', '.join(j.job_id for j in jobs[:3])}"
              f"{' ...' if len(jobs) > 3 else ''}); their logs: {ctx.out / 'slurm'}; the tables appear in "
              f"{ctx.out} when the last run finishes (or: miad benchmark --report-only --out {ctx.out})")
        return 0
    if args.gpus_per_run > 1:
        raise ConfigError(f"--gpus-per-run {args.gpus_per_run} is for --executor slurm; on this machine start one "
                          f"such worker as torchrun --nproc_per_node={args.gpus_per_run} -m miad benchmark ...")
    result = run_benchmark(**plan, jobs=args.jobs)
    from miad import distributed

    if not distributed.is_main():  # under torchrun the other ranks only trained: rank 0 reports
        return 0
    if result.outputs:
        print(f"benchmark finished in {format_duration(result.seconds)}; wrote:")
        for name, path in result.outputs.items():
            print(f"  {name:20s} {path}")
    else:
        print(f"benchmark finished in {format_duration(result.seconds)}; the worker that finished the last run "
              f"wrote the tables in {result.out}")
    return report_failures(result.failed)


def _protocols(text: str, methods: str) -> list[str]:
    """The --protocol list; says which methods paper-selection leaves unchanged (no run is added for them)."""
    from miad.bench.plan import resolve_methods
    from miad.selection import PAPER_SELECTION, no_rule_note, parse_protocols, rule_for

    protocols = parse_protocols(text)
    if PAPER_SELECTION in protocols:
        for method in resolve_methods(methods):
            if rule_for(method, PAPER_SELECTION) is None:
                print(no_rule_note(method))
    return protocols


def _report_only(out: str) -> int:
    from miad.bench.outputs import write_outputs

    _, outputs = write_outputs(out)
    print("rebuilt from the finished runs:")
    for name, path in outputs.items():
        print(f"  {name:20s} {path}")
    return 0


def report_failures(failed: list[str]) -> int:
    """Exit status 1 and one line per failed run (the tables hold every other run)."""
    if not failed:
        return 0
    print(f"error: {len(failed)} run(s) failed; fix the cause and re-run the same command to retry only them:",
          file=sys.stderr)
    for line in failed:
        print(f"  {line}", file=sys.stderr)
    return 1
