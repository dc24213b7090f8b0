"""The OpenMP wait policy: passive on a busy machine, brief spinning on an idle one, user setting wins."""

from __future__ import annotations

import os

import pytest

from miad import openmp


@pytest.fixture
def clean_env(monkeypatch):
    for key in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):
        monkeypatch.delenv(key, raising=False)
    return monkeypatch


@pytest.mark.parametrize(("busy", "key", "value"), [(1.5, "OMP_WAIT_POLICY", "PASSIVE"),
                                                     (0.1, "GOMP_SPINCOUNT", "10000")])
def test_policy_follows_machine_load(clean_env, busy, key, value):
    clean_env.setattr(openmp, "busy_cores", lambda: busy)
    openmp.set_wait_policy()
    assert os.environ[key] == value
    other = {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT"} - {key}
    assert not other & set(os.environ)


def test_user_setting_wins(clean_env):
    clean_env.setenv("GOMP_SPINCOUNT", "5")
    clean_env.setattr(openmp, "busy_cores", lambda: 2.0)
    openmp.set_wait_policy()
    assert os.environ["GOMP_SPINCOUNT"] == "5" and "OMP_WAIT_POLICY" not in os.environ


def test_busy_cores_is_a_core_count():
    assert 0.0 <= openmp.busy_cores(window=0.05) <= (os.cpu_count() or 1) + 1e-9
