"""The CLI's front door: `miad --version`."""

from __future__ import annotations

import os
import subprocess
import sys

import miad


def test_version_prints_the_package_version():
    done = subprocess.run([sys.executable, "-m", "miad", "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == f"miad {miad.__version__}"


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}


def test_importing_the_cli_loads_no_torch_and_probes_nothing():
    """The OpenMP wait-policy probe (sampling /proc/stat for 0.1 s) runs from main(), not at import."""
    code = ("import os, sys, miad.cli; "
            "assert 'torch' not in sys.modules, 'torch loaded'; "
            "assert not {'OMP_WAIT_POLICY', 'GOMP_SPINCOUNT'} & set(os.environ), 'policy set at import'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=_clean_env())
    assert done.returncode == 0, done.stderr


def test_main_sets_the_wait_policy_before_torch_loads():
    """An import hook records the environment at the moment torch is first imported (by a command parser that
    `miad --version` builds, or at the latest by the `import torch` after it)."""
    code = """
import importlib.abc, os, sys
seen = []
class Watch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" and not seen:
            seen.append({k for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT") if k in os.environ})
        return None
sys.meta_path.insert(0, Watch())
from miad.cli import main
try:
    main(["--version"])
except SystemExit:
    pass
import torch
assert seen and seen[0], seen
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=_clean_env())
    assert done.returncode == 0, done.stderr
