"""`miad data check ROOT [--format auto|miad|mvtec|folder]`: validate a data tree and print its counts.

Prints a table of image and mask counts per category / split / defect type, then every problem found, one
line each with the file and the fix. Exit status 0 when the tree is clean, 1 when anything was found.
"""

from __future__ import annotations

import argparse

from miad.data.check import check_tree
from miad.data.index import FORMATS, resolve_data_root


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="inspect and validate data trees")
    parser.set_defaults(func=lambda _args: _help(parser))
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION")
    check = actions.add_parser(
        "check", help="validate a tree: counts per category/split/defect type and every problem found"
    )
    check.add_argument("root", metavar="ROOT", help="data folder, or 'builtin' for the built-in mini-MIAD")
    check.add_argument(
        "--format",
        default="auto",
        choices=FORMATS,
        help="layout: auto (default), miad (MVTec-like with MIAD's scenario names), mvtec, folder",
    )
    check.set_defaults(func=run)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run(args: argparse.Namespace) -> int:
    report = check_tree(resolve_data_root(args.root), format=args.format)
    print(report.render())
    return 0 if report.ok else 1
