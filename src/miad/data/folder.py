"""Indexer for a generic folder set: one normal folder, any number of defect folders, masks optional.

    <root>/good/*                  normal images, split into train and test-good by `test_ratio` and `seed`
    <root>/<defect>/*              anomalous test images (default: every other sub-folder holding images)
    <root>/<mask_dir>/<stem>.*     masks, also `<stem>_mask.*`; the mask folder may instead mirror the defect
                                   folders: <mask_dir>/<defect>/<stem>[_mask].*

Without `mask_dir`, a sub-folder named mask, masks, ground_truth, groundtruth or gt is used as the mask folder
when there is exactly one. Defect folders without masks give `mask=None` (pixel metrics skip them); in a
mirrored mask folder that rule applies per defect folder. A set with no defect folder is allowed (a warning):
it can be trained on, not evaluated. The category is named after the root folder unless `category` is given.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

from miad.data.io import Problem, list_images, list_subfolders, report, stem_key
from miad.data.mvtec import as_root, check_mask_folders, pair_masks, sort_samples
from miad.errors import ConfigError, DataError
from miad.types import GOOD, Sample

MASK_FOLDER_NAMES: tuple[str, ...] = ("mask", "masks", "ground_truth", "groundtruth", "gt")

PathLike = str | Path


def index_folder(
    root: PathLike | None = None,
    normal_dir: PathLike = GOOD,
    defect_dirs: Sequence[PathLike] | None = None,
    mask_dir: PathLike | None = None,
    test_ratio: float = 0.2,
    seed: int = 0,
    category: str | None = None,
    *,
    problems: list[Problem] | None = None,
) -> list[Sample]:
    """Index a folder set into samples sorted like every indexer's (see `sort_samples`).

    Folder arguments are relative to `root`, or absolute (then `root` may be None and `defect_dirs` must
    be given). `problems`: as in `index_mvtec` (collect instead of raising).
    """
    base = as_root(root) if root is not None else None
    if base is None and defect_dirs is None:
        raise ConfigError(
            "index_folder without root needs explicit defect_dirs (or pass root to discover them)"
        )
    normal = _existing_dir(base, normal_dir, "normal folder")
    masks_root = _mask_root(base, mask_dir)
    defects = _defect_folders(base, normal, defect_dirs, masks_root)
    category = category or (base or normal.parent).name

    normals = list_images(normal)
    if not normals:
        report(problems, normal, "no normal images (png/jpg/jpeg/bmp/tif) in the normal folder; add some")
    train, test_good = split_normal(normals, test_ratio, seed)
    samples = [Sample(p, 0, None, category, GOOD, "train") for p in train]
    samples += [Sample(p, 0, None, category, GOOD, "test") for p in test_good]
    if not defects:
        report(
            problems, base or normal, "no defect folders: the set can be trained on, not evaluated", "warning"
        )
    normal_stems = frozenset(stem_key(p) for p in normals)
    samples += _defect_samples(defects, masks_root, category, normal_stems, problems)
    return sort_samples(samples)


def split_normal(images: list[Path], test_ratio: float, seed: int) -> tuple[list[Path], list[Path]]:
    """(train, test) by a seeded shuffle of the sorted list: the same files and seed give the same split.

    With a ratio > 0 and at least two images, both parts get at least one image.
    """
    if not 0.0 <= test_ratio < 1.0:
        raise ConfigError(f"test_ratio must be in [0, 1), got {test_ratio!r}")
    order = sorted(images, key=lambda p: p.name)
    n_test = round(len(order) * test_ratio)
    if test_ratio > 0 and len(order) >= 2:
        n_test = min(max(n_test, 1), len(order) - 1)
    random.Random(seed).shuffle(order)
    test = set(order[:n_test])
    return [p for p in images if p not in test], [p for p in images if p in test]


def _existing_dir(base: Path | None, folder: PathLike, what: str) -> Path:
    path = base / folder if base is not None else Path(folder)
    if not path.is_dir():
        hint = (
            f"sub-folders of {base}: {', '.join(p.name for p in list_subfolders(base)) or 'none'}; "
            if base
            else ""
        )
        raise DataError(f"{path}: {what} not found; {hint}pass the right folder name")
    return path


def _mask_root(base: Path | None, mask_dir: PathLike | None) -> Path | None:
    if mask_dir is not None:
        return _existing_dir(base, mask_dir, "mask folder")
    if base is None:
        return None
    found = [base / name for name in MASK_FOLDER_NAMES if (base / name).is_dir()]
    return found[0] if len(found) == 1 else None


def _defect_folders(
    base: Path | None, normal: Path, defect_dirs: Sequence[PathLike] | None, masks_root: Path | None
) -> list[Path]:
    if defect_dirs is not None:
        return [_existing_dir(base, d, "defect folder") for d in defect_dirs]
    assert base is not None  # index_folder requires defect_dirs without a root
    skip = {normal.name, *MASK_FOLDER_NAMES} | ({masks_root.name} if masks_root else set())
    return [d for d in list_subfolders(base) if d.name not in skip and list_images(d)]


def _defect_samples(
    defects: list[Path],
    masks_root: Path | None,
    category: str,
    normal_stems: frozenset[str],
    problems: list[Problem] | None,
) -> list[Sample]:
    images = {d: list_images(d) for d in defects}
    for folder in (d for d in defects if not images[d]):
        report(problems, folder, "empty defect folder, ignored; add its images or remove it", "warning")
    masks: dict[Path, Path | None] = {p: None for paths in images.values() for p in paths}
    mirrored = masks_root is not None and any((masks_root / d.name).is_dir() for d in defects)
    if masks_root is not None and mirrored:
        check_mask_folders(masks_root, {d.name for d in defects}, problems)
        for d, paths in images.items():
            if paths and (masks_root / d.name).is_dir():
                masks.update(zip(paths, pair_masks(paths, masks_root / d.name, problems)))
    elif masks_root is not None:
        every = [
            p for paths in images.values() for p in paths
        ]  # one flat folder: stems unique across defects
        masks.update(zip(every, pair_masks(every, masks_root, problems, normal_stems)))
    return [Sample(p, 1, masks[p], category, d.name, "test") for d, paths in images.items() for p in paths]
