"""The decoded-image cache's folder: entries, their size limit (oldest evicted) and the memory budget.

An entry is `<miad cache>/images/<key>.u8` (raw uint8 [N,3,S,S], C order) with `<key>.json` beside it (shape,
size, resize mode, image count, the data folder, creation time); the json's modification time is the entry's
last use. Entries appear by rename only (temp file + rename), so a reader never sees half an entry and several
processes filling the same entry at once each write their own temp file; the last rename wins, with the same
bytes. Removing an entry that another process has open is safe on POSIX (its mapping keeps the old file).

Settings, from the environment (sizes like "8GB", "512MB" or bytes):
  MIAD_IMAGE_CACHE         "auto" (default: training caches decoded images where it pays) or "off"
  MIAD_IMAGE_CACHE_MEMORY  in-memory budget per data set (default a quarter of the machine's RAM); larger data
                           sets go to a memory-mapped file
  MIAD_IMAGE_CACHE_LIMIT   total size of the entries on disk (default 50GB); the least recently used go first
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from miad.errors import ConfigError

VERSION = 1
_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def parse_bytes(text: str, what: str) -> int:
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", str(text))
    if not match or match.group(2).upper() not in _UNITS:
        raise ConfigError(f"{what}={text!r} is not a size; use bytes or a number with KB, MB, GB (e.g. 8GB)")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def cache_enabled() -> bool:
    value = os.environ.get("MIAD_IMAGE_CACHE", "auto").strip().lower()
    if value not in ("auto", "on", "off"):
        raise ConfigError(f"MIAD_IMAGE_CACHE={value!r}: use auto (the default) or off")
    return value != "off"


def memory_budget() -> int:
    """Bytes of decoded images one data set may keep in memory (beyond: a memory-mapped file)."""
    env = os.environ.get("MIAD_IMAGE_CACHE_MEMORY")
    if env is not None:
        return parse_bytes(env, "MIAD_IMAGE_CACHE_MEMORY")
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4
    except (ValueError, OSError, AttributeError):
        return 2 * 1024**3


def disk_limit() -> int:
    return parse_bytes(os.environ.get("MIAD_IMAGE_CACHE_LIMIT", "50GB"), "MIAD_IMAGE_CACHE_LIMIT")


def images_dir() -> Path:
    from miad.data.builtin import cache_dir  # here: the builtin module loads the scene renderers

    return cache_dir() / "images"


@dataclass(frozen=True)
class Entry:
    key: str
    data: Path
    meta: dict[str, Any]
    last_used: float

    @property
    def bytes(self) -> int:
        return self.data.stat().st_size if self.data.exists() else 0


def meta_path(data: Path) -> Path:
    return data.with_suffix(".json")


def list_entries(folder: Path | None = None) -> list[Entry]:
    """Finished entries, least recently used first (unreadable sidecars are skipped)."""
    folder = folder or images_dir()
    entries = []
    for data in sorted(folder.glob("*.u8")) if folder.is_dir() else []:
        try:
            meta_file = meta_path(data)
            meta = json.loads(meta_file.read_text())
            entries.append(Entry(data.stem, data, meta, meta_file.stat().st_mtime))
        except (OSError, ValueError):
            continue
    return sorted(entries, key=lambda e: e.last_used)


def touch(data: Path) -> None:
    """Mark an entry used now (eviction removes the least recently used first)."""
    try:
        os.utime(meta_path(data))
    except OSError:
        pass  # a read-only cache still serves; it just ages


def remove(entry: Entry) -> None:
    for path in (entry.data, meta_path(entry.data)):
        path.unlink(missing_ok=True)


def make_room(nbytes: int, folder: Path | None = None) -> bool:
    """Evict the least recently used entries until `nbytes` more fit the limit; False when they never can."""
    limit = disk_limit()
    if nbytes > limit:
        return False
    entries = list_entries(folder)
    total = sum(e.bytes for e in entries)
    for entry in entries:
        if total + nbytes <= limit:
            break
        total -= entry.bytes
        remove(entry)
    return total + nbytes <= limit


def clear(folder: Path | None = None) -> tuple[int, int]:
    """Remove every entry and leftover temp file; returns (entries removed, bytes freed)."""
    folder = folder or images_dir()
    count, freed = 0, 0
    for entry in list_entries(folder):
        count, freed = count + 1, freed + entry.bytes
        remove(entry)
    for tmp in folder.glob(".*.tmp") if folder.is_dir() else []:
        if time.time() - tmp.stat().st_mtime > 3600:  # an hour old: no fill is still writing it
            freed += tmp.stat().st_size
            tmp.unlink(missing_ok=True)
    return count, freed
