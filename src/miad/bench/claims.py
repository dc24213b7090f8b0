"""Run claims: any number of benchmark workers (processes, hosts) share one output folder without doing a run twice.

A worker claims a run by creating `RUN/.claim.<g>` with `O_CREAT | O_EXCL`, which is atomic on local disks and on
NFS/Lustre (flock is not reliable across NFS clients). The file names its holder (a random token), host, PID with
the process start time, and a heartbeat counter that a background thread rewrites every few seconds. A reader
presumes the holder dead when
- the file's bytes have not changed for `timeout` seconds on the reader's own monotonic clock (file times are never
  compared, since hosts' clocks differ), or
- the holder is on the reader's host and its PID is gone or now belongs to a process started at another time.
A dead holder's run is taken over by creating the next generation `.claim.<g+1>`, again with O_EXCL, so of two
workers taking over at once exactly one wins and no file is ever deleted by a non-holder. A holder that was only
presumed dead (stopped, or cut off) sees the newer generation at its next heartbeat and abandons the run.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import threading
import time
from pathlib import Path

from miad.errors import MiadError

TIMEOUT_ENV = "MIAD_CLAIM_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 180.0  # well above NFS attribute caching and a busy node's hiccups; a run lasts far longer
CLAIM_RE = re.compile(r"^\.claim\.(\d+)$")


class ClaimLostError(Exception):
    """This worker's claim was taken over (it was presumed dead): the run is left to the new holder."""


def claim_timeout() -> float:
    """Seconds without a heartbeat after which a holder is presumed dead ($MIAD_CLAIM_TIMEOUT_S, else 180)."""
    text = os.environ.get(TIMEOUT_ENV)
    if not text:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise MiadError(f"{TIMEOUT_ENV}={text!r} is not a positive number of seconds; unset it or set e.g. 180")
    return value


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def host_id() -> str:
    """This machine: host name plus boot id (a PID means nothing on another host or after a reboot)."""
    return f"{socket.gethostname()}/{_boot_id()}"


def process_start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22); None if there is no such
    process (or no /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[19])  # fields after "(comm)": state is field 3


def _holder_alive(pid: int, start_time: int | None) -> bool:
    if Path("/proc").is_dir():
        started = process_start_time(pid)
        return started is not None and started == start_time
    try:  # no /proc (macOS): the PID alone
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def generations(run_dir: Path) -> list[int]:
    try:
        names = os.listdir(run_dir)
    except FileNotFoundError:
        return []
    return sorted(int(m.group(1)) for m in map(CLAIM_RE.match, names) if m)


def claim_path(run_dir: Path, generation: int) -> Path:
    return run_dir / f".claim.{generation}"


class ClaimWatcher:
    """Remembers what each claim file looked like and since when (on this process's monotonic clock)."""

    def __init__(self, timeout: float | None = None) -> None:
        self.timeout = claim_timeout() if timeout is None else timeout
        self.seen: dict[Path, tuple[bytes, float]] = {}
        self.host = host_id()

    def holder_dead(self, path: Path) -> bool:
        try:
            content = path.read_bytes()
        except FileNotFoundError:
            self.seen.pop(path, None)
            return False  # released meanwhile: look at the run again
        info = _parse(content)
        if info and info.get("host") == self.host and not _holder_alive(info.get("pid", -1), info.get("start_time")):
            return True
        now = time.monotonic()
        before = self.seen.get(path)
        if before is None or before[0] != content:
            self.seen[path] = (content, now)
            return False
        return now - before[1] >= self.timeout

    def holder_of(self, run_dir: Path) -> dict | None:
        """The current claim's contents (None if the run is not claimed or the file is unreadable)."""
        gens = generations(run_dir)
        if not gens:
            return None
        try:
            return _parse(claim_path(run_dir, gens[-1]).read_bytes())
        except OSError:
            return None


def _parse(content: bytes) -> dict | None:
    try:
        info = json.loads(content)
    except ValueError:
        return None  # being written, or left empty by a holder that died right after creating it
    return info if isinstance(info, dict) else None


def try_claim(run_dir: Path, watcher: ClaimWatcher) -> Claim | None:
    """Claim `run_dir` (a new claim, or the next generation over a dead holder); None while a live holder has it
    or when another worker won the race."""
    gens = generations(run_dir)
    if gens and not watcher.holder_dead(claim_path(run_dir, gens[-1])):
        return None
    claim = Claim(run_dir, gens[-1] + 1 if gens else 0, watcher.timeout)
    return claim if claim.create() else None


class Claim:
    """One generation of one run's claim, held by this process; a background thread keeps its heartbeat."""

    def __init__(self, run_dir: Path, generation: int, timeout: float) -> None:
        self.run_dir = Path(run_dir)
        self.generation = generation
        self.path = claim_path(self.run_dir, generation)
        self.interval = max(0.1, min(30.0, timeout / 6))
        self.info = {"holder": secrets.token_hex(8), "host": host_id(), "pid": os.getpid(),
                     "start_time": process_start_time(os.getpid()), "beat": 0}
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def took_over(self) -> bool:
        return self.generation > 0

    def create(self) -> bool:
        """Create the claim file exclusively and start the heartbeat; False if another worker created it first."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        try:
            os.write(fd, self._content())
        except OSError as exc:
            os.close(fd)
            self.path.unlink(missing_ok=True)
            raise MiadError(f"cannot write the claim {self.path}: {exc.strerror}; free space on that disk (or fix "
                            "its permissions) and re-run the same command") from None
        os.close(fd)
        self._thread = threading.Thread(target=self._beat_loop, name=f"claim {self.path}", daemon=True)
        self._thread.start()
        return True

    def _content(self) -> bytes:
        return json.dumps(self.info, sort_keys=True).encode() + b"\n"

    def still_held(self) -> bool:
        """False once the run was taken over by another worker (this one was presumed dead)."""
        if self.lost or self._taken_over():
            self.lost = True
        return not self.lost

    def check(self) -> None:
        """Raise ClaimLostError if the run was taken over (checked by the runner between epochs and before
        publishing its result)."""
        if not self.still_held():
            raise ClaimLostError(f"{self.run_dir} was taken over by another worker (this one was presumed dead)")

    def _taken_over(self) -> bool:
        if any(g > self.generation for g in generations(self.run_dir)):
            return True
        try:
            return _parse(self.path.read_bytes()).get("holder") != self.info["holder"]
        except (OSError, AttributeError):
            return True  # our file is gone: a later holder finished the run and tidied up

    def _beat_loop(self) -> None:
        while not self._stop.wait(self.interval):
            if self._taken_over():
                self.lost = True
                return
            self.info["beat"] += 1
            try:  # in place, never re-created: a file removed by a later holder stays removed
                fd = os.open(self.path, os.O_WRONLY)
                try:
                    content = self._content()
                    os.pwrite(fd, content, 0)
                    os.ftruncate(fd, len(content))
                finally:
                    os.close(fd)  # close flushes to the server on NFS (close-to-open consistency)
            except OSError:
                pass  # a full disk or a hiccup: a few missed beats are what the timeout allows for

    def release(self) -> None:
        """Stop the heartbeat and remove this claim with those of the dead holders it took over from (a later
        generation, if any, belongs to a live holder and stays)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.lost:
            return
        for g in generations(self.run_dir):
            if g <= self.generation:
                claim_path(self.run_dir, g).unlink(missing_ok=True)

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
