"""The output folder of `miad train`: what a training run is, and what a re-run on the same --out may do.

A run's identity is the method, the resolved config minus the fields that only change speed or logging
(`SPEED_ONLY_KEYS`), the scenarios trained on and a fingerprint of the training images (`miad.data.fingerprint`).
It is written to `OUT/state/identity.json` before training starts and into `OUT/model.pt` when it ends. A re-run
with the same identity resumes the unfinished run (or, when `model.pt` is finished, keeps it and trains
nothing); any difference is refused, naming it, so that no stale model (old weights, new `trained_on`) and no
hybrid (epochs of one scenario or learning rate continued with another) can come out. `--restart` starts over.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from miad.atomic import write_json_atomic
from miad.checkpoint import read_checkpoint
from miad.data.fingerprint import data_fingerprint, fingerprint_difference, sample_files
from miad.errors import CheckpointError, MiadError
from miad.train import STATE_FILE, read_resume_state
from miad.types import Sample

# Config fields and options that change how fast a run goes or what it logs, never the weights it ends with.
SPEED_ONLY_KEYS = frozenset({"device", "knn_block_elements", "num_workers", "workers", "progress", "logger",
                             "loggers"})
MODEL_FILE = "model.pt"
STATE_DIR = "state"
IDENTITY_FILE = "identity.json"


class RunFolderError(MiadError, ValueError):
    """The --out folder holds a model or resume state of another run."""


@dataclass(frozen=True)
class Plan:
    """What `miad train` does in its --out: train (after `resume_after` finished epochs), or nothing."""

    finished: bool
    resume_after: int = 0


def training_identity(method: str, config: Any, train: Sequence[Sample], data_root: str | Path,
                      protocol: str | None = None) -> dict[str, Any]:
    """What makes two training runs the same run (JSON round-tripped: compares equal to what is read back).
    `protocol`: set only for a test-set selection (miad.selection), so held-out identities stay as they were."""
    kept = {k: v for k, v in config.to_dict().items() if k not in SPEED_ONLY_KEYS}
    chosen = {"protocol": protocol} if protocol else {}
    return json.loads(json.dumps({
        "method": method, "scenarios": sorted({s.category for s in train}), "config": kept,
        "data": data_fingerprint(data_root, sample_files(train)), **chosen,
    }))


def identity_differences(found: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """Human-readable differences, e.g. 'config.lr (0.002 there, 0.01 now)'."""
    def show(value: Any) -> str:
        return ", ".join(map(str, value)) if isinstance(value, list) else repr(value)

    diffs = [f"{k} ({show(found.get(k))} there, {show(wanted.get(k))} now)" for k in ("method", "scenarios")
             if found.get(k) != wanted[k]]
    if found.get("protocol") != wanted.get("protocol"):  # absent = held-out
        diffs.append(f"protocol ({found.get('protocol') or 'held-out'} there, {wanted.get('protocol') or 'held-out'} "
                     "now)")
    old, new = found.get("config") or {}, wanted["config"]
    diffs += [f"config.{k} ({old.get(k)!r} there, {new.get(k)!r} now)" for k in sorted(set(old) | set(new))
              if old.get(k) != new.get(k)]
    data = fingerprint_difference(found.get("data"), wanted["data"])
    if data:
        diffs.append(f"training data ({data})")
    return diffs


def plan_training(out: Path, wanted: dict[str, Any], restart: bool) -> Plan:
    """Decide and prepare --out (the caller holds its lock): resume, start, or keep a finished model.

    A resume state wins over model.pt: it is newer (a --restart that was killed, or a kill between writing
    model.pt and removing the state, which then resumes with zero epochs left)."""
    state_dir = out / STATE_DIR
    if restart:
        shutil.rmtree(state_dir, ignore_errors=True)
    elif (state_dir / _state_file()).is_file():
        done = _resume_point(out, wanted)
        return Plan(False, done)
    elif (out / MODEL_FILE).is_file():
        _require_same(out, "a finished model (model.pt)", _model_identity(out / MODEL_FILE), wanted)
        return Plan(True)
    shutil.rmtree(state_dir, ignore_errors=True)  # an identity without epochs (killed before the first) or temps
    write_json_atomic(state_dir / IDENTITY_FILE, wanted)
    return Plan(False, 0)


def finish(out: Path) -> None:
    """The model is written: its resume state is no longer needed (paper-sized optimiser states are large)."""
    shutil.rmtree(out / STATE_DIR, ignore_errors=True)


def _state_file() -> str:
    return STATE_FILE


def _resume_point(out: Path, wanted: dict[str, Any]) -> int:
    """Finished epochs of a resume state of the same run; any other state is refused."""
    state_dir = out / STATE_DIR
    _require_same(out, f"a resume state ({state_dir})", _state_identity(state_dir), wanted)
    try:
        state = read_resume_state(state_dir / _state_file(), mmap=True)
    except MiadError as exc:  # truncated or foreign: the message says to delete the folder
        raise RunFolderError(f"{exc}, or pass --restart") from None
    return len(state["history"])


def _state_identity(state_dir: Path) -> dict[str, Any] | None:
    try:
        found = json.loads((state_dir / IDENTITY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # left by a miad that did not record it, or damaged by hand
    return found if isinstance(found, dict) else None


def _model_identity(path: Path) -> dict[str, Any] | None:
    try:
        found = read_checkpoint(path).get("identity")
    except CheckpointError as exc:
        raise RunFolderError(f"{exc}; or pass --restart to train it again, or another --out") from None
    return found if isinstance(found, dict) else None


def _require_same(out: Path, what: str, found: dict[str, Any] | None, wanted: dict[str, Any]) -> None:
    if found is None:
        why = "no record of the run that made it (an older miad, or a damaged identity.json)"
    else:
        diffs = identity_differences(found, wanted)
        if not diffs:
            return
        more = f"; and {len(diffs) - 4} more" if len(diffs) > 4 else ""
        why = f"other settings: {'; '.join(diffs[:4])}{more}"
    raise RunFolderError(f"{out} holds {what} made with {why}; pass --restart to train from scratch "
                         "(it replaces that model), or another --out")
