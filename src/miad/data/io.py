"""Reading images and masks from disk, and the problem log shared by the indexers.

Images become 8-bit RGB whatever their mode: grayscale and palette images are expanded; images with an
alpha channel (RGBA, LA, palette with transparency) are composited on black, so an opaque image keeps its
exact colours and fully transparent pixels become black instead of whatever colour sat under them; 16-bit
images are scaled 0..65535 -> 0..255 (not truncated). The EXIF orientation tag is honoured. The file's
content, not its extension, decides how it is decoded. An unreadable file raises `DataError` (subclass
`UnreadableFileError`) naming the file and the fix.

Masks are binarised with `> 0` (so 0/1 and 0/255 masks both work; for RGB masks any channel counts).
"""

from __future__ import annotations

import unicodedata
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from miad.errors import DataError

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
# Files operating systems leave in folders; never data (hidden files, starting with ".", are skipped too).
IGNORED_NAMES = frozenset({"thumbs.db", "desktop.ini", "ehthumbs.db"})

_ORIENTATION_TAG = 0x0112
# EXIF orientation -> the transpose that shows the image upright (the EXIF standard; as PIL's exif_transpose).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_AXES = (5, 6, 7, 8)

Size = int | tuple[int, int]  # a square side, or (width, height)


# ---------------------------------------------------------------- which files are images


def is_image_file(path: str | Path) -> bool:
    """True for a name with an image extension (any case) that is not hidden or OS clutter."""
    name = Path(path).name
    if name.startswith(".") or name.lower() in IGNORED_NAMES:
        return False
    return Path(name).suffix.lower() in IMAGE_EXTENSIONS


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside `folder`, sorted by name; symlinks are followed (a broken one is kept
    so that reading it reports the problem)."""
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if is_image_file(p) and not p.is_dir()), key=lambda p: p.name)


def list_subfolders(folder: Path) -> list[Path]:
    """Visible sub-folders of `folder`, sorted by name."""
    if not folder.is_dir():
        return []
    return sorted(
        (p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name
    )


def stem_key(path: Path) -> str:
    """The stem used to pair images and masks: NFC-normalised, since macOS may store names decomposed."""
    return unicodedata.normalize("NFC", path.stem)


# ---------------------------------------------------------------- problem log


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a data tree: the file or folder, what is wrong and how to fix it."""

    path: Path
    message: str
    severity: str = "error"  # "error": the item is unusable; "warning": handled as documented, but suspicious

    def __str__(self) -> str:
        return f"{self.severity}: {self.path}: {self.message}"


def report(problems: list[Problem] | None, path: Path, message: str, severity: str = "error") -> None:
    """Record a problem. Without a list (normal indexing), errors raise `DataError` and warnings are
    `warnings.warn`-ed; with a list (`miad data check`), everything is collected so checking goes on."""
    if problems is not None:
        problems.append(Problem(path, message, severity))
    elif severity == "warning":
        warnings.warn(f"{path}: {message}", UserWarning, stacklevel=3)
    else:
        raise DataError(f"{path}: {message}")


# ---------------------------------------------------------------- decoding


class UnreadableFileError(DataError):
    """An image or mask file that cannot be decoded; `path` and `reason` let callers list it as a Problem."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def _as_wh(size: Size) -> tuple[int, int]:
    w, h = (size, size) if isinstance(size, int) else size
    if w <= 0 or h <= 0:
        raise DataError(f"image size must be positive, got {size!r}")
    return int(w), int(h)


@contextmanager
def _open(path: Path) -> Iterator[Image.Image]:
    """Open an image, turning every failure into a DataError that names the file and the fix."""
    path = Path(path)
    fix = "replace or delete the file (re-download or re-export it)"
    if not path.exists():
        raise UnreadableFileError(path, f"file not found (a broken link or a moved file); {fix}")
    if path.is_file() and path.stat().st_size == 0:
        raise UnreadableFileError(path, f"the file is empty (0 bytes), probably an interrupted copy; {fix}")
    try:
        with warnings.catch_warnings():  # entered first: PIL warns in Image.open itself (big MIAD frames are fine)
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                yield img
    except DataError:
        raise
    except Image.DecompressionBombError as exc:
        raise UnreadableFileError(path, f"too large to decode safely ({exc}); downscale the image") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise UnreadableFileError(path, f"not a readable image ({exc}); {fix}") from exc


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode -> 8-bit RGB (see the module docstring for the rules)."""
    if img.mode.startswith("I") or img.mode == "F":
        return Image.fromarray(_to_uint8(np.asarray(img))).convert("RGB")
    if "A" in img.getbands() or "transparency" in img.info or img.mode in ("RGBa", "La"):
        rgba = img.convert("RGBA")
        black = Image.new("RGB", rgba.size, (0, 0, 0))
        black.paste(rgba, mask=rgba.getchannel("A"))
        return black
    return img.convert("RGB") if img.mode != "RGB" else img


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """Integer values (16/32-bit) are read as 0..65535; floats as 0..1 when they fit, else as 0..255."""
    if values.dtype.kind == "f":
        scale = 255.0 if float(np.nanmax(values, initial=0.0)) <= 1.0 else 1.0
        return np.clip(np.nan_to_num(values) * scale, 0, 255).round().astype(np.uint8)
    return np.clip(values.astype(np.float64) / 257.0, 0, 255).round().astype(np.uint8)


