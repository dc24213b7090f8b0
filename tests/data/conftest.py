"""Tiny on-disk trees for the data-layer tests (16x16 images, written in tmp_path).

The helpers are served through the `trees` fixture: with pytest's importlib mode a test file cannot import
this conftest by name (tests/conftest.py would shadow it).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

SIDE = 16


def save(path: Path, array: np.ndarray | None = None, value: int = 128, **kwargs) -> Path:
    """Write an image (a constant grey by default); the format follows the extension."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if array is None:
        array = np.full((SIDE, SIDE, 3), value, np.uint8)
    Image.fromarray(array).save(path, format=_format_of(path), **kwargs)
    return path


def _format_of(path: Path) -> str:
    ext = path.suffix.lower()
    return {".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP"}.get(ext, "PNG")


def square_mask(top: int = 4, left: int = 4, side: int = 6, value: int = 255, size: int = SIDE) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    mask[top : top + side, left : left + side] = value
    return mask


def make_category(
    root: Path,
    name: str,
    defects: Iterable[str] = ("crack",),
    n_train: int = 3,
    n_good: int = 2,
    n_bad: int = 2,
    ext: str = ".png",
    mask_suffix: str = "_mask",
) -> Path:
    """<root>/<name>/{train/good, test/good, test/<defect>, ground_truth/<defect>/<stem><mask_suffix>.png}."""
    cat = root / name
    for i in range(n_train):
        save(cat / "train" / "good" / f"{i:03d}{ext}")
    for i in range(n_good):
        save(cat / "test" / "good" / f"{i:03d}{ext}")
    for defect in defects:
        for i in range(n_bad):
            save(cat / "test" / defect / f"{i:03d}{ext}", value=200)
            save(cat / "ground_truth" / defect / f"{i:03d}{mask_suffix}.png", square_mask())
    return cat


def snapshot(root: Path) -> list[tuple[str, int, int]]:
    """Every path under root with its size and modification time: to prove nothing was written."""
    return sorted(
        (str(p.relative_to(root)), p.lstat().st_size, p.lstat().st_mtime_ns) for p in root.rglob("*")
    )


@pytest.fixture
def trees() -> SimpleNamespace:
    return SimpleNamespace(
        save=save, square_mask=square_mask, make_category=make_category, snapshot=snapshot, SIDE=SIDE
    )


@pytest.fixture
def mvtec_root(tmp_path: Path) -> Path:
    root = tmp_path / "mvtec"
    make_category(root, "bottle", defects=("broken_large", "contamination"))
    make_category(root, "screw", defects=("scratch_head",))
    return root


@pytest.fixture
def folder_root(tmp_path: Path) -> Path:
    """<root>/good (10 images), <root>/scratch and <root>/dent (2 each), flat masks in <root>/masks."""
    root = tmp_path / "parts"
    for i in range(10):
        save(root / "good" / f"n{i:02d}.png")
    for defect in ("scratch", "dent"):
        for i in range(2):
            save(root / defect / f"{defect}{i}.png", value=200)
            save(root / "masks" / f"{defect}{i}_mask.png", square_mask())
    return root
