"""The benchmark command an output folder belongs to: `OUT/benchmark.json`, written once by the first worker.

Workers cooperate on one folder only when they run the same plan: the same runs with the same configs and
categories (however they were spelled: `--methods all` and the full list are one plan). The data root is recorded
but not compared here (nodes may mount the data elsewhere); each run's own identity check covers the data.
The file is published with a hard link, which fails if the name exists (atomic on NFS too), so of two workers
starting at once with different commands one writes it and the other is refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from miad.atomic import create_json_exclusively, write_json_atomic
from miad.errors import MiadError

COMMAND_NAME = "benchmark.json"


class CommandMismatchError(MiadError, ValueError):
    """A worker was started on a folder that belongs to another benchmark command."""


def adopt_command(out: Path, invocation: dict[str, Any], plan: list[dict[str, Any]]) -> None:
    """Make `out` this command's folder, or check that it already is; refuse another command naming the
    difference."""
    doc = json.loads(json.dumps({**invocation, "plan": plan}))  # round-tripped: compares equal to what is read
    path = out / COMMAND_NAME
    if create_json_exclusively(path, doc):
        return
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CommandMismatchError(f"{path} is unreadable ({exc}); delete it and re-run the command") from None
    if not isinstance(found, dict) or "plan" not in found:  # an older miad's record: this command's replaces it
        write_json_atomic(path, doc)
        return
    diffs = plan_differences(found["plan"], doc["plan"])
    if diffs:
        raise CommandMismatchError(
            f"{out} belongs to another benchmark command: {'; '.join(diffs[:4])}"
            f"{f' (and {len(diffs) - 4} more)' if len(diffs) > 4 else ''}; run the command recorded in {path}, "
            f"pass another --out, or delete {path} to give the folder to this command (finished runs are kept)"
        )


def plan_differences(there: list[dict[str, Any]], here: list[dict[str, Any]]) -> list[str]:
    """What differs between two plans, run by run, readable in one line."""
    old, new = {r["run"]: r for r in there}, {r["run"]: r for r in here}
    diffs = []
    only_there, only_here = [r for r in old if r not in new], [r for r in new if r not in old]
    if only_there:
        diffs.append(f"runs only there: {', '.join(only_there[:3])}{' ...' if len(only_there) > 3 else ''}")
    if only_here:
        diffs.append(f"runs only here: {', '.join(only_here[:3])}{' ...' if len(only_here) > 3 else ''}")
    for run in (r for r in new if r in old):
        a, b = old[run], new[run]
        if a.get("categories") != b.get("categories"):
            diffs.append(f"{run}: categories ({a.get('categories')} there, {b.get('categories')} now)")
        ca, cb = a.get("config", {}), b.get("config", {})
        diffs += [f"{run}: config.{k} ({ca.get(k)!r} there, {cb.get(k)!r} now)" for k in sorted(set(ca) | set(cb))
                  if ca.get(k) != cb.get(k)]
    return diffs


def read_command(out: Path) -> dict[str, Any]:
    """The command recorded in OUT (for workers started from the folder alone: `--jobs`, SLURM)."""
    path = Path(out) / COMMAND_NAME
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MiadError(f"{path} is missing or unreadable ({exc}); start the benchmark with `miad benchmark`") from None
    if not isinstance(doc, dict) or "plan" not in doc:
        raise MiadError(f"{path} records no plan (an older miad wrote it); re-run the `miad benchmark` command")
    return doc
