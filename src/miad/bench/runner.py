"""The benchmark: a plain loop over method x setting x seed (create -> fit -> evaluate -> write), then the outputs.

Each run owns `OUT/runs/<method>/<setting>/seed<k>/`: `run.json` (what it is: method, data, categories, config),
`state/` (the training loop's per-epoch state while it trains), then `scores.csv`, `maps.npz`, `config.yaml`
and, last and atomically, `result.json`, which marks the run finished. Re-running the same command keeps
finished runs and lets an unfinished one continue from its last finished epoch, so a killed benchmark loses at
most one epoch. A run folder made with another config or data refuses to be reused instead of mixing results.

Any number of workers (`--jobs`, SLURM jobs, or commands started by hand) cooperate on one folder when they run
the same command (`miad.bench.command`): each claims the next unfinished run (`miad.bench.claims`), takes over the
runs of dead holders, and the worker that settles the last run writes the tables. Each run logs to `run.log`.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from miad import distributed as dist
from miad.bench import rundir
from miad.bench.command import adopt_command
from miad.bench.cooperate import work_through
from miad.bench.group import GROUP_TIMEOUT, GroupLead, follow_runs, lead_runs
from miad.bench.plan import RunSpec, plan_runs, resolve_methods
from miad.bench.progress import BenchProgress
from miad.bench.provenance import PeakMemory, git_commit, host_info, package_versions
from miad.bench.results import collect_rows, headline
from miad.bench.tracking import BenchTracking, log_run_end, open_run_tracker
from miad.bench.workers import run_local_workers
from miad.config import write_resolved_config
from miad.data.fingerprint import data_fingerprint, sample_files
from miad.data.index import categories_of, load_samples, resolve_data_root
from miad.detector import Detector, resolve_device
from miad.errors import MiadError
from miad.evaluation import evaluate_detector, write_scores_csv
from miad.registry import get_method
from miad.selection import SelectionOnTest, rule_for
from miad.tracking import resolve_loggers
from miad.types import Sample


@dataclass
class Context:
    out: Path
    data_root: Path
    samples: list[Sample]
    device: Any  # torch.device
    num_workers: int
    progress: BenchProgress
    bars: bool  # per-epoch tqdm bars (only on a terminal)
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # result rows by finished run folder
    fingerprints: dict[tuple[str, ...], dict[str, Any]] = field(default_factory=dict)  # by category set
    claim: Any = None  # the Claim of the run this worker is doing
    group: Any = None  # miad.bench.group.GroupLead when this worker is several processes training runs together
    tracking: Any = None  # miad.bench.tracking.BenchTracking: the --logger choice


@dataclass
class BenchmarkResult:
    out: Path
    rows: list[dict[str, Any]]
    outputs: dict[str, Path]  # name -> file written (results.jsonl, tables.md, report.html, ...)
    seconds: float
    failed: list[str]  # "run dir: error" of the runs that stopped on a known error (retried on the next call)


def run_benchmark(
    data: str, methods: str | Sequence[str] = "all", scenarios: str | Sequence[str] = "all", preset: str = "quick",
    seeds: Sequence[int] | None = None, unified: bool = False, out: str | Path = "benchmark-out",
    overrides: dict[str, Any] | None = None, device: str = "auto", progress: bool = True, num_workers: int = 0,
    jobs: int = 1, loggers: Sequence[str] | None = None, protocols: Sequence[str] | None = None,
) -> BenchmarkResult:
    """Run (or finish, or help finish) the benchmark in `out` and write its results, tables, figure and report
    there; `jobs` > 1 starts that many worker processes on this machine and shows their combined progress.
    `loggers`: --logger names (miad.tracking; default csv), used by every worker. `protocols`: miad.selection
    names (default held-out only)."""
    t0 = time.perf_counter()
    plan = dict(data=data, methods=methods, scenarios=scenarios, preset=preset, seeds=seeds, unified=unified,
                out=out, overrides=overrides, device=device, progress=progress, num_workers=num_workers,
                loggers=loggers, protocols=protocols)
    plan["device"] = dist.init_from_env(device, timeout=GROUP_TIMEOUT)  # torchrun or a SLURM job's tasks
    if dist.is_distributed():
        if jobs > 1:
            raise MiadError(f"--jobs {jobs} with {dist.world_size()} torchrun processes: a group of processes is "
                            "one worker; start more groups, or use --jobs without torchrun")
        return _run_as_group(plan, t0)
    ctx, specs = prepare_benchmark(**plan)
    if jobs > 1:
        rows, outputs, failed = run_local_workers(ctx.out, specs, jobs, device, num_workers, progress, loggers)
        return BenchmarkResult(ctx.out, rows, outputs, time.perf_counter() - t0, failed)
    return work_and_finish(specs, ctx, t0)


def _run_as_group(plan: dict[str, Any], t0: float) -> BenchmarkResult:
    """One worker of several processes (miad.bench.group): rank 0 claims, evaluates and writes; all train."""
    if dist.is_main():
        ctx, specs = prepare_benchmark(**plan)
        dist.barrier()  # the folder's command is recorded before the other ranks check it
        ctx.group = GroupLead()
        ctx.progress.note(f"one worker of {ctx.group.size} processes: each run is trained by all of them (DDP)")
        return lead_runs(ctx.group, lambda: work_and_finish(specs, ctx, t0))
    dist.barrier()
    ctx, specs = prepare_benchmark(**{**plan, "progress": False, "loggers": []})
    follow_runs(specs, ctx)
    return BenchmarkResult(ctx.out, [], {}, time.perf_counter() - t0, [])


def work_and_finish(specs: list[RunSpec], ctx: Context, t0: float) -> BenchmarkResult:
    """Do this worker's share of the runs; the outputs if it settled the last run, else the rows so far."""
    failed, outputs = work_through(specs, ctx, _run_or_keep)
    if failed and len(failed) == len(specs):
        raise MiadError(f"every run failed; the first: {failed[0]}")
    if outputs is None:  # another worker settled the last run and wrote the tables
        rows, outputs = collect_rows(ctx.out, ctx.rows), {}
    else:
        rows, outputs = outputs
    return BenchmarkResult(ctx.out, rows, outputs, time.perf_counter() - t0, failed)


