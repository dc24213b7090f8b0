"""Atomic file writes: every result, checkpoint, map file and export is written to a temp file beside its target
and renamed over it, so a reader (or a killed run) never sees half a file and an old copy survives a failure."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


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