def _orientation(img: Image.Image) -> int:
    try:
        return int(img.getexif().get(_ORIENTATION_TAG, 1))
    except Exception:  # a corrupt EXIF block must not make the pixels unreadable
        return 1


def _upright(img: Image.Image, orientation: int) -> Image.Image:
    method = _UPRIGHT.get(orientation)
    return img.transpose(method) if method is not None else img


def read_size(path: str | Path) -> tuple[int, int]:
    """(width, height) of an image as displayed (EXIF orientation applied), read from the header only."""
    with _open(Path(path)) as img:
        w, h = img.size
        return (h, w) if _orientation(img) in _SWAPS_AXES else (w, h)


RESIZE_MODES = ("pil_draft", "pil", "opencv")


def load_rgb(path: str | Path, size: Size | None = None, resize: str = "pil_draft") -> Image.Image:
    """Read an image as upright 8-bit RGB.

    size: when given (a side or (width, height)), the image is resized to exactly that size, not keeping the
        aspect ratio (as the MIAD paper "zooms" images), with pixel-centre alignment in every mode:
    resize: "pil_draft": JPEGs are decoded directly at 1/2, 1/4 or 1/8 scale when that stays at least `size`
        (so an 8000x8000 photo never occupies full-resolution memory; the decoder's exact scale box keeps pixels
        aligned with masks), then antialiased PIL bilinear. "pil": full decode, antialiased PIL bilinear (what
        torchvision's Resize does to PIL images). "opencv": full decode, cv2.resize INTER_LINEAR, which does not
        antialias (albumentations' Resize default, anomalib v0.3.7; cv2.resize default, official DRAEM).
    """
    if resize not in RESIZE_MODES:
        raise DataError(f"resize mode {resize!r} is unknown; use one of {', '.join(RESIZE_MODES)}")
    target = _as_wh(size) if size is not None else None
    with _open(Path(path)) as img:
        orientation = _orientation(img)
        if target is None or resize != "pil_draft":
            img.load()
            upright = _upright(_to_rgb(img), orientation).copy()
            return upright if target is None else _resize_full(upright, target, resize)
        w, h = target
        raw_target = (h, w) if orientation in _SWAPS_AXES else (w, h)  # the target before un-rotating
        drafted = img.draft(img.mode, raw_target) if img.format == "JPEG" else None
        box = drafted[1] if drafted else None
        img.load()
        resized = _to_rgb(img).resize(raw_target, Image.Resampling.BILINEAR, box=box)
        return _upright(resized, orientation)


def _resize_full(rgb: Image.Image, target: tuple[int, int], resize: str) -> Image.Image:
    if resize == "pil":
        return rgb.resize(target, Image.Resampling.BILINEAR)
    import cv2  # here: OpenCV takes a while to import; only the opencv resize needs it

    return Image.fromarray(cv2.resize(np.asarray(rgb), target, interpolation=cv2.INTER_LINEAR))


def load_mask(path: str | Path, size: Size | None = None) -> np.ndarray:
    """Read a mask as a bool array [H, W], True where the mask is > 0 (any channel of an RGB mask).

    size: when given, the mask is resized with nearest neighbour to (width, height) first.
    """
    target = _as_wh(size) if size is not None else None
    with _open(Path(path)) as img:
        orientation = _orientation(img)
        img.load()
        if img.mode.startswith("I") or img.mode in ("F", "1", "L"):
            binary = np.asarray(img) > 0
        else:
            binary = np.asarray(_to_rgb(img)).max(axis=2) > 0
        mask = _upright(Image.fromarray(binary.astype(np.uint8) * 255), orientation)
        if target is not None:
            mask = mask.resize(target, Image.Resampling.NEAREST)
        return np.asarray(mask) > 0
