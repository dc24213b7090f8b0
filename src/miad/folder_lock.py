"""One `miad train` per output folder: an exclusive `flock` on `OUT/.lock` (benchmarks cooperate instead, through
the run claims of miad.bench.claims).

The kernel drops a flock when its process dies (even by SIGKILL), so a killed benchmark never leaves a stale
lock behind, unlike a pid file. The holder's pid is written into the file only to make the refusal readable.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from miad.errors import MiadError

LOCK_NAME = ".lock"


class FolderLockedError(MiadError, RuntimeError):
    """Another process is writing to the same output folder."""


class FolderLock:
    """`with FolderLock(out):` holds OUT/.lock for the block; a second holder is refused at once.
    `what` names the kind of process in the refusal."""

    def __init__(self, out: str | Path, what: str = "`miad train`") -> None:
        self.out = Path(out)
        self.what = what
        self.path = self.out / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        if self.out.exists() and not self.out.is_dir():
            raise MiadError(f"--out {self.out} is an existing file, not a folder; pass a folder path")
        self.out.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise FolderLockedError(
                f"another {self.what}{holder} is writing to {self.out} (it holds {self.path}); wait for it to "
                "finish or pass another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
    except OSError:
        return ""
    return f" (pid {text})" if text.isdigit() else ""
