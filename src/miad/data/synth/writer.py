"""Write a mini-MIAD tree: plan the images, render them (in worker processes), write PNGs and manifest.csv.

Layout (MVTec / MIAD): OUT/<scenario>/train/good/NNN.png, OUT/<scenario>/test/good/NNN.png,
OUT/<scenario>/test/<defect>/NNN.png, OUT/<scenario>/ground_truth/<defect>/NNN_mask.png (0/255), and
OUT/manifest.csv with one row per image. Test-defect image i of a scenario with k defect types has type i mod k,
so the types share the images evenly and image i keeps its type and content whatever the count.

The tree is built in a hidden temporary folder beside OUT and renamed into place at the end, so an interrupted
run never leaves a half-written tree that looks complete. PNGs are encoded by OpenCV without metadata, so the
same parameters give the same bytes.
"""

from __future__ import annotations

import csv
import multiprocessing
import os
import secrets
import shutil
import sys
from collections.abc import Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from miad.data.defects import MIAD_DEFECTS, defect_group
from miad.data.synth.render import render_example
from miad.data.synth.spec import Strengths, check_scenarios, resolve_strengths
from miad.errors import ConfigError, DataError

MANIFEST = "manifest.csv"
MANIFEST_COLUMNS: tuple[str, ...] = (
    "path",
    "category",
    "split",
    "defect_type",
    "group",
    "label",
    "mask_path",
    "seed",
    "index",
    "viewpoint",
    "background",
    "surface",
    "rotation_deg",
    "scale",
    "tilt_x",
    "tilt_y",
    "shift_x",
    "shift_y",
    "brightness",
)
_PNG = [cv2.IMWRITE_PNG_COMPRESSION, 1]  # noisy textures barely compress more at higher levels, 4x slower
_CHUNK = 24  # images per worker task: small enough to balance two cores, large enough to amortise the calls


@dataclass(frozen=True)
class Job:
    """One image to render: `stream` is train / test_good / test_defect and `index` its number in it."""

    scenario: str
    stream: str
    index: int
    defect: str | None
    number: int  # file number inside its folder

    @property
    def folder(self) -> str:
        split = "train" if self.stream == "train" else "test"
        return f"{self.scenario}/{split}/{self.defect or 'good'}"


def plan_jobs(scenarios: Iterable[str], n_train: int, n_test_good: int, n_test_defect: int) -> list[Job]:
    jobs: list[Job] = []
    for name in scenarios:
        jobs += [Job(name, "train", i, None, i) for i in range(n_train)]
        jobs += [Job(name, "test_good", i, None, i) for i in range(n_test_good)]
        types = MIAD_DEFECTS[name]
        jobs += [Job(name, "test_defect", i, types[i % len(types)], i // len(types)) for i in range(n_test_defect)]
    return jobs


def _check_counts(n_train: int, n_test_good: int, n_test_defect: int, size: int) -> None:
    for name, value, low in (
        ("n_train", n_train, 1),
        ("n_test_good", n_test_good, 0),
        ("n_test_defect", n_test_defect, 0),
        ("size", size, 32),
    ):
        if not isinstance(value, (int, np.integer)) or value < low:
            raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
    if size > 4096:
        raise ConfigError(f"size must be at most 4096 pixels, got {size}")


def _render_chunk(
    root: str, jobs: list[Job], size: int, seed: int, strengths: dict[str, Strengths], width: int
) -> list[dict]:
    rows = []
    for job in jobs:
        ex = render_example(
            job.scenario,
            job.defect,
            size=size,
            seed=seed,
            split=job.stream,
            index=job.index,
            strengths=strengths[job.scenario],
        )
        rel = f"{job.folder}/{job.number:0{width}d}.png"
        _write_png(Path(root) / rel, cv2.cvtColor(ex.image, cv2.COLOR_RGB2BGR))
        mask_rel = ""
        if job.defect is not None:
            mask_rel = f"{job.scenario}/ground_truth/{job.defect}/{job.number:0{width}d}_mask.png"
            _write_png(Path(root) / mask_rel, ex.mask)
        rows.append(
            {
                "path": rel,
                "category": job.scenario,
                "split": "train" if job.stream == "train" else "test",
                "defect_type": job.defect or "good",
                "group": defect_group(job.scenario, job.defect) if job.defect else "",
                "label": int(job.defect is not None),
                "mask_path": mask_rel,
                "seed": seed,
                "index": job.index,
                **ex.factors,
            }
        )
    return rows


def _write_png(path: Path, image: np.ndarray) -> None:
    ok, data = cv2.imencode(".png", image, _PNG)
    if not ok:
        raise DataError(f"could not encode {path} as PNG")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.tobytes())


def build_tree(
    root: Path,
    *,
    scenarios: Iterable[str] | None = None,
    n_train: int = 100,
    n_test_good: int = 25,
    n_test_defect: int = 25,
    size: int = 256,
    seed: int = 0,
    strengths: Strengths | Mapping[str, Strengths] | None = None,
    workers: int | None = None,
) -> int:
    """Render the tree into the existing folder `root` (no atomicity: see `generate`); returns the image count."""
    names = check_scenarios(scenarios)
    _check_counts(n_train, n_test_good, n_test_defect, size)
    per_scenario = resolve_strengths(names, strengths)
    jobs = plan_jobs(names, n_train, n_test_good, n_test_defect)
    width = max(3, len(str(max(n_train, n_test_good, n_test_defect) - 1)))
    chunks = [jobs[i : i + _CHUNK] for i in range(0, len(jobs), _CHUNK)]
    if workers is None:
        workers = min(_usable_cores(), 8) if len(jobs) >= 4 * _CHUNK else 1
    args = [(str(root), chunk, size, int(seed), per_scenario, width) for chunk in chunks]
    if workers <= 1 or len(chunks) == 1:
        results = [_render_chunk(*a) for a in args]
    else:
        results = _render_in_pool(args, workers)
    rows = [row for chunk in results for row in chunk]
    _write_manifest(root / MANIFEST, rows)
    return len(rows)


def _usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))  # respects taskset / container CPU sets
    return os.cpu_count() or 1


