"""Indexer for MVTec-like trees: MIAD, MVTec AD, and any user tree in the same layout.

    <root>/<category>/train/good/*                         normal training images
    <root>/<category>/test/good/*                          normal test images
    <root>/<category>/test/<defect>/*                      anomalous test images, one folder per defect type
    <root>/<category>/ground_truth/<defect>/<stem>_mask.*  masks (`<stem>.*` is accepted too)

The root may also be one category folder itself (it contains `train/` or `test/`); the category is then named
after that folder. Masks are paired with images by stem, never by sort order. A defect folder without any
`ground_truth/<defect>` folder is indexed with `mask=None` (pixel metrics skip it); once that folder exists,
every image needs its mask and every mask its image. Category names are never rejected: when a tree looks like
MIAD or MVTec AD (some names match the known list), the other names are warned about, since they are usually
typos. Nothing is written into the tree.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from miad.data.defects import MIAD_CATEGORIES, MVTEC_CATEGORIES
from miad.data.io import Problem, list_images, list_subfolders, report, stem_key
from miad.errors import DataError
from miad.types import GOOD, Sample

_CATEGORY_PARTS = ("train", "test", "ground_truth")
_KNOWN_LISTS = (("MIAD", MIAD_CATEGORIES), ("MVTec AD", MVTEC_CATEGORIES))


def as_root(root: str | Path) -> Path:
    """An absolute path to an existing folder (symlinks kept as named), or a DataError."""
    path = Path(os.path.abspath(Path(root).expanduser()))
    if not path.is_dir():
        what = "is a file, not a folder" if path.exists() else "does not exist"
        raise DataError(f"{path}: the data root {what}; pass the folder that holds the data set")
    return path


def sort_samples(samples: list[Sample]) -> list[Sample]:
    """Deterministic order: category, train before test, good before defects, then file name."""
    return sorted(
        samples,
        key=lambda s: (s.category, s.split != "train", s.defect_type != GOOD, s.defect_type, s.image.name),
    )


def index_mvtec(
    root: str | Path,
    categories: Sequence[str] | None = None,
    *,
    expected_categories: Sequence[str] | None = None,
    problems: list[Problem] | None = None,
) -> list[Sample]:
    """Index an MVTec-like tree into samples sorted by `sort_samples`.

    categories: keep only these categories (a name not in the tree raises, listing the available ones).
    expected_categories: the known names to warn against (MIAD_CATEGORIES for `--format miad`); by
        default the MIAD or MVTec AD list when the tree uses some of its names.
    problems: when given, problems are appended there and indexing goes on (`miad data check`); otherwise
        the first error raises DataError and warnings go through `warnings.warn`.
    """
    root = as_root(root)
    found = find_categories(root)
    _warn_unknown_names(root, list(found), expected_categories, problems)
    samples: list[Sample] = []
    for name, folder in select_categories(found, categories).items():
        samples += index_category(folder, name, problems)
    return sort_samples(samples)


def find_categories(root: Path) -> dict[str, Path]:
    """Category name -> folder. A root holding `train/` or `test/` is a single category."""
    if any((root / part).is_dir() for part in ("train", "test")):
        return {root.name: root}
    found = {
        sub.name: sub
        for sub in list_subfolders(root)
        if any((sub / part).is_dir() for part in _CATEGORY_PARTS)
    }
    if not found:
        raise DataError(
            f"{root}: no MVTec-like category found; expected <root>/<category>/train/good (or a category "
            "folder holding train/good itself); point to the folder that contains the categories, or use "
            "--format folder for a plain folder set"
        )
    return found


def select_categories(found: dict[str, Path], wanted: Sequence[str] | None) -> dict[str, Path]:
    if wanted is None:
        return found
    unknown = [name for name in wanted if name not in found]
    if unknown:
        raise DataError(
            f"unknown categor{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)}; "
            f"available: {', '.join(found)}"
        )
    return {name: found[name] for name in wanted}


def _warn_unknown_names(
    root: Path, names: list[str], expected: Sequence[str] | None, problems: list[Problem] | None
) -> None:
    if expected is not None:
        known, label = tuple(expected), "expected"
    else:
        matching = [(label, names_) for label, names_ in _KNOWN_LISTS if set(names) & set(names_)]
        if not matching:
            return  # a user's own category names: nothing to compare with
        known = tuple(n for _, names_ in matching for n in names_)
        label = " / ".join(label for label, _ in matching)
    unknown = [n for n in names if n not in known]
    if unknown:
        message = (
            f"unknown categor{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)} (known {label} "
            f"names: {', '.join(known)}); indexed anyway; rename the folder if it is a typo"
        )
        report(problems, root, message, "warning")


def index_category(folder: Path, category: str, problems: list[Problem] | None) -> list[Sample]:
    """All samples of one category folder."""
    samples = [Sample(p, 0, None, category, GOOD, "train") for p in _train_images(folder, problems)]
    test = folder / "test"
    if not test.is_dir():
        report(problems, test, "missing; create test/good and test/<defect> folders with the test images")
        return samples
    good = list_images(test / GOOD)
    if not good:
        report(problems, test / GOOD, "no normal test images (missing or empty folder); add some")
    samples += [Sample(p, 0, None, category, GOOD, "test") for p in good]
    defects = [d for d in list_subfolders(test) if d.name != GOOD]
    if not defects:
        report(problems, test, "no defect folders; add test/<defect>/ folders with the anomalous images")
    for defect in defects:
        samples += _defect_samples(folder, defect, category, problems)
    check_mask_folders(folder / "ground_truth", {d.name for d in defects}, problems)
    return samples


def _train_images(folder: Path, problems: list[Problem] | None) -> list[Path]:
    good = folder / "train" / GOOD
    images = list_images(good)
    if not images:
        state = "is empty (no png/jpg/jpeg/bmp/tif image)" if good.is_dir() else "is missing"
        report(problems, good, f"{state}; every category needs its normal training images there")
    for other in list_subfolders(folder / "train"):
        if other.name != GOOD and list_images(other):
            report(
                problems,
                other,
                "ignored: training images must be normal (train/good only); "
                "move defect images to test/<defect>",
                "warning",
            )
    return images


def _defect_samples(
    folder: Path, defect: Path, category: str, problems: list[Problem] | None
) -> list[Sample]:
    images = list_images(defect)
    if not images:
        report(problems, defect, "empty defect folder, ignored; add its images or remove it", "warning")
        return []
    mask_folder = folder / "ground_truth" / defect.name
    masks = pair_masks(images, mask_folder, problems) if mask_folder.is_dir() else [None] * len(images)
    return [Sample(p, 1, m, category, defect.name, "test") for p, m in zip(images, masks)]


def check_mask_folders(mask_root: Path, defect_names: set[str], problems: list[Problem] | None) -> None:
    """Sub-folders of a mask root that match no defect folder hold masks without images."""
    for masks in list_subfolders(mask_root):
        if masks.name == GOOD:
            report(
                problems,
                masks,
                f"ignored: normal images are scored against an all-zero mask; remove {mask_root.name}/good",
                "warning",
            )
        elif masks.name not in defect_names and list_images(masks):
            report(
                problems,
                masks,
                f"masks without images: no defect folder is named {masks.name!r}; "
                "rename this folder to its defect folder's name, or remove it",
            )


def pair_masks(
    images: list[Path],
    mask_folder: Path,
    problems: list[Problem] | None,
    normal_stems: frozenset[str] = frozenset(),
) -> list[Path | None]:
    """The mask of each image (same order), found in `mask_folder` as `<stem>_mask.*` or `<stem>.*`.

    Missing and ambiguous masks are reported and those images get None; masks that no image claims are
    reported too (as a warning only when their stem is one of `normal_stems`: they are then ignored).
    """
    by_stem: dict[str, list[Path]] = {}
    for mask in list_images(mask_folder):
        by_stem.setdefault(stem_key(mask), []).append(mask)
    _check_unique_stems(images, problems)
    claimed: set[Path] = set()
    paired: list[Path | None] = []
    for image in images:
        stem = stem_key(image)
        candidates = by_stem.get(stem + "_mask", []) + by_stem.get(stem, [])
        claimed.update(candidates)
        paired.append(candidates[0] if len(candidates) == 1 else None)
        if len(candidates) > 1:
            names = ", ".join(c.name for c in candidates)
            report(problems, image, f"several masks match this image ({names} in {mask_folder}); keep one")
        elif not candidates:
            report(
                problems,
                image,
                f"no mask; expected {mask_folder / (image.stem + '_mask.png')} (or "
                f"{image.stem}_mask.* / {image.stem}.* with any image extension); "
                "add the mask or remove the image",
            )
    unclaimed = [m for masks in by_stem.values() for m in masks if m not in claimed]
    _report_unclaimed(unclaimed, images, normal_stems, problems)
    return paired


def _report_unclaimed(
    masks: list[Path], images: list[Path], normal_stems: frozenset[str], problems: list[Problem] | None
) -> None:
    folders = sorted({str(p.parent) for p in images}) or ["(no image folder)"]
    for mask in masks:
        stem = stem_key(mask).removesuffix("_mask")
        if stem in normal_stems:
            report(
                problems, mask, "mask of a normal image, ignored (normal images count as all-zero)", "warning"
            )
        else:
            report(
                problems,
                mask,
                f"mask without an image: no image {stem}.* in {', '.join(folders)}; "
                "remove the mask or add its image",
            )


def _check_unique_stems(images: list[Path], problems: list[Problem] | None) -> None:
    seen: dict[str, Path] = {}
    for image in images:
        first = seen.setdefault(stem_key(image), image)
        if first is not image:
            report(problems, image, f"shares its stem with {first}; masks are paired by stem, so rename one")
