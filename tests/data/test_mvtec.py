"""MVTec-like indexing: layout rules, mask pairing by stem, every bad case named with its file and fix."""

from __future__ import annotations

import os
import shutil
import warnings
from collections import Counter
from pathlib import Path

import pytest

from miad.data.mvtec import index_mvtec
from miad.errors import DataError
from miad.types import GOOD


def test_clean_tree_counts_labels_and_order(mvtec_root: Path) -> None:
    before = _snapshot(mvtec_root)
    samples = index_mvtec(mvtec_root)
    counts = Counter((s.category, s.split, s.defect_type) for s in samples)
    assert counts == {
        ("bottle", "train", GOOD): 3,
        ("bottle", "test", GOOD): 2,
        ("bottle", "test", "broken_large"): 2,
        ("bottle", "test", "contamination"): 2,
        ("screw", "train", GOOD): 3,
        ("screw", "test", GOOD): 2,
        ("screw", "test", "scratch_head"): 2,
    }
    assert all((s.label == 1) == (s.defect_type != GOOD) for s in samples)
    assert all((s.mask is not None) == (s.label == 1) for s in samples)
    assert samples == index_mvtec(mvtec_root)  # deterministic
    assert [s.split for s in samples if s.category == "bottle"][:3] == ["train"] * 3
    assert _snapshot(mvtec_root) == before  # nothing written into the tree


def _snapshot(root: Path) -> list[tuple[str, int, int]]:
    return sorted(
        (str(p.relative_to(root)), p.lstat().st_size, p.lstat().st_mtime_ns) for p in root.rglob("*")
    )


def test_masks_are_paired_by_stem_not_by_order(tmp_path: Path, trees) -> None:
    cat = trees.make_category(tmp_path, "widget", n_bad=0)
    names = ["b", "a10", "a2"]
    for name in names:
        trees.save(cat / "test" / "crack" / f"{name}.png")
    # mask names sort differently from the image names; one uses the plain <stem>.* form and another extension
    trees.save(cat / "ground_truth" / "crack" / "b_mask.png", trees.square_mask())
    trees.save(cat / "ground_truth" / "crack" / "a10.bmp", trees.square_mask())
    trees.save(cat / "ground_truth" / "crack" / "a2_mask.TIF", trees.square_mask())
    defects = [s for s in index_mvtec(tmp_path) if s.label == 1]
    assert {s.image.stem: s.mask.name for s in defects} == {
        "b": "b_mask.png",
        "a10": "a10.bmp",
        "a2": "a2_mask.TIF",
    }


def test_single_category_root(tmp_path: Path, trees) -> None:
    cat = trees.make_category(tmp_path, "wind_turbine")
    samples = index_mvtec(cat)
    assert {s.category for s in samples} == {"wind_turbine"} and len(samples) == 7


def test_categories_filter_and_unknown_request(mvtec_root: Path) -> None:
    assert {s.category for s in index_mvtec(mvtec_root, ["screw"])} == {"screw"}
    with pytest.raises(DataError, match=r"unknown category bolt; available: bottle, screw"):
        index_mvtec(mvtec_root, ["bolt"])


def test_unknown_name_in_a_miad_looking_tree_warns_listing_known(tmp_path: Path, trees) -> None:
    trees.make_category(tmp_path, "wind_turbine")
    trees.make_category(tmp_path, "wind_turbin")  # a typo
    with pytest.warns(
        UserWarning, match=r"unknown category wind_turbin .*known MIAD names: electrical_insulator"
    ):
        samples = index_mvtec(tmp_path)
    assert {s.category for s in samples} == {"wind_turbine", "wind_turbin"}  # warned, never rejected


def test_user_category_names_do_not_warn(tmp_path: Path, trees) -> None:
    trees.make_category(tmp_path, "my_gears")
    trees.make_category(tmp_path, "my_pumps")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(index_mvtec(tmp_path)) == 14


def test_expected_names_warn_even_without_overlap(tmp_path: Path, trees) -> None:
    trees.make_category(tmp_path, "gears")
    with pytest.warns(UserWarning, match="unknown category gears"):
        index_mvtec(tmp_path, expected_categories=("wind_turbine",))


def test_defect_image_without_mask_names_expected_mask(tmp_path: Path, trees) -> None:
    cat = trees.make_category(tmp_path, "widget")
    (cat / "ground_truth" / "crack" / "001_mask.png").unlink()
    with pytest.raises(DataError) as info:
        index_mvtec(tmp_path)
    message = str(info.value)
    assert str(cat / "test" / "crack" / "001.png") in message
    assert str(cat / "ground_truth" / "crack" / "001_mask.png") in message and "add the mask" in message


def test_mask_without_image_names_the_mask(tmp_path: Path, trees) -> None:
    cat = trees.make_category(tmp_path, "widget")
    stray = trees.save(cat / "ground_truth" / "crack" / "007_mask.png", trees.square_mask())
    with pytest.raises(DataError, match=r"mask without an image.*remove the mask") as info:
        index_mvtec(tmp_path)
    assert str(stray) in str(info.value)


def test_mask_folder_without_defect_folder(tmp_path: Path, trees) -> None:
    cat = trees.make_category(tmp_path, "widget")
    trees.save(cat / "ground_truth" / "dent" / "000_mask.png", trees.square_mask())
    with pytest.raises(DataError, match=r"ground_truth/dent: masks without images"):
        index_mvtec(tmp_path)


def test_defect_without_any_ground_truth_folder_has_no_masks(tmp_path: Path, trees) -> None:
    cat = trees.make_category(tmp_path, "widget")
    shutil.rmtree(cat / "ground_truth" / "crack")
    defects = [s for s in index_mvtec(tmp_path) if s.label == 1]
    assert len(defects) == 2 and all(s.mask is None for s in defects)


