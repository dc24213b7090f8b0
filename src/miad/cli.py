"""The `miad` command line: a thin layer over the public API.

Each sub-command lives in `miad/commands/<name>.py` and defines `register(subparsers)`, which adds its parser
and sets `func=run`. Known errors (`MiadError`) print one line `error: ...` and exit 1; `--debug` shows the
traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

# Before torch loads: OpenMP threads that spin while waiting steal the cores from each other when anything else
# runs on the machine (measured on 2 cores: a DRAEM fit took 15x the CPU time); passive waiting costs nothing
# measurable on an idle machine. A user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from miad.errors import MiadError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="miad", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    import miad.commands as commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"miad.commands.{info.name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
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
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
