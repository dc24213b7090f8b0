"""Atomic writes: the target is replaced whole or not at all, with the permissions of a plain open()."""

from __future__ import annotations

import os
import stat

import pytest

from miad import atomic
from miad.atomic import atomic_path


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600)])
def test_success_replaces_the_target_with_umask_permissions(tmp_path, monkeypatch, umask, mode):
    monkeypatch.setattr(atomic, "_UMASK", umask)  # the process umask, read once at import
    target = tmp_path / "sub" / "result.json"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(".result.json.")
        tmp.write_text("new")
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == mode  # as a plain open() would, not mkstemp's 0600 always
    assert [p.name for p in target.parent.iterdir()] == ["result.json"]


def test_umask_is_read_without_changing_it():
    before = os.umask(0)
    os.umask(before)
    assert atomic._current_umask() == before
    assert atomic._current_umask() == before  # restored by the first call


def test_failure_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "result.json"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="killed"):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]
