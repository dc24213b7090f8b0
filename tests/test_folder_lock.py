"""One `miad train` per output folder: an exclusive flock that a second holder is refused and a dead one frees."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from miad.folder_lock import FolderLock, FolderLockedError

HOLDER = """
import sys, time
from miad.folder_lock import FolderLock
FolderLock(sys.argv[1]).acquire()
print("locked", flush=True)
time.sleep(120)
"""


def test_lock_is_exclusive_and_freed_when_the_holder_is_killed(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(FolderLockedError) as err:
            FolderLock(tmp_path).acquire()
        assert f"pid {holder.pid}" in str(err.value) and "--out" in str(err.value) and "\n" not in str(err.value)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    with FolderLock(tmp_path):  # the kernel released the killed holder's lock
        with pytest.raises(FolderLockedError, match="another `miad train`"):
            FolderLock(tmp_path).acquire()
