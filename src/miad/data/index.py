"""One entry point for every data format: detect the layout, index it, pick splits and categories.

`--format auto` (the default): a root that contains `train/good`, or whose sub-folders do, is MVTec-like
(MIAD, MVTec AD or a user's own tree in that layout); anything else is a generic folder set. `miad` is the
MVTec indexer with MIAD's scenario names as the expected ones (others are warned about, never rejected).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from miad.data.defects import MIAD_CATEGORIES
from miad.data.folder import index_folder
from miad.data.io import Problem, list_subfolders
from miad.data.mvtec import as_root, index_mvtec
from miad.errors import ConfigError, DataError
from miad.types import GOOD, Sample

FORMATS: tuple[str, ...] = ("auto", "miad", "mvtec", "folder")
SPLITS: tuple[str, ...] = ("train", "test")


def detect_format(root: str | Path) -> str:
    """'mvtec' when `root` or one of its sub-folders looks MVTec-like, else 'folder'.

    MVTec-like: has `train/good`, or has both `test/` and `ground_truth/` (a tree whose train split is missing
    is still MVTec-like, so the error names the missing `train/good` instead of a generic folder-set problem).
    """
    path = as_root(root)

    def mvtec_like(c: Path) -> bool:
        return (c / "train" / GOOD).is_dir() or ((c / "test").is_dir() and (c / "ground_truth").is_dir())

    try:
        return "mvtec" if any(mvtec_like(c) for c in [path, *list_subfolders(path)]) else "folder"
    except PermissionError as exc:
        raise DataError(f"{exc.filename or path}: permission denied while detecting the data format of {path}; "
                        "make it readable (chmod u+rx) or move it out of the data folder") from None


def index_dataset(
    root: str | Path,
    format: str = "auto",
    categories: Sequence[str] | None = None,
    *,
    problems: list[Problem] | None = None,
    **folder_kwargs: Any,
) -> list[Sample]:
    """Index a data tree of any supported format into sorted samples.

    folder_kwargs: `index_folder` options (normal_dir, defect_dirs, mask_dir, test_ratio, seed, category);
        only valid for the folder format.
    problems: collect problems there instead of raising on the first (as `miad data check` does).
    """
    if format not in FORMATS:
        raise ConfigError(f"unknown data format {format!r}; valid: {', '.join(FORMATS)}")
    resolved = detect_format(root) if format == "auto" else format
    if resolved != "folder" and folder_kwargs:
        raise ConfigError(
            f"options {', '.join(sorted(folder_kwargs))} only apply to --format folder, "
            f"but {root} is indexed as {resolved}"
        )
    if resolved == "folder":
        samples = index_folder(root, problems=problems, **folder_kwargs)
        return _keep_categories(samples, categories)
    expected = MIAD_CATEGORIES if resolved == "miad" else None
    return index_mvtec(root, categories, expected_categories=expected, problems=problems)


def _keep_categories(samples: list[Sample], categories: Sequence[str] | None) -> list[Sample]:
    if categories is None:
        return samples
    available = categories_of(samples)
    unknown = [c for c in categories if c not in available]
    if unknown:
        raise DataError(f"unknown category {', '.join(unknown)}; available: {', '.join(available)}")
    return [s for s in samples if s.category in categories]


def resolve_data_root(data: str | Path) -> Path:
    """The folder behind `--data`: 'builtin' is the generated mini-MIAD (made on first use), anything else
    must be an existing directory."""
    if str(data) == "builtin":
        from miad.data.builtin import builtin_root  # here: only 'builtin' needs the generator's modules

        return Path(builtin_root())
    path = Path(data).expanduser()
    if not path.is_dir():
        what = "is a file, not a folder" if path.exists() else "does not exist"
        raise DataError(f"{data}: the data folder {what}; pass an existing folder, or 'builtin' (mini-MIAD)")
    return path


def load_samples(data: str | Path, scenario: str | Sequence[str] | None = "all") -> list[Sample]:
    """Index `data` (a path or 'builtin') and keep the requested scenario(s): a name, a comma list or a sequence
    of names; 'all' or None keeps every category."""
    root = resolve_data_root(data)
    wanted = None
    if isinstance(scenario, str) and scenario != "all":
        wanted = [s.strip() for s in scenario.split(",") if s.strip()]
    elif scenario is not None and not isinstance(scenario, str):
        wanted = list(scenario)
    samples = index_dataset(root, categories=wanted)
    if not samples:
        raise DataError(f"no images found under {root}; run `miad data check {root}` to see why")
    return samples


def split_samples(samples: Sequence[Sample], split: str) -> list[Sample]:
    """The samples of one split ('train' or 'test'), order kept."""
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    return [s for s in samples if s.split == split]


def categories_of(samples: Sequence[Sample]) -> list[str]:
    """The distinct categories, sorted."""
    return sorted({s.category for s in samples})
