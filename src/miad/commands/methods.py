"""`miad methods`: list the registered methods and their presets."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("methods", help="list methods and presets", description=__doc__)
    p.add_argument("--show", metavar="NAME", help="print every config value of NAME's presets")
    p.add_argument("--sources", action="store_true",
                   help="print each `paper` value with its source (appendix section or pinned original file); "
                        "all methods unless --show NAME")
    p.add_argument("--markdown", action="store_true", help="with --sources: the README table (Markdown)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from miad.registry import get_method, list_methods

    if args.sources or args.markdown:
        from miad.sources import builtin_methods

        return _sources([args.show] if args.show else builtin_methods(), args.markdown)
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


def _sources(methods: list[str], markdown: bool) -> int:
    from miad.sources import markdown_tables, source_rows

    if markdown:
        print(markdown_tables(methods), end="")
        return 0
    for method in methods:
        print(f"[{method} / paper]")
        for key, value, source in source_rows(method):
            print(f"  {key} = {value}\n      {source}")
    return 0
