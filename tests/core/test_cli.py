"""The CLI's front door: `miad --version`."""

from __future__ import annotations

import subprocess
import sys

import miad


def test_version_prints_the_package_version():
    done = subprocess.run([sys.executable, "-m", "miad", "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == f"miad {miad.__version__}"
