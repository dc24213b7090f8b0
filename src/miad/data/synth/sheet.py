"""Contact sheet of a generated tree: one row per scenario, a normal image then one image per defect type with
its mask outlined, each labelled, so a person can judge the renderings at a glance."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from miad.atomic import atomic_path
from miad.data.defects import MIAD_DEFECTS
from miad.errors import DataError

OUTLINE = (255, 0, 255)  # magenta: rare in the scenes (sky, foliage, steel, copper, paint)
LABEL_HEIGHT = 18
GAP = 4


def write_sheet(
    root: str | Path, path: str | Path, scenarios: Iterable[str] | None = None, tile: int | None = None
) -> Path:
    """Write the sheet of the tree at `root` to the PNG `path`; `tile` is the cell size (default: the image
    size, at most 256)."""
    root, path = Path(root), Path(path).expanduser()
    names = [s for s in (scenarios or MIAD_DEFECTS) if (root / s).is_dir()]
    if not names:
        raise DataError(f"{root}: no scenario folders to show; expected some of {', '.join(MIAD_DEFECTS)}")
    rows = [_row(root, name, tile) for name in names]
    columns = max(len(r) for r in rows)
    side = rows[0][0][1].shape[0]
    cell_w, cell_h = side + GAP, side + LABEL_HEIGHT + GAP
    sheet = Image.new("RGB", (columns * cell_w + GAP, len(rows) * cell_h + GAP), (30, 30, 34))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for r, row in enumerate(rows):
        for c, (label, image) in enumerate(row):
            x, y = GAP + c * cell_w, GAP + r * cell_h
            draw.text((x + 2, y + 3), label, fill=(235, 235, 235), font=font)
            sheet.paste(Image.fromarray(image), (x, y + LABEL_HEIGHT))
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG", optimize=True)
    return path


def _row(root: Path, scenario: str, tile: int | None) -> list[tuple[str, np.ndarray]]:
    good = _first(root / scenario / "test" / "good") or _first(root / scenario / "train" / "good")
    if good is None:
        raise DataError(f"{root / scenario}: no normal image in test/good or train/good to show")
    first = _read(good)
    side = tile or min(first.shape[0], 256)
    row = [(f"{scenario}: good", _fit(first, side))]
    for defect in MIAD_DEFECTS.get(scenario, ()):
        image_path = _first(root / scenario / "test" / defect)
        if image_path is None:
            continue
        mask_path = root / scenario / "ground_truth" / defect / f"{image_path.stem}_mask.png"
        image = _fit(_read(image_path), side)
        mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
        if mask is None:
            raise DataError(f"{mask_path}: missing or unreadable mask for {image_path}")
        mask = cv2.resize(mask, (side, side), interpolation=cv2.INTER_NEAREST)
        # Outline a slightly grown mask, so the line runs around the defect instead of over it.
        grow = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5) if side >= 128 else (3, 3))
        grown = cv2.dilate((mask > 0).astype(np.uint8), grow)
        contours, _ = cv2.findContours(grown, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(image, contours, -1, OUTLINE, 2 if side >= 128 else 1, cv2.LINE_8)
        row.append((defect.replace("_", " "), image))
    return row


def _first(folder: Path) -> Path | None:
    files = sorted(folder.glob("*.png")) if folder.is_dir() else []
    return files[0] if files else None


def _read(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DataError(f"{path}: unreadable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _fit(image: np.ndarray, side: int) -> np.ndarray:
    if image.shape[:2] != (side, side):
        image = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)
    # Drop the lowest bit of each channel: invisible, and the PNG a quarter smaller (sheets go in READMEs).
    return image & np.uint8(0xFE)