def prepare_benchmark(
    data: str, methods: str | Sequence[str], scenarios: str | Sequence[str], preset: str,
    seeds: Sequence[int] | None, unified: bool, out: str | Path, overrides: dict[str, Any] | None, device: str,
    progress: bool, num_workers: int, loggers: Sequence[str] | None = None, protocols: Sequence[str] | None = None,
) -> tuple[Context, list[RunSpec]]:
    """Resolve the plan, check it against the folder (its command and its run folders) and record it there."""
    out = Path(out).expanduser()
    tracking = BenchTracking(resolve_loggers(loggers), preset, out)
    names = resolve_methods(methods)
    root = resolve_data_root(data).resolve()  # absolute: scores.csv paths must join the manifest from anywhere
    samples = load_samples(str(root), scenarios)
    protocols = list(protocols or ["held-out"])
    specs = plan_runs(names, categories_of(samples), preset, seeds, unified, dict(overrides or {}), protocols)
    ctx = Context(out, root, samples, resolve_device(device), num_workers,
                  BenchProgress([s.method for s in specs], enabled=progress), bars=progress and sys.stderr.isatty(),
                  tracking=tracking)
    for spec in specs:  # before anything runs or is written: a foreign run folder fails fast
        _check_existing(spec, ctx)
    invocation = _invocation(data, root, names, categories_of(samples), specs, preset, seeds, unified, overrides)
    if protocols != ["held-out"]:  # recorded for the workers; absent = held-out, as older folders
        invocation["protocols"] = protocols
    adopt_command(out, invocation, [_plan_entry(s) for s in specs])
    ctx.progress.note(f"data {root}: {len(samples)} images of {len(categories_of(samples))} categories; "
                      f"{len(specs)} runs in {out}")
    return ctx, specs