def _render_in_pool(args: list[tuple], workers: int) -> list[list[dict]]:
    """Render the chunks in worker processes (results in chunk order).

    On Linux the workers are forked: spawned ones would re-run an unguarded calling script and import torch
    again. A child forked while OpenCV's thread pool is alive hangs in its first call that touches the pool, so
    OpenCV is single-threaded while the workers are forked (they inherit that: one thread per core) and
    restored afterwards; spawned workers (macOS, Windows) set it themselves. Workers run numpy and OpenCV only,
    never torch.
    """
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(method),
                                 initializer=cv2.setNumThreads, initargs=(1,)) as pool:
            return list(pool.map(_render_chunk, *zip(*args)))
    finally:
        cv2.setNumThreads(threads)


def _write_manifest(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def generate(
    out: str | Path,
    scenarios: Iterable[str] | None = None,
    n_train: int = 100,
    n_test_good: int = 25,
    n_test_defect: int = 25,
    size: int = 256,
    seed: int = 0,
    strengths: Strengths | Mapping[str, Strengths] | None = None,
    workers: int | None = None,
) -> Path:
    """Generate a mini-MIAD tree at `out` and return its path.

    strengths: None for the per-scenario defaults (appendix A.3), one `Strengths` for all scenarios, or a
    mapping scenario -> Strengths (others keep their defaults). `out` must not exist, be empty, or hold an
    earlier generated tree (recognised by its manifest.csv), which is replaced only once the new one is complete.
    workers: processes (None: the usable cores, at most 8, for large sets; 1 for small ones); the output never
    depends on it.
    """
    out = Path(out).expanduser()
    _check_target(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = hidden_sibling(out, "partial")
    try:
        build_tree(
            tmp,
            scenarios=scenarios,
            n_train=n_train,
            n_test_good=n_test_good,
            n_test_defect=n_test_defect,
            size=size,
            seed=seed,
            strengths=strengths,
            workers=workers,
        )
        publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _check_target(out: Path) -> None:
    if not out.exists() or _replaceable(out):
        return
    raise DataError(
        f"{out} already exists and is not an earlier `miad synth` output (no {MANIFEST} with the generator's "
        "columns); choose a new folder or remove it"
    )


def _replaceable(out: Path) -> bool:
    if not out.is_dir():
        return False
    if not any(out.iterdir()):
        return True
    try:
        with open(out / MANIFEST, encoding="utf-8") as fh:
            return tuple(next(csv.reader(fh), ())) == MANIFEST_COLUMNS
    except OSError:
        return False


def hidden_sibling(out: Path, what: str) -> Path:
    """A new hidden folder beside `out` (made with os.mkdir so the user's umask applies, unlike mkdtemp)."""
    path = out.parent / f".{out.name}.{what}-{os.getpid()}-{secrets.token_hex(4)}"
    os.mkdir(path)
    return path


def publish(tmp: Path, out: Path) -> None:
    """Move the finished tree `tmp` to `out`, replacing an empty folder or an earlier generated tree."""
    _check_target(out)
    old = None
    if out.exists():
        if any(out.iterdir()):
            old = hidden_sibling(out, "old")
            os.replace(out, old / "tree")
        else:
            out.rmdir()
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
