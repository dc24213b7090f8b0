"""Reading images and masks: every mode becomes RGB, broken files give one clear DataError."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from miad.data.io import (
    IMAGE_EXTENSIONS,
    UnreadableFileError,
    is_image_file,
    list_images,
    load_mask,
    load_rgb,
    read_size,
)
from miad.errors import DataError


@pytest.mark.parametrize(
    "name, expected",
    [
        ("a.png", True),
        ("a.PNG", True),
        ("a.JpG", True),
        ("a.jpeg", True),
        ("a.BMP", True),
        ("a.tif", True),
        ("a.TIFF", True),
        (".DS_Store", False),
        ("Thumbs.db", False),
        ("._a.png", False),  # macOS resource fork
        (".hidden.png", False),
        ("notes.txt", False),
        ("a.png.part", False),
        ("archive.zip", False),
    ],
)
def test_is_image_file(name: str, expected: bool) -> None:
    assert is_image_file(Path("/x") / name) is expected


def test_extensions_cover_the_issue_list() -> None:
    assert set(IMAGE_EXTENSIONS) == {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


def test_list_images_skips_clutter_and_folders(tmp_path: Path, trees) -> None:
    for name in ("b.png", "a.JPG", "c.tif"):
        trees.save(tmp_path / name)
    for junk in (".DS_Store", "Thumbs.db", "readme.txt", "._b.png"):
        (tmp_path / junk).write_bytes(b"junk")
    (tmp_path / "sub.png").mkdir()  # a folder with an image-like name
    assert [p.name for p in list_images(tmp_path)] == ["a.JPG", "b.png", "c.tif"]


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".tif", ".JPEG", ".TiFf"])
def test_rgb_round_trip_for_every_extension(tmp_path: Path, trees, ext: str) -> None:
    path = trees.save(tmp_path / f"img{ext}", value=100)
    img = load_rgb(path)
    assert img.mode == "RGB" and img.size == (trees.SIDE, trees.SIDE)
    assert np.abs(np.asarray(img, dtype=int) - 100).max() <= 2  # jpeg rounding


def test_grayscale_becomes_three_equal_channels(tmp_path: Path) -> None:
    path = tmp_path / "g.png"
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(path)
    rgb = np.asarray(load_rgb(path))
    assert rgb.shape == (8, 8, 3)
    assert (rgb[..., 0] == np.arange(64).reshape(8, 8)).all() and (rgb[..., 0] == rgb[..., 2]).all()


def test_rgba_is_composited_on_black(tmp_path: Path) -> None:
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., :3] = (200, 100, 50)
    rgba[:2, :, 3] = 255  # top half opaque, bottom half fully transparent
    path = tmp_path / "a.png"
    Image.fromarray(rgba, "RGBA").save(path)
    rgb = np.asarray(load_rgb(path))
    assert (rgb[:2] == (200, 100, 50)).all()
    assert (rgb[2:] == 0).all()


def test_palette_and_palette_transparency(tmp_path: Path) -> None:
    pal = Image.new("P", (4, 4), 1)
    pal.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    pal.save(tmp_path / "p.png")
    assert (np.asarray(load_rgb(tmp_path / "p.png")) == (10, 20, 30)).all()
    pal.save(tmp_path / "pt.png", transparency=1)  # palette index 1 fully transparent -> black
    assert (np.asarray(load_rgb(tmp_path / "pt.png")) == 0).all()


def test_sixteen_bit_is_scaled_not_truncated(tmp_path: Path) -> None:
    values = np.array([[0, 257 * 100], [65535, 257 * 10]], np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode.startswith("I")
    rgb = np.asarray(load_rgb(path))
    assert rgb[..., 0].tolist() == [[0, 100], [255, 10]]


def test_exif_orientation_is_honoured(tmp_path: Path) -> None:
    array = np.zeros((4, 8, 3), np.uint8)  # 8 wide, 4 high; a bright column on the left
    array[:, 0] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: shown rotated 90 degrees clockwise
    path = tmp_path / "r.png"
    Image.fromarray(array).save(path, exif=exif)
    upright = np.asarray(load_rgb(path))
    assert upright.shape == (8, 4, 3)
    assert (upright[0, :, 0] == 255).all() and (upright[1:, :, 0] == 0).all()  # left column -> top row
    assert read_size(path) == (4, 8)
    resized = np.asarray(load_rgb(path, (2, 4)))  # the resize path honours it too
    assert resized.shape == (4, 2, 3) and resized[0, :, 0].min() > resized[-1, :, 0].max()


def test_content_not_extension_decides(tmp_path: Path, trees) -> None:
    png_bytes = trees.save(tmp_path / "real.png", value=77).read_bytes()
    (tmp_path / "named.jpg").write_bytes(png_bytes)
    assert (np.asarray(load_rgb(tmp_path / "named.jpg")) == 77).all()


def test_one_pixel_image(tmp_path: Path) -> None:
    path = tmp_path / "one.png"
    Image.new("RGB", (1, 1), (9, 8, 7)).save(path)
    assert np.asarray(load_rgb(path, 5)).shape == (5, 5, 3)


def _truncated(folder: Path, name: str, trees) -> Path:
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)  # incompressible: cut mid-pixels
    path = trees.save(folder / name, noise)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda d, t: _write(d / "empty.png", b""), "empty (0 bytes)"),
        (lambda d, t: _truncated(d, "cut.png", t), "not a readable image"),
        (lambda d, t: _truncated(d, "cut.jpg", t), "not a readable image"),
        (lambda d, t: _write(d / "text.png", b"hello, not an image"), "not a readable image"),
        (lambda d, t: d / "missing.png", "file not found"),
    ],
    ids=["zero-byte", "truncated-png", "truncated-jpeg", "not-an-image", "missing"],
)
def test_broken_files_give_a_data_error_naming_the_file(tmp_path: Path, trees, make, words: str) -> None:
    path = make(tmp_path, trees)
    for read in (load_rgb, lambda p: load_rgb(p, 8), load_mask):
        with pytest.raises(DataError) as info:
            read(path)
        assert str(path) in str(info.value) and words in str(info.value)
        assert "replace or delete" in str(info.value)  # the fix
        assert isinstance(info.value, UnreadableFileError) and info.value.path == path


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_large_jpeg_is_decoded_at_reduced_scale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "big.jpg"
    Image.new("RGB", (2048, 1536), (30, 60, 90)).save(path, quality=90)
    decoded: list[tuple[int, int]] = []
    original_load = ImageFile.ImageFile.load

    def spy(self):  # records the size the decoder actually produces
        decoded.append(self.size)
        return original_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    img = load_rgb(path, 64)
    assert img.size == (64, 64)
    assert decoded and max(decoded) == (256, 192)  # 1/8 scale: never the full 2048x1536
    assert np.abs(np.asarray(img, dtype=int) - (30, 60, 90)).max() <= 3


@pytest.mark.parametrize("value", [1, 255])
def test_mask_binarisation_of_0_1_and_0_255(tmp_path: Path, trees, value: int) -> None:
    path = trees.save(tmp_path / "m.png", trees.square_mask(value=value))
    mask = load_mask(path)
    assert mask.dtype == bool and mask.shape == (trees.SIDE, trees.SIDE)
    assert (mask == (trees.square_mask() > 0)).all()


def test_rgb_and_sixteen_bit_masks(tmp_path: Path) -> None:
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[0, 0, 2] = 1  # only the blue channel set
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    assert load_mask(tmp_path / "rgb.png").sum() == 1 and load_mask(tmp_path / "rgb.png")[0, 0]
    deep = np.zeros((4, 4), np.uint16)
    deep[1, 1] = 1  # 1/65535 must still count as defect
    Image.fromarray(deep).save(tmp_path / "deep.png")
    assert load_mask(tmp_path / "deep.png").sum() == 1


def test_mask_resize_is_nearest(tmp_path: Path, trees) -> None:
    path = trees.save(tmp_path / "m.png", trees.square_mask(top=4, left=4, side=8))
    small = load_mask(path, 4)
    assert small.tolist() == [
        [False] * 4,
        [False, True, True, False],
        [False, True, True, False],
        [False] * 4,
    ]


def test_big_images_raise_no_decompression_bomb_warning(tmp_path, monkeypatch):
    """MIAD's frames are large: PIL's warning for images above MAX_IMAGE_PIXELS is noise (it warns in
    Image.open itself); images above twice the limit are still refused with one line."""
    import warnings

    from PIL import Image

    from miad.data.io import load_rgb

    path = tmp_path / "big.png"
    Image.new("RGB", (40, 40), (10, 20, 30)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 1,600 pixels: above the limit, below twice it
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_rgb(path, 16).size == (16, 16)