def test_two_masks_for_one_image_is_ambiguous(tmp_path: Path, trees) -> None:
    cat = trees.make_category(tmp_path, "widget")
    trees.save(cat / "ground_truth" / "crack" / "000.png", trees.square_mask())
    with pytest.raises(DataError, match=r"000.png: several masks match this image \(000_mask.png, 000.png"):
        index_mvtec(tmp_path)


@pytest.mark.parametrize("state", ["missing", "empty", "only-clutter"])
def test_missing_or_empty_train_good(tmp_path: Path, trees, state: str) -> None:
    cat = trees.make_category(tmp_path, "widget")
    good = cat / "train" / "good"
    shutil.rmtree(good)
    if state != "missing":
        good.mkdir()
    if state == "only-clutter":
        (good / ".DS_Store").write_bytes(b"x")
        (good / "Thumbs.db").write_bytes(b"x")
    with pytest.raises(DataError) as info:
        index_mvtec(tmp_path)
    expected = "good: is missing" if state == "missing" else "good: is empty"
    assert str(good) in str(info.value) and expected in str(info.value)


def test_missing_test_folders(tmp_path: Path, trees) -> None:
    cat = trees.make_category(tmp_path, "widget")
    shutil.rmtree(cat / "test" / "good")
    with pytest.raises(DataError, match=r"test/good: no normal test images"):
        index_mvtec(tmp_path)
    shutil.rmtree(cat / "test")
    with pytest.raises(DataError, match=r"widget/test: missing; create test/good"):
        index_mvtec(tmp_path)


def test_root_without_categories(tmp_path: Path, trees) -> None:
    trees.save(tmp_path / "loose.png")
    with pytest.raises(DataError, match=r"no MVTec-like category found.*--format folder"):
        index_mvtec(tmp_path)
    with pytest.raises(DataError, match=r"does not exist"):
        index_mvtec(tmp_path / "nope")


def test_clutter_is_ignored(tmp_path: Path, trees) -> None:
    cat = trees.make_category(tmp_path, "widget")
    for folder in (cat / "train" / "good", cat / "test" / "crack", cat / "ground_truth" / "crack", cat):
        (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
        (folder / "Thumbs.db").write_bytes(b"x")
        (folder / "._000.png").write_bytes(b"AppleDouble")
    (tmp_path / ".git").mkdir()
    assert len(index_mvtec(tmp_path)) == 7


def test_mixed_case_extensions(tmp_path: Path, trees) -> None:
    cat = trees.make_category(tmp_path, "widget", ext=".PNG")
    trees.save(cat / "train" / "good" / "x.JpEg")
    trees.save(cat / "train" / "good" / "y.Tiff")
    assert len([s for s in index_mvtec(tmp_path) if s.split == "train"]) == 5


def test_spaces_and_non_ascii_paths(tmp_path: Path, trees) -> None:
    root = tmp_path / "my data ü 数据"
    cat = trees.make_category(root, "prüfteil ñ", n_bad=0)
    trees.save(cat / "test" / "riss 1" / "bild é.png")
    trees.save(cat / "ground_truth" / "riss 1" / "bild é_mask.png", trees.square_mask())
    samples = index_mvtec(root)
    defect = [s for s in samples if s.label == 1]
    assert (
        len(samples) == 6 and defect[0].mask.name == "bild é_mask.png" and defect[0].category == "prüfteil ñ"
    )


def test_decomposed_unicode_names_still_pair(tmp_path: Path, trees) -> None:
    cat = trees.make_category(tmp_path, "widget", n_bad=0)
    trees.save(cat / "test" / "crack" / "caf\u00e9.png")  # composed é
    trees.save(cat / "ground_truth" / "crack" / "cafe\u0301_mask.png", trees.square_mask())  # e + accent
    assert [s.mask is not None for s in index_mvtec(tmp_path) if s.label == 1] == [True]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks on this platform")
def test_symlinks_are_followed(tmp_path: Path, trees) -> None:
    real = trees.make_category(tmp_path / "store", "widget")
    root = tmp_path / "linked"
    root.mkdir()
    (root / "widget").symlink_to(real, target_is_directory=True)
    extra = trees.save(tmp_path / "elsewhere" / "extra.png")
    (real / "train" / "good" / "linked.png").symlink_to(extra)
    samples = index_mvtec(root)
    assert len(samples) == 8 and all(str(s.image).startswith(str(root)) for s in samples)


def test_train_defect_folders_and_good_masks_are_warned(tmp_path: Path, trees) -> None:
    cat = trees.make_category(tmp_path, "widget")
    trees.save(cat / "train" / "crack" / "000.png")
    trees.save(cat / "ground_truth" / "good" / "000_mask.png", trees.square_mask(value=0))
    with pytest.warns(UserWarning) as record:
        samples = index_mvtec(tmp_path)
    messages = " | ".join(str(r.message) for r in record)
    assert "train/crack: ignored" in messages and "ground_truth/good: ignored" in messages
    assert len(samples) == 7


def test_collect_mode_reports_everything_without_raising(tmp_path: Path, trees) -> None:
    cat = trees.make_category(tmp_path, "widget")
    (cat / "ground_truth" / "crack" / "000_mask.png").unlink()
    trees.save(cat / "ground_truth" / "crack" / "009_mask.png", trees.square_mask())
    shutil.rmtree(cat / "test" / "good")
    problems: list = []
    samples = index_mvtec(tmp_path, problems=problems)
    assert len(samples) == 5  # 3 train + 2 defects (one without its mask)
    text = "\n".join(map(str, problems))
    assert "000.png: no mask" in text and "009_mask.png: mask without an image" in text
    assert "test/good: no normal test images" in text and len(problems) == 3
