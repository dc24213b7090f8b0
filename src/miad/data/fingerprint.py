"""A fingerprint of the files a run reads, to tell whether a data set changed since a model or result was made.

Each file counts by its path relative to the data root, its size and its modification time (nanoseconds), so
fingerprinting MIAD's 100k images costs one `stat` each and no reading. Adding, removing, replacing or touching an
image changes it; moving the whole data root does not. The fingerprint keeps one digest per folder, so that a
difference can be named ("widget/train/good: 6 files there, 7 now") without storing every file name.

Shared by `miad train` (resume identity) and the benchmark's run identity.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from miad.errors import DataError
from miad.types import Sample

VERSION = 1


def sample_files(samples: Sequence[Sample]) -> list[Path]:
    """Every file the samples read: images and masks."""
    return [p for s in samples for p in (s.image, s.mask) if p is not None]


def data_fingerprint(root: str | Path, files: Iterable[str | Path]) -> dict[str, Any]:
    """{version, digest, files, bytes, folders: {folder relative to root: [file count, digest]}} (JSON-ready)."""
    root = Path(root)
    by_folder: dict[str, list[bytes]] = {}
    total = 0
    for path in sorted({Path(f) for f in files}):
        try:
            st = path.stat()
        except OSError as exc:
            raise DataError(f"{path}: cannot read its size and time ({exc.strerror}); fix its permissions or "
                            "remove it") from None
        rel = _relative(path, root)
        folder, _, name = rel.rpartition("/")
        by_folder.setdefault(folder or ".", []).append(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode(
            "utf-8", "surrogateescape"))
        total += st.st_size
    folders = {f: [len(entries), _digest(entries)] for f, entries in sorted(by_folder.items())}
    overall = _digest([f"{f}\0{n}\0{d}\n".encode("utf-8", "surrogateescape") for f, (n, d) in folders.items()])
    return {"version": VERSION, "digest": overall, "files": sum(n for n, _ in folders.values()), "bytes": total,
            "folders": folders}


def fingerprint_difference(old: dict[str, Any] | None, new: dict[str, Any]) -> str | None:
    """None when both fingerprints are equal, else a short description of what differs (<= 3 folders)."""
    if old is not None and old.get("digest") == new["digest"] and old.get("version") == new["version"]:
        return None
    if not isinstance(old, dict) or old.get("version") != new["version"] or "folders" not in old:
        return "the data fingerprint was not recorded (an older miad)"
    before, after = old["folders"], new["folders"]
    notes = []
    for folder in sorted(set(before) | set(after)):
        was, now = before.get(folder), after.get(folder)
        if was == now:
            continue
        if was is None:
            notes.append(f"{folder}: new ({now[0]} files)")
        elif now is None:
            notes.append(f"{folder}: gone ({was[0]} files there)")
        elif was[0] != now[0]:
            notes.append(f"{folder}: {was[0]} files there, {now[0]} now")
        else:
            notes.append(f"{folder}: files replaced or modified")
    more = f" and {len(notes) - 3} more folders" if len(notes) > 3 else ""
    return ", ".join(notes[:3]) + more


def _relative(path: Path, root: Path) -> str:
    """`path` relative to `root` with '/' separators; files outside the root keep their absolute path."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return Path(os.path.abspath(path)).as_posix()


def _digest(entries: list[bytes]) -> str:
    h = hashlib.sha256()
    for entry in entries:
        h.update(entry)
    return h.hexdigest()[:16]
