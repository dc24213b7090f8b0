"""The run folder of a benchmark, `OUT/runs/<method>/<setting>/seed<k>/`: its files, and the only code that reads
or writes its records.

- `run.json`: what the run is (method, setting, seed, data fingerprint, categories, config), written when it starts;
- `result.json`: the finished run (its identity, metrics, costs), written last and atomically: it marks the run
  finished, and a finished run never changes;
- `error.json`: the known error that stopped the run (removed when the run is tried again);
- `scores.csv` (miad.evaluation's per-image scores), `maps.npz`, `config.yaml`, `run.log`, `state/` (resume).

Records are read through a cache keyed by the file's identity (inode, size, modification time), so writing a
benchmark's outputs parses each result.json and scores.csv once however many tables and figures use it; the
returned objects are shared: read them, never change them.
"""

from __future__ import annotations

import csv
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from miad.atomic import write_json_atomic
from miad.data.fingerprint import fingerprint_difference
from miad.errors import MiadError

RESULT, RUN, ERROR, SCORES, MAPS = "result.json", "run.json", "error.json", "scores.csv", "maps.npz"
RESULT_FORMAT = "miad-bench-run"
RESULT_VERSION = 1


class RunMismatchError(MiadError, ValueError):
    """A run folder holds a run of another config or data than the one requested."""


def run_dirs(out: Path) -> list[Path]:
    """Finished runs (those with a result.json) under OUT/runs, in a stable order."""
    return sorted(p.parent for p in (out / "runs").glob(f"*/*/seed*/{RESULT}"))


def is_finished(run_dir: Path) -> bool:
    return (run_dir / RESULT).is_file()


def read_result(run_dir: Path) -> dict[str, Any]:
    """The run's result.json (shared, read-only); an unreadable or foreign file is a MiadError naming the fix."""
    return _cached(run_dir / RESULT, _parse_result)


def write_result(run_dir: Path, result: dict[str, Any]) -> None:
    write_json_atomic(run_dir / RESULT, {"format": RESULT_FORMAT, "version": RESULT_VERSION, **result})


def read_scores(run_dir: Path) -> list[dict[str, str]]:
    """The rows of the run's scores.csv (shared, read-only); file names of any bytes come back as written."""
    return _cached(run_dir / SCORES, _parse_scores)


def recorded_identity(run_dir: Path) -> dict[str, Any] | None:
    """What an earlier attempt recorded the run to be (result.json, else run.json), or None for a new run."""
    if is_finished(run_dir):
        return read_result(run_dir)
    try:
        return json.loads((run_dir / RUN).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError):
        return None  # written atomically, so only a hand edit gets here: start the run over


def start_run(run_dir: Path, identity: dict[str, Any]) -> None:
    """Record what the run is, and forget an earlier attempt's error and temp files (the caller holds the run's
    claim, so no live writer owns them)."""
    write_json_atomic(run_dir / RUN, identity)
    (run_dir / ERROR).unlink(missing_ok=True)
    for stale in [*run_dir.glob(".*.tmp"), *run_dir.glob("state/.*.tmp")]:  # left by a killed process
        stale.unlink(missing_ok=True)


def check_identity(run_dir: Path, found: dict[str, Any], wanted: dict[str, Any]) -> None:
    """Refuse a run folder whose recorded identity differs from the requested run's, naming the differences."""
    # data_root is recorded, not compared: nodes may mount the data elsewhere; the fingerprint (relative paths,
    # sizes, times) says whether it is the same data
    diffs = [k for k in wanted if k not in ("config", "data", "data_root") and found.get(k) != wanted[k]]
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


def write_error(run_dir: Path, exc: Exception, holder: dict[str, Any]) -> None:
    """Record the known error that stopped the run and the worker that saw it (holder: its claim's info)."""
    write_json_atomic(run_dir / ERROR, {"error": str(exc), "type": type(exc).__name__,
                                         "host": holder.get("host"), "claim": holder.get("holder")})


def error_record(run_dir: Path) -> str | None:
    """The raw error.json (compared to tell a new failure from an old one), or None without one."""
    try:
        return (run_dir / ERROR).read_text(encoding="utf-8")
    except OSError:
        return None


def error_of(run_dir: Path) -> str:
    """The recorded error's message ('?' when unreadable)."""
    try:
        return json.loads((run_dir / ERROR).read_text(encoding="utf-8")).get("error", "?")
    except (OSError, ValueError):
        return "?"


def failed_runs(out: Path) -> list[Path]:
    """Run folders with an error record and no result, in a stable order."""
    return [p.parent for p in sorted(out.glob(f"runs/*/*/seed*/{ERROR}")) if not is_finished(p.parent)]


def _cached(path: Path, parse: Any) -> Any:
    try:
        stat = path.stat()
    except OSError:
        return parse(path)  # missing or unreadable: the parser says so
    return _parse_once(str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns, parse)


@lru_cache(maxsize=4096)
def _parse_once(path: str, _ino: int, _size: int, _mtime_ns: int, parse: Any) -> Any:
    return parse(Path(path))


def _parse_result(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise MiadError(f"{path} is unreadable ({exc}); delete its run folder to redo the run") from None
    if not isinstance(doc, dict) or doc.get("format") != RESULT_FORMAT:
        raise MiadError(f"{path} is not a miad benchmark result; delete its run folder to redo the run")
    return doc


def _parse_scores(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as fh:
        return list(csv.DictReader(fh))
