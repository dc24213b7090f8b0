"""The benchmark: a plain loop over method x setting x seed (create -> fit -> evaluate -> write), then the outputs.

Each run owns `OUT/runs/<method>/<setting>/seed<k>/`: `run.json` (what it is: method, data, categories, config),
`state/` (the training loop's per-epoch state while it trains), then `scores.csv`, `maps.npz`, `config.yaml`
and, last and atomically, `result.json`, which marks the run finished. Re-running the same command keeps
finished runs and lets an unfinished one continue from its last finished epoch, so a killed benchmark loses at
most one epoch. A run folder made with another config or data refuses to be reused instead of mixing results.
`OUT/.lock` keeps a second benchmark out of the folder (see `miad.bench.lock`).
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

from miad.bench.lock import BenchmarkLock
from miad.bench.plan import RunSpec, plan_runs, resolve_methods
from miad.bench.progress import BenchProgress
from miad.errors import MiadError
from miad.types import Sample

RESULT_FORMAT = "miad-bench-run"
RESULT_VERSION = 1


class RunMismatchError(MiadError, ValueError):
    """A run folder holds a run of another config or data than the one requested."""


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
) -> BenchmarkResult:
    """Run (or finish) the benchmark in `out` and write its results, tables, figure and report there."""
    from miad.data.index import categories_of, resolve_data_root
    from miad.detector import resolve_device
    from miad.runconfig import load_samples

    t0 = time.perf_counter()
    out = Path(out).expanduser()
    names = resolve_methods(methods)
    root = resolve_data_root(data).resolve()  # absolute: scores.csv paths must join the manifest from anywhere
    samples = load_samples(str(root), scenarios)
    specs = plan_runs(names, categories_of(samples), preset, seeds, unified, dict(overrides or {}))
    with BenchmarkLock(out):
        ctx = Context(out, root, samples, resolve_device(device), num_workers,
                      BenchProgress([s.method for s in specs], enabled=progress),
                      bars=progress and sys.stderr.isatty())
        for spec in specs:  # before anything runs or is written: a foreign run folder fails fast
            _check_existing(spec, ctx)
        _write_invocation(out, data, root, names, specs, preset, seeds, unified, overrides)
        ctx.progress.note(f"data {root}: {len(samples)} images of {len(categories_of(samples))} categories; "
                          f"{len(specs)} runs in {out}")
        failed = [f for f in (_run_or_keep(spec, ctx) for spec in specs) if f]
        if len(failed) == len(specs):
            raise MiadError(f"every run failed; the first: {failed[0]}")
        from miad.bench.outputs import write_outputs

        rows, outputs = write_outputs(out)
    return BenchmarkResult(out, rows, outputs, time.perf_counter() - t0, failed)


def _rebuild_results(ctx: Context) -> None:
    from miad.bench.results import collect_rows, write_results

    write_results(ctx.out, collect_rows(ctx.out, ctx.rows))


def _write_invocation(out: Path, data: str, root: Path, names, specs, preset, seeds, unified, overrides) -> None:
    from miad.runconfig import write_json_atomic

    write_json_atomic(out / "benchmark.json", {
        "data": str(data), "data_root": str(root), "methods": names, "preset": preset,
        "seeds": list(seeds) if seeds else None, "unified": unified, "overrides": dict(overrides or {}),
        "runs": [s.rel_dir for s in specs],
    })


def _identity(spec: RunSpec, ctx: Context) -> dict[str, Any]:
    """What makes a run the same run; JSON round-tripped so that it compares equal to what is read back.
    `data` fingerprints the files the run reads (images and masks of its categories), so a data set that got
    more or other images under the same path is not mistaken for the one the results came from."""
    from miad.data.fingerprint import data_fingerprint, sample_files

    cats = set(spec.categories)
    key = tuple(sorted(cats))
    if key not in ctx.fingerprints:
        files = sample_files([s for s in ctx.samples if s.category in cats])
        ctx.fingerprints[key] = data_fingerprint(ctx.data_root, files)
    return json.loads(json.dumps({
        "method": spec.method, "setting": spec.setting, "seed": spec.seed, "data_root": str(ctx.data_root),
        "categories": list(spec.categories), "data": ctx.fingerprints[key], "config": spec.config.to_dict(),
    }))


def _check_identity(run_dir: Path, found: dict[str, Any], wanted: dict[str, Any]) -> None:
    from miad.data.fingerprint import fingerprint_difference

    diffs = [k for k in wanted if k not in ("config", "data") and found.get(k) != wanted[k]]
    data_diff = fingerprint_difference(found.get("data"), wanted["data"])
    if data_diff:
        diffs.append(f"data ({data_diff})")
    old, new = found.get("config", {}), wanted["config"]
    diffs += [f"config.{k} ({old.get(k)!r} there, {new.get(k)!r} now)" for k in sorted(set(old) | set(new))
              if old.get(k) != new.get(k)]
    if diffs:
        raise RunMismatchError(
            f"{run_dir} holds a run made with other settings: {'; '.join(diffs[:4])}; pass another --out, or "
            f"delete {run_dir} to redo that run"
        )


def _check_existing(spec: RunSpec, ctx: Context) -> None:
    """A run folder left by an earlier benchmark must be the same run (same config, data and categories)."""
    run_dir = ctx.out / spec.rel_dir
    if (run_dir / "result.json").is_file():
        _check_identity(run_dir, read_result(run_dir / "result.json"), _identity(spec, ctx))
    elif (run_dir / "run.json").is_file():
        try:
            found = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            found = None  # written atomically, so only a hand edit gets here: start the run over
        if found is not None:
            _check_identity(run_dir, found, _identity(spec, ctx))


def _run_or_keep(spec: RunSpec, ctx: Context) -> str | None:
    """Run `spec` unless finished; a known error (MiadError) is recorded in error.json and returned, so that
    one failing run does not cost the others; anything else is a bug and propagates."""
    from miad.runconfig import write_json_atomic

    run_dir = ctx.out / spec.rel_dir
    if (run_dir / "result.json").is_file():
        ctx.progress.skip_run(spec.method, spec.setting, spec.seed)
        return None
    wanted = _identity(spec, ctx)
    write_json_atomic(run_dir / "run.json", wanted)
    (run_dir / "error.json").unlink(missing_ok=True)
    for stale in [*run_dir.glob(".*.tmp"), *run_dir.glob("state/.*.tmp")]:  # left by a killed process; we
        stale.unlink(missing_ok=True)  # hold the lock, so no live writer owns them
    try:
        _execute(spec, ctx, run_dir, wanted)
    except MiadError as exc:
        write_json_atomic(run_dir / "error.json", {"error": str(exc), "type": type(exc).__name__})
        ctx.progress.fail_run(str(exc))
        return f"{run_dir}: {exc}"
    _rebuild_results(ctx)  # results.jsonl/csv grow as runs finish
    return None


def read_result(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise MiadError(f"{path} is unreadable ({exc}); delete its run folder to redo the run") from None
    if not isinstance(doc, dict) or doc.get("format") != RESULT_FORMAT:
        raise MiadError(f"{path} is not a miad benchmark result; delete its run folder to redo the run")
    return doc


def _execute(spec: RunSpec, ctx: Context, run_dir: Path, identity: dict[str, Any]) -> None:
    from miad.evaluation import write_scores_csv
    from miad.registry import get_method
    from miad.runconfig import write_json_atomic, write_resolved_config

    cats = set(spec.categories)
    train = [s for s in ctx.samples if s.split == "train" and s.category in cats]
    test = [s for s in ctx.samples if s.split == "test" and s.category in cats]
    state_dir = run_dir / "state"
    ctx.progress.start_run(spec.method, spec.setting, spec.seed, spec.config.epochs, state_dir.is_dir())
    det = get_method(spec.method)(spec.config)
    write_resolved_config(run_dir, det, setting=spec.setting, seed=spec.seed, categories=list(spec.categories))
    ev, measured = _fit_and_test(det, train, test, ctx, run_dir)
    write_scores_csv(run_dir / "scores.csv", ev.rows)
    result = {
        "format": RESULT_FORMAT, "version": RESULT_VERSION, **identity, "trained_on": list(det.trained_on),
        "unified": spec.unified, "method_notes": det.run_notes(), "metrics": ev.metrics.to_dict(), **measured,
        "history": det.history,
        "inference_ms_per_image": ev.ms_per_image, "predict_seconds": ev.seconds, "n_train": len(train),
        "n_test": len(test), "holdout": _holdout(det), **_provenance(ctx),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    write_json_atomic(run_dir / "result.json", result)
    shutil.rmtree(state_dir, ignore_errors=True)  # finished runs never resume; paper-sized weights are large
    ctx.progress.end_run(_summary(result))


def _fit_and_test(det: Any, train: list[Sample], test: list[Sample], ctx: Context, run_dir: Path):
    """Fit (resuming from run_dir/state) and evaluate; (Evaluation, the run's time and memory measurements)."""
    from miad.bench.provenance import PeakMemory
    from miad.evaluation import evaluate_detector

    this_process: list[dict[str, Any]] = []

    def on_epoch(row: dict[str, Any]) -> None:
        this_process.append(row)
        ctx.progress.epoch(row)

    with PeakMemory(ctx.device) as peak:
        t0, cpu0 = time.perf_counter(), time.process_time()
        det.fit(train, device=ctx.device, progress=ctx.bars, state_dir=str(run_dir / "state"),
                num_workers=ctx.num_workers, callback=on_epoch)
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


def _holdout(det: Any) -> dict[str, Any] | None:
    if det.holdout is None:
        return None
    return {"threshold": det.holdout.threshold, "category_thresholds": det.holdout.category_thresholds,
            "pixel_quantiles": [float(q) for q in det.holdout.pixel_quantiles.tolist()]}


def _provenance(ctx: Context) -> dict[str, Any]:
    from miad.bench.provenance import git_commit, host_info, package_versions

    return {"git_commit": git_commit(), "packages": package_versions(), "host": host_info(ctx.device)}


def _summary(result: dict[str, Any]) -> str:
    from miad.bench.results import headline

    return (f"done in {result['fit_seconds']:.1f} s fit, {result['inference_ms_per_image']:.1f} ms/image; "
            f"{headline(result)}")
