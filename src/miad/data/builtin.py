"""`--data builtin`: the default mini-MIAD, generated once into a cache folder and reused.

The cache is `$MIAD_CACHE` if set, else `~/.cache/miad`; the tree lives in `builtin-v<SYNTH_VERSION>` so a
change of the renderer (which bumps the version) never serves a stale copy. Concurrent first uses are safe:
each process generates into its own hidden folder and renames it into place; a process that loses the race
discards its copy and uses the winner's (both are byte-identical anyway).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import MappingProxyType

from miad.data.synth import MANIFEST, SYNTH_VERSION
from miad.data.synth.writer import build_tree, hidden_sibling

# The parameters of the built-in set; `generate(out, **BUILTIN_SPEC)` makes the same tree elsewhere, and
# `generate(out, **{**BUILTIN_SPEC, "n_train": 10, "size": 64})` a smaller one.
BUILTIN_SPEC = MappingProxyType(
    {"scenarios": None, "n_train": 100, "n_test_good": 25, "n_test_defect": 25, "size": 256, "seed": 0}
)


def cache_dir() -> Path:
    """The miad cache folder: $MIAD_CACHE, else ~/.cache/miad."""
    env = os.environ.get("MIAD_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "miad"


def builtin_root(refresh: bool = False) -> Path:
    """The folder of the built-in mini-MIAD, generating it on first use (about half a minute on two cores).

    refresh: generate it again even if a cached copy exists (the old copy is replaced once the new one is done).
    """
    final = cache_dir() / f"builtin-v{SYNTH_VERSION}"
    if (final / MANIFEST).is_file() and not refresh:
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = hidden_sibling(final, "partial")
    try:
        build_tree(tmp, **BUILTIN_SPEC)
        _install(tmp, final, replace=refresh)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already unless another process won the race
    return final


def _install(tmp: Path, final: Path, replace: bool) -> None:
    old = None
    if replace and final.exists():
        old = hidden_sibling(final, "old")
        os.replace(final, old / "tree")
    elif final.exists() and not (final / MANIFEST).is_file():
        shutil.rmtree(final)  # not from a rename (which is always complete): a leftover of an old version
    try:
        os.rename(tmp, final)
    except OSError:
        if not (final / MANIFEST).is_file():
            raise  # not a lost race: a real problem with the cache folder
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
