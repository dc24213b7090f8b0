"""`--data builtin`: the default mini-MIAD, generated once into a cache folder and reused.

The cache is `$MIAD_CACHE` if set, else `~/.cache/miad`; the tree lives in `builtin-v<SYNTH_VERSION>` and holds
`.generator`, a fingerprint of the renderer's source: a copy made by another version of the renderer is
regenerated even when nobody bumped SYNTH_VERSION (which happened once: a stale cache shifted demo numbers by up
to 20 points without any warning). Concurrent first uses are safe:
each process generates into its own hidden folder and renames it into place; a process that loses the race
discards its copy and uses the winner's (both are byte-identical anyway).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path
from types import MappingProxyType

import miad.data.defects
import miad.data.synth
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


FINGERPRINT = ".generator"  # hidden: data indexing skips it


def generator_fingerprint() -> str:
    """SHA-256 (16 hex) of the renderer's source files and the built-in spec: what decides the bytes."""
    package = Path(miad.data.synth.__file__).parent
    files = sorted(package.rglob("*.py")) + [Path(miad.data.defects.__file__)]
    digest = hashlib.sha256(repr(sorted(BUILTIN_SPEC.items())).encode())
    for path in files:
        digest.update(path.relative_to(package.parent).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def builtin_root(refresh: bool = False) -> Path:
    """The folder of the built-in mini-MIAD, generating it on first use (about half a minute on two cores).

    refresh: generate it again even if a cached copy exists (the old copy is replaced once the new one is done).
    """
    final, fingerprint = cache_dir() / f"builtin-v{SYNTH_VERSION}", generator_fingerprint()
    stamp = final / FINGERPRINT
    complete = (final / MANIFEST).is_file()  # a finished copy: current, or made by another renderer (replaced)
    if complete and not refresh and stamp.is_file() and stamp.read_text().strip() == fingerprint:
        return final
    why = "on request" if refresh else "the renderer changed" if complete else "first use"
    print(f"generating the built-in mini-MIAD into {final} ({why}; about half a minute on two cores)",
          file=sys.stderr, flush=True)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = hidden_sibling(final, "partial")
    try:
        build_tree(tmp, **BUILTIN_SPEC)
        (tmp / FINGERPRINT).write_text(fingerprint + "\n")
        _install(tmp, final, replace=refresh or complete)
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
