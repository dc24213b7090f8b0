"""Run claims on real files: exclusive, kept alive by the heartbeat, taken over from dead holders only."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from miad.bench import claims
from miad.bench.claims import Claim, ClaimLostError, ClaimWatcher, claim_path, generations, try_claim
from miad.errors import MiadError


def _foreign_claim(run_dir: Path, generation: int = 0) -> Path:
    """A claim left by a worker on another host (its PID means nothing here)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = claim_path(run_dir, generation)
    path.write_text(json.dumps({"holder": "abc", "host": "node17/boot", "pid": 1, "start_time": 5, "beat": 3}))
    return path


def test_a_claim_is_exclusive_and_released(tmp_path: Path) -> None:
    watcher = ClaimWatcher(timeout=60)
    first = try_claim(tmp_path, watcher)
    assert first is not None and generations(tmp_path) == [0]
    info = json.loads(first.path.read_text())
    assert info["pid"] == os.getpid() and info["host"] == claims.host_id() and info["start_time"] > 0
    assert try_claim(tmp_path, watcher) is None  # a live holder on this host keeps it
    assert try_claim(tmp_path, ClaimWatcher(timeout=60)) is None
    first.release()
    assert generations(tmp_path) == []
    second = try_claim(tmp_path, watcher)
    assert second is not None
    second.release()


def test_the_heartbeat_keeps_a_silent_host_alive_and_its_silence_kills_it(tmp_path: Path) -> None:
    live = Claim(tmp_path / "live", 0, timeout=0.6)
    live.info["host"] = "node18/boot"  # as if on another host: only the heartbeat says it is alive
    assert live.create()
    _foreign_claim(tmp_path / "dead")
    watcher = ClaimWatcher(timeout=0.6)
    assert not watcher.holder_dead(live.path) and not watcher.holder_dead(claim_path(tmp_path / "dead", 0))
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        assert try_claim(tmp_path / "live", watcher) is None  # beating every 0.1 s
        time.sleep(0.05)
    assert json.loads(live.path.read_text())["beat"] >= 5
    taker = try_claim(tmp_path / "dead", watcher)  # unchanged for 1.5 s on this process's clock
    assert taker is not None and taker.generation == 1 and taker.took_over
    taker.release()
    assert generations(tmp_path / "dead") == []  # the dead holder's file is tidied with the taker's
    live.release()


def test_a_foreign_claim_is_not_taken_before_the_timeout_whatever_its_file_time(tmp_path: Path) -> None:
    path = _foreign_claim(tmp_path)
    os.utime(path, (0, 0))  # a file time from 1970 (another host's clock) proves nothing
    watcher = ClaimWatcher(timeout=30)
    assert try_claim(tmp_path, watcher) is None
    assert try_claim(tmp_path, watcher) is None


def test_a_dead_process_on_this_host_is_taken_over_at_once(tmp_path: Path) -> None:
    code = ("import sys, time; from pathlib import Path; from miad.bench.claims import ClaimWatcher, try_claim; "
            "c = try_claim(Path(sys.argv[1]), ClaimWatcher(60)); print(c.path, flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip().endswith(".claim.0")
        watcher = ClaimWatcher(timeout=60)
        assert try_claim(tmp_path, watcher) is None  # alive
    finally:
        holder.kill()
        holder.wait(timeout=30)
    taker = try_claim(tmp_path, watcher)  # its PID is gone: no need to wait for the timeout
    assert taker is not None and taker.generation == 1
    taker.release()


def test_a_reused_pid_does_not_keep_a_claim(tmp_path: Path) -> None:
    path = _foreign_claim(tmp_path)
    me = claims.process_start_time(os.getpid())
    path.write_text(json.dumps({"holder": "x", "host": claims.host_id(), "pid": os.getpid(), "start_time": me + 1,
                                "beat": 0}))  # this PID, but a process that started at another time
    taker = try_claim(tmp_path, ClaimWatcher(timeout=60))
    assert taker is not None
    taker.release()


def test_a_holder_presumed_dead_learns_it_lost_the_run(tmp_path: Path) -> None:
    old = Claim(tmp_path, 0, timeout=60)
    assert old.create()
    old.check()
    new = Claim(tmp_path, 1, timeout=60)  # what a taker creates over a holder it presumed dead
    assert new.create()
    with pytest.raises(ClaimLostError, match="taken over"):
        old.check()
    old.release()
    assert generations(tmp_path) == [0, 1]  # the lost holder removes nothing of the new holder's
    new.release()
    assert generations(tmp_path) == []


def test_two_takers_race_and_one_wins(tmp_path: Path) -> None:
    _foreign_claim(tmp_path)
    a, b = ClaimWatcher(timeout=0.2), ClaimWatcher(timeout=0.2)
    assert try_claim(tmp_path, a) is None and try_claim(tmp_path, b) is None
    time.sleep(0.3)
    won = [c for c in (try_claim(tmp_path, a), try_claim(tmp_path, b)) if c is not None]
    assert len(won) == 1 and won[0].generation == 1
    won[0].release()


def test_a_full_disk_while_writing_a_claim_is_one_line_and_leaves_no_claim(tmp_path: Path, monkeypatch) -> None:
    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(claims.os, "write", full)
    with pytest.raises(MiadError) as err:
        try_claim(tmp_path, ClaimWatcher(timeout=60))
    message = str(err.value)
    assert "\n" not in message and str(claim_path(tmp_path, 0)) in message and "free space" in message
    assert generations(tmp_path) == []


def test_the_timeout_comes_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv(claims.TIMEOUT_ENV, "2.5")
    assert claims.claim_timeout() == 2.5
    monkeypatch.setenv(claims.TIMEOUT_ENV, "soon")
    with pytest.raises(MiadError, match="MIAD_CLAIM_TIMEOUT_S"):
        claims.claim_timeout()