def _check_claim(ctx: Context) -> None:
    if ctx.claim is not None:
        ctx.claim.check()


def _invocation(data: str, root: Path, names, categories, specs, preset, seeds, unified, overrides) -> dict:
    return {
        "data": str(data), "data_root": str(root), "methods": names, "scenarios": list(categories),
        "preset": preset, "seeds": list(seeds) if seeds else None, "unified": unified,
        "overrides": dict(overrides or {}), "runs": [s.rel_dir for s in specs],
    }


def _plan_entry(spec: RunSpec) -> dict[str, Any]:
    """What the folder's command fixes about one run (the data is checked per run, see `_identity`)."""
    return {"run": spec.rel_dir, "categories": list(spec.categories), "config": spec.config.to_dict()}


def _identity(spec: RunSpec, ctx: Context) -> dict[str, Any]:
    """What makes a run the same run; JSON round-tripped so that it compares equal to what is read back.
    `data` fingerprints the files the run reads (images and masks of its categories), so a data set that got
    more or other images under the same path is not mistaken for the one the results came from."""
    cats = set(spec.categories)
    key = tuple(sorted(cats))
    if key not in ctx.fingerprints:
        files = sample_files([s for s in ctx.samples if s.category in cats])
        ctx.fingerprints[key] = data_fingerprint(ctx.data_root, files)
    chosen = {} if spec.protocol == "held-out" else {"protocol": spec.protocol}  # absent = held-out
    return json.loads(json.dumps({
        "method": spec.method, "setting": spec.setting, "seed": spec.seed, "data_root": str(ctx.data_root),
        "categories": list(spec.categories), "data": ctx.fingerprints[key], "config": spec.config.to_dict(),
        **chosen,
    }))


def _check_existing(spec: RunSpec, ctx: Context) -> None:
    """A run folder left by an earlier benchmark must be the same run (same config, data and categories)."""
    run_dir = ctx.out / spec.rel_dir
    found = rundir.recorded_identity(run_dir)
    if found is not None:
        rundir.check_identity(run_dir, found, _identity(spec, ctx))


def _run_or_keep(spec: RunSpec, ctx: Context) -> str | None:
    """Run `spec` unless finished; a known error (MiadError) is recorded in error.json and returned, so that
    one failing run does not cost the others; anything else is a bug and propagates."""
    run_dir = ctx.out / spec.rel_dir
    if rundir.is_finished(run_dir):
        ctx.progress.skip_run(spec.method, spec.setting, spec.seed)
        return None
    _check_existing(spec, ctx)  # another worker may have started it since this one checked the folder
    wanted = _identity(spec, ctx)
    rundir.start_run(run_dir, wanted)
    ctx.progress.log_to(run_dir / "run.log")
    try:
        _execute(spec, ctx, run_dir, wanted)
    except MiadError as exc:
        _check_claim(ctx)  # a failure after a takeover is not this run's failure: the new holder goes on
        rundir.write_error(run_dir, exc, ctx.claim.info if ctx.claim is not None else {})
        ctx.progress.fail_run(str(exc))
        if ctx.group is not None:
            raise ctx.group.stopped(run_dir, exc) from exc
        return f"{run_dir}: {exc}"
    return None


