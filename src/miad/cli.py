"""The `miad` command line: a thin layer over the public API.

Each sub-command lives in `miad/commands/<name>.py` and defines `register(subparsers)`, which adds its parser
and sets `func=run`. Known errors (`MiadError`) print one line `error: ...` and exit 1; `--debug` shows the
traceback. An OSError about a named file (permissions, a vanished path, a full disk) is printed the same way.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import time

import miad.commands as commands
from miad import __version__
from miad.errors import MiadError


def _busy_cores(window: float = 0.1) -> float:
    """Cores kept busy by other processes right now (/proc/stat over `window` s; load average elsewhere)."""
    try:
        with open("/proc/stat") as f:
            before = [int(v) for v in f.readline().split()[1:]]
        time.sleep(window)
        with open("/proc/stat") as f:
            after = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    delta = [a - b for a, b in zip(after, before)]
    idle = delta[3] + (delta[4] if len(delta) > 4 else 0)  # idle + iowait
    return (1 - idle / max(1, sum(delta))) * (os.cpu_count() or 1)


def _openmp_wait_policy() -> None:
    """Choose how idle OpenMP threads wait, before torch loads (`main` calls it first; neither this module nor
    the command parsers it imports load torch); a user's own OMP/GOMP setting wins.

    Spinning threads steal the cores from each other when anything else runs (on 2 busy cores a DRAEM fit took
    15x the CPU time), so a busy machine gets passive waiting. On an idle machine passive waiting makes the
    many small kernels of the CPU presets slow (U-Net AE quick step: 91 ms passive, 56 ms spinning), so there
    threads spin briefly (GOMP_SPINCOUNT=10000, a few microseconds) before they sleep.
    """
    if any(k in os.environ for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")):
        return
    if _busy_cores() >= 0.5:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    else:
        os.environ["GOMP_SPINCOUNT"] = "10000"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="miad", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    parser.add_argument("--version", action="version", version=f"miad {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"miad.commands.{info.name}").register(sub)
    return parser


def _escape_undecodable_output() -> None:
    """File names that are not UTF-8 are printed with their odd bytes escaped (`\\udce9`), never a crash."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")


def main(argv: list[str] | None = None) -> int:
    _openmp_wait_policy()  # first: some command parsers load torch
    _escape_undecodable_output()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except MiadError as exc:
        if args.debug:
            raise
        print("error: " + " ".join(str(exc).split()), file=sys.stderr)  # always one line
        return 1
    except OSError as exc:  # a file the user can fix (permissions, a vanished path, a full disk)
        if args.debug or exc.filename is None:
            raise
        fix = "fix its permissions" if isinstance(exc, PermissionError) else "check the path and the disk"
        print(f"error: {exc.filename}: {exc.strerror or type(exc).__name__}; {fix}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
