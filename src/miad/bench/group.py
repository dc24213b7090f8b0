"""One benchmark worker made of several processes that train each run together (DistributedDataParallel): the
tasks of one SLURM job with `--gpus-per-run K`, or `torchrun --nproc_per_node=K -m miad benchmark ...`.

Rank 0 is the worker as far as the output folder is concerned: it claims runs, keeps the claim's heartbeat,
evaluates and writes everything. The other ranks only train. Before rank 0 trains a run it broadcasts the run's
folder; every rank then fits that run (each its slice of every global batch, exactly as `miad train` under
torchrun, resuming from the same per-epoch state), and the others wait for rank 0's next broadcast while it
evaluates. After each epoch rank 0 tells the others whether it still holds the claim, so a run taken over by
another worker is left by all ranks at the same epoch.

A known error on one rank would leave the others waiting in a collective, so it ends the whole worker instead:
rank 0 first records it in the run's error.json (the workers running now do not retry it), and the other workers
of the benchmark go on with the remaining runs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from miad import distributed as dist
from miad.bench.claims import ClaimLostError
from miad.errors import MiadError
from miad.registry import get_method
from miad.selection import SelectionOnTest, rule_for

# Followers wait in a broadcast while rank 0 evaluates a run or waits for runs claimed by other workers, which
# may take hours; torch's default collective timeout (30 min) would kill a healthy worker.
GROUP_TIMEOUT = timedelta(hours=72)


class GroupStopped(RuntimeError):
    """A run failed in a multi-process worker: its processes can no longer be kept in step, so the worker ends."""


class GroupLead:
    """Rank 0's side: tells the other ranks which run to train, and whether its claim still holds."""

    def __init__(self) -> None:
        self.size = dist.world_size()

    def announce(self, rel_dir: str) -> None:
        dist.broadcast_from_main(("run", rel_dir))

    def finish(self) -> None:
        dist.broadcast_from_main(("done", None))

    def check_claim(self, claim: Any) -> None:
        """After an epoch, on every rank together: raise ClaimLostError everywhere when rank 0 lost the claim."""
        lost = None
        if claim is not None:
            try:
                claim.check()
            except ClaimLostError as exc:
                lost = str(exc)
        _raise_if_lost(dist.broadcast_from_main(lost))

    def stopped(self, run_dir: Path, exc: Exception) -> GroupStopped:
        return GroupStopped(f"{run_dir}: {exc} (recorded in its error.json); this worker's {self.size} processes "
                            "stop, since one of them cannot leave a run the others still train; the other workers "
                            "go on")


def _raise_if_lost(lost: str | None) -> None:
    if lost:
        raise ClaimLostError(lost)


def lead_runs(lead: GroupLead, work: Callable[[], Any]) -> Any:
    """Rank 0: do `work` (the worker loop), then release the other ranks."""
    try:
        result = work()
    except MiadError:  # raised between runs (never mid-fit: see GroupStopped): the others wait for a message
        lead.finish()
        raise
    lead.finish()
    return result


def follow_runs(specs: list[Any], ctx: Any) -> None:
    """Any other rank: train each run rank 0 announces, until it says done."""
    by_dir = {s.rel_dir: s for s in specs}
    while True:
        kind, rel_dir = dist.broadcast_from_main(None)
        if kind == "done":
            return
        try:
            follow_run(by_dir[rel_dir], ctx)
        except ClaimLostError:
            continue  # rank 0 left the run too; it announces the next one


def follow_run(spec: Any, ctx: Any) -> None:
    """A follower's part of one run: fit it together with rank 0 (which evaluates and writes alone)."""
    cats = set(spec.categories)
    train = [s for s in ctx.samples if s.split == "train" and s.category in cats]
    state_dir = ctx.out / spec.rel_dir / "state"
    rule = rule_for(spec.method, spec.protocol)  # --protocol paper-selection: every rank validates alike
    selection = SelectionOnTest(rule, [s for s in ctx.samples if s.split == "test" and s.category in cats],
                                state_dir) if rule is not None else None
    det = get_method(spec.method)(spec.config)
    det.fit(train, device=ctx.device, progress=False, state_dir=str(state_dir), num_workers=ctx.num_workers,
            selection=selection, callback=lambda row: _raise_if_lost(dist.broadcast_from_main(None)))
