"""`miad methods`: list the registered methods and their presets."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("methods", help="list methods and presets", description=__doc__)
    p.add_argument("--show", metavar="NAME", help="print every config value of NAME's presets")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from miad.registry import get_method, list_methods

    if args.show:
        cls = get_method(args.show)
        for preset, cfg in cls.PRESETS.items():
            print(f"[{args.show} / {preset}]")
            for key, value in cfg.to_dict().items():
                print(f"  {key} = {value}")
        return 0
    for name in list_methods():
        print(f"{name:24s} presets: {', '.join(get_method(name).PRESETS)}")
    return 0
