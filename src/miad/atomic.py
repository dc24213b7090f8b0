"""Atomic file writes: every result, checkpoint, map file and export is written to a temp file beside its target
and renamed over it, so a reader (or a killed run) never sees half a file and an old copy survives a failure.
The one home of writing files that way: text, JSON, torch objects, drawn figures, exclusive creation."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _current_umask() -> int:
    umask = os.umask(0)  # the only way to read it is to set it: done once, at import, before any threads
    os.umask(umask)
    return umask


_UMASK = _current_umask()


def temp_beside(path: Path) -> Path:
    """A new hidden temp file in `path`'s folder (same file system, so the final rename is atomic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    return Path(tmp)


def publish(tmp: Path, path: Path) -> None:
    """Give `tmp` the permissions a plain open() would (mkstemp makes 0600 files), then rename it over `path`."""
    os.chmod(tmp, 0o666 & ~_UMASK)
    os.replace(tmp, path)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path to write; on success it replaces `path`, on any error it is removed."""
    path = Path(path)
    tmp = temp_beside(path)
    try:
        yield tmp
        publish(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str, errors: str = "strict") -> None:
    """UTF-8; errors="surrogateescape" writes file names that are not UTF-8 back as their own bytes."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8", errors=errors)


def write_json_atomic(path: Path, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def atomic_save(obj: Any, path: str | Path) -> None:
    """torch.save to a temp file in the same folder, fsync, then rename: a reader never sees half a file."""
    import torch  # here, not at the top: the other writers serve commands that never load torch

    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        torch.save(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())


def write_drawn(path: Path, draw: Callable[[Path], Path | None]) -> Path | None:
    """`draw(tmp)` writes a figure to a temp file, renamed over `path`; when it draws nothing (returns None), a
    stale `path` is removed and None returned."""
    tmp = temp_beside(path)
    try:
        made = draw(tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if made is None:
        tmp.unlink(missing_ok=True)
        path.unlink(missing_ok=True)
        return None
    publish(tmp, path)
    return path


def create_json_exclusively(path: Path, doc: Any) -> bool:
    """Write `doc` to `path` only if no file has that name (False then): the complete content appears at once,
    so of two processes creating it one wins and the other reads a whole file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_beside(path)
    try:
        tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.chmod(tmp, 0o644)
        os.link(tmp, path)  # complete content appears at once, and only if the name is free
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