def _execute(spec: RunSpec, ctx: Context, run_dir: Path, identity: dict[str, Any]) -> None:
    cats = set(spec.categories)
    train = [s for s in ctx.samples if s.split == "train" and s.category in cats]
    test = [s for s in ctx.samples if s.split == "test" and s.category in cats]
    state_dir = run_dir / "state"
    ctx.progress.start_run(spec.method, spec.setting, spec.seed, spec.config.epochs, state_dir.is_dir())
    det = get_method(spec.method)(spec.config)
    write_resolved_config(run_dir, det, setting=spec.setting, seed=spec.seed, categories=list(spec.categories))
    selection = _selection(spec, test, state_dir)
    if ctx.group is not None:
        ctx.group.announce(spec.rel_dir)  # the other processes of this worker train the run with this one
    with open_run_tracker(ctx.tracking, spec, run_dir, det) as tracker:
        ev, measured = _fit_and_test(det, train, test, ctx, run_dir, tracker, selection)
        write_scores_csv(run_dir / rundir.SCORES, ev.rows)
        result = {
            **identity, "trained_on": list(det.trained_on),
            "unified": spec.unified, "processes": ctx.group.size if ctx.group else 1,
            "method_notes": det.run_notes(), "metrics": ev.metrics.to_dict(),
            **measured, "history": det.history,
            "inference_ms_per_image": ev.ms_per_image, "predict_seconds": ev.seconds, "n_train": len(train),
            "n_test": len(test), "holdout": _holdout(det), **_provenance(ctx),
            **({"selection": selection.summary(spec.config.epochs)} if selection else {}),
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        _check_claim(ctx)
        rundir.write_result(run_dir, result)
        log_run_end(tracker, det, train, result, run_dir)
    shutil.rmtree(state_dir, ignore_errors=True)  # finished runs never resume; paper-sized weights are large
    ctx.progress.end_run(_summary(result))


def _selection(spec: RunSpec, test: list[Sample], state_dir: Path) -> Any:
    """The test-set selection of a paper-selection run (miad.selection), else None."""
    rule = rule_for(spec.method, spec.protocol)
    return SelectionOnTest(rule, test, state_dir) if rule is not None else None


def _fit_and_test(det: Detector, train: list[Sample], test: list[Sample], ctx: Context, run_dir: Path, tracker: Any,
                  selection: Any = None):
    """Fit (resuming from run_dir/state) and evaluate; (Evaluation, the run's time and memory measurements).
    `tracker` logs each epoch once its resume state is saved."""
    this_process: list[dict[str, Any]] = []

    def on_epoch(row: dict[str, Any]) -> None:
        if ctx.group is not None:  # taken over: every process stops training at once (this epoch is saved)
            ctx.group.check_claim(ctx.claim)
        _check_claim(ctx)
        this_process.append(row)
        ctx.progress.epoch(row)
        tracker.log_epoch(int(row["epoch"]), row)

    with PeakMemory(ctx.device) as peak:
        t0, cpu0 = time.perf_counter(), time.process_time()
        det.fit(train, device=ctx.device, progress=ctx.bars, state_dir=str(run_dir / "state"),
                num_workers=ctx.num_workers, callback=on_epoch, selection=selection)
        fit_here = time.perf_counter() - t0
        ev = evaluate_detector(det, test, maps_path=run_dir / "maps.npz", progress=ctx.bars,
                               num_workers=ctx.num_workers)
        cpu_seconds = time.process_time() - cpu0  # all threads: comparable on a shared, busy machine
    resumed = det.history[: len(det.history) - len(this_process)]  # epochs an earlier, killed process ran
    return ev, {
        "fit_seconds": fit_here + sum(float(r.get("seconds", 0.0)) for r in resumed),
        "fit_seconds_this_process": fit_here, "resumed_after_epoch": len(resumed),
        "cpu_seconds_this_process": cpu_seconds, "memory": peak.summary(),
    }


def _holdout(det: Detector) -> dict[str, Any] | None:
    if det.holdout is None:
        return None
    return {"threshold": det.holdout.threshold, "category_thresholds": det.holdout.category_thresholds,
            "pixel_quantiles": [float(q) for q in det.holdout.pixel_quantiles.tolist()]}


def _provenance(ctx: Context) -> dict[str, Any]:
    return {"git_commit": git_commit(), "packages": package_versions(), "host": host_info(ctx.device)}


def _summary(result: dict[str, Any]) -> str:
    return (f"done in {result['fit_seconds']:.1f} s fit, {result['inference_ms_per_image']:.1f} ms/image; "
            f"{headline(result)}")
