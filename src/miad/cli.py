"""The `miad` command line: a thin layer over the public API.

Each sub-command lives in `miad/commands/<name>.py` and defines `register(subparsers)`, which adds its parser
and sets `func=run`. Known errors (`MiadError`) print one line `error: ...` and exit 1; `--debug` shows the
traceback. An OSError about a named file (permissions, a vanished path, a full disk) is printed the same way.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import miad.commands as commands
from miad import __version__
from miad.errors import MiadError
from miad.openmp import set_wait_policy


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
    set_wait_policy()  # first: some command parsers load torch
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
