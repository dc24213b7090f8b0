"""`miad cache list|clear`: the decoded-image cache's entries under the miad cache folder.

`list` prints one line per entry (least recently used first: the first to be evicted) with its size, image
count and side, resize mode and data folder, then the total and the limit (MIAD_IMAGE_CACHE_LIMIT). `clear`
removes every entry; the built-in data set beside it is kept. Entries are re-created by the next training run.
"""

from __future__ import annotations

import argparse
import time


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("cache", help="list or clear the decoded-image cache")
    parser.set_defaults(func=lambda _args: _help(parser))
    actions = parser.add_subparsers(dest="cache_command", metavar="ACTION")
    actions.add_parser("list", help="entries of the decoded-image cache").set_defaults(func=run_list)
    actions.add_parser("clear", help="remove every entry of the decoded-image cache").set_defaults(func=run_clear)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run_list(args: argparse.Namespace) -> int:
    from miad.data import cache_store

    folder = cache_store.images_dir()
    entries = cache_store.list_entries(folder)
    print(f"decoded-image cache: {folder}")
    for e in entries:
        used = time.strftime("%Y-%m-%d %H:%M", time.localtime(e.last_used))
        m = e.meta
        print(f"  {e.key}  {e.bytes / 1e6:9.1f} MB  {m.get('images', '?'):>6} images  {m.get('size', '?')} px  "
              f"{m.get('resize', '?'):9s}  used {used}  {m.get('folder', '')}")
    total = sum(e.bytes for e in entries)
    print(f"{len(entries)} entries, {total / 1e9:.2f} GB of {cache_store.disk_limit() / 1e9:.1f} GB "
          "(MIAD_IMAGE_CACHE_LIMIT)")
    return 0


def run_clear(args: argparse.Namespace) -> int:
    from miad.data import cache_store

    count, freed = cache_store.clear()
    print(f"removed {count} entries ({freed / 1e9:.2f} GB) from {cache_store.images_dir()}")
    return 0
