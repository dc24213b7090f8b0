"""The worker loop: claim the next unfinished run, do it, and repeat until every run of the plan is settled.

A run is settled when it has a result, or a failure recorded since this worker started (failures recorded
earlier are retried once, so a fixed cause needs only a re-run of the command, and a run that keeps failing is not
retried forever). Runs claimed by live workers are waited for, since their holders may die and leave them to be
taken over. The worker that settles the last run writes the tables; two that do so at once write the same ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from miad.bench.claims import ClaimLostError, ClaimWatcher, try_claim
from miad.bench.outputs import write_outputs
from miad.bench.plan import RunSpec
from miad.bench.results import collect_rows, write_results
from miad.bench.rundir import error_record, is_finished, run_dirs


def work_through(specs: list[RunSpec], ctx: Any, run_one: Callable[[RunSpec, Any], str | None]
                 ) -> tuple[list[str], tuple[list, dict] | None]:
    """Claim and do unfinished runs until every run is settled (finished, or failed since this worker started);
    (this worker's failures, the (rows, outputs) it wrote if it settled the last run or found all settled)."""
    watcher = ClaimWatcher()
    poll = max(0.2, min(5.0, watcher.timeout / 10))
    # Failures recorded before this worker started are retried (once: a retry's failure is a new record).
    retry = {s.rel_dir: error_record(ctx.out / s.rel_dir) for s in specs}
    shown = {s.rel_dir for s in specs if _settled(s, ctx, retry)}
    for i, spec in enumerate(specs):
        if spec.rel_dir in shown:
            ctx.progress.at(i)
            ctx.progress.skip_run(spec.method, spec.setting, spec.seed)
    if len(shown) == len(specs):
        return [], _write_outputs(ctx)
    failed: list[str] = []
    outputs = None
    while True:
        pending = [s for s in specs if not _settled(s, ctx, retry)]
        for spec in (s for s in specs if s.rel_dir not in shown and s not in pending):
            shown.add(spec.rel_dir)  # settled by another worker
            ctx.progress.at(specs.index(spec))
            ctx.progress.skip_run(spec.method, spec.setting, spec.seed, "settled by another worker")
        if not pending:
            return failed, outputs
        did = 0
        for spec in pending:
            claim = try_claim(ctx.out / spec.rel_dir, watcher)
            if claim is None:
                continue
            with claim:
                if _settled(spec, ctx, retry):  # settled between the look and the claim
                    continue
                did += 1
                shown.add(spec.rel_dir)
                ctx.progress.at(specs.index(spec))
                failure = _run_claimed(spec, ctx, claim, run_one)
            failed += [failure] if failure else []
            if all(_settled(s, ctx, retry) for s in specs):
                outputs = _write_outputs(ctx)  # this worker settled the last run: the tables are complete
            elif not failure:
                write_results(ctx.out, collect_rows(ctx.out, ctx.rows))  # results.jsonl/csv grow as runs finish
        if not did:
            time.sleep(poll)  # the rest is claimed by live workers: watch for them to finish or die


def _settled(spec: RunSpec, ctx: Any, retry: dict[str, str | None]) -> bool:
    run_dir = ctx.out / spec.rel_dir
    if is_finished(run_dir):
        return True
    record = error_record(run_dir)
    return record is not None and record != retry.get(spec.rel_dir)


def _write_outputs(ctx: Any) -> tuple[list, dict] | None:
    return write_outputs(ctx.out, ctx.rows) if run_dirs(ctx.out) else None  # none when every run failed


def _run_claimed(spec: RunSpec, ctx: Any, claim: Any, run_one: Callable[[RunSpec, Any], str | None]) -> str | None:
    """`_run_or_keep` under `claim`; a run taken over meanwhile (this worker was presumed dead) is left to its new
    holder without a record."""
    if claim.took_over:
        ctx.progress.log_to(ctx.out / spec.rel_dir / "run.log")
        ctx.progress.note(f"{spec.rel_dir}: its worker stopped (dead or silent for {claim.interval * 6:.0f} s); "
                          "taking the run over")
    ctx.claim = claim
    try:
        return run_one(spec, ctx)
    except ClaimLostError as exc:
        ctx.progress.fail_run(str(exc))
        return None
    except Exception:
        if not claim.still_held():
            ctx.progress.fail_run(f"{spec.rel_dir} was taken over by another worker; left to it")
            return None
        raise
    finally:
        ctx.claim = None
        ctx.progress.log_to(None)
