"""Generic folder sets: ratio split, defect discovery, flat or mirrored mask folders."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from miad.data.folder import index_folder, split_normal
from miad.errors import ConfigError, DataError
from miad.types import GOOD


def test_discovery_split_and_masks(folder_root: Path) -> None:
    samples = index_folder(folder_root)
    counts = Counter((s.split, s.defect_type) for s in samples)
    assert counts == {("train", GOOD): 8, ("test", GOOD): 2, ("test", "dent"): 2, ("test", "scratch"): 2}
    assert {s.category for s in samples} == {"parts"}  # named after the root folder
    defects = [s for s in samples if s.label == 1]
    assert all(s.mask is not None and s.mask.stem == f"{s.image.stem}_mask" for s in defects)
    assert "masks" not in {s.defect_type for s in samples}


def test_split_is_deterministic_and_seeded(folder_root: Path) -> None:
    def test_good(seed: int) -> set[str]:
        return {
            s.image.name for s in index_folder(folder_root, seed=seed) if s.split == "test" and s.label == 0
        }

    assert test_good(0) == test_good(0)
    assert len({frozenset(test_good(seed)) for seed in range(6)}) > 1  # the seed matters
    train = {s.image.name for s in index_folder(folder_root) if s.split == "train"}
    assert not train & test_good(0) and len(train | test_good(0)) == 10


def test_split_does_not_depend_on_listing_order(tmp_path: Path) -> None:
    paths = [tmp_path / f"{i}.png" for i in range(7)]
    train_a, test_a = split_normal(paths, 0.3, seed=3)
    train_b, test_b = split_normal(list(reversed(paths)), 0.3, seed=3)
    assert set(test_a) == set(test_b) and len(test_a) == 2 and set(train_a) == set(train_b)


@pytest.mark.parametrize("ratio, n, expected_test", [(0.0, 5, 0), (0.2, 10, 2), (0.01, 5, 1), (0.9, 3, 2)])
def test_split_sizes(tmp_path: Path, ratio: float, n: int, expected_test: int) -> None:
    train, test = split_normal([tmp_path / f"{i}.png" for i in range(n)], ratio, seed=0)
    assert len(test) == expected_test and len(train) == n - expected_test


@pytest.mark.parametrize("ratio", [-0.1, 1.0, 1.5])
def test_bad_ratio(folder_root: Path, ratio: float) -> None:
    with pytest.raises(ConfigError, match=r"test_ratio must be in \[0, 1\)"):
        index_folder(folder_root, test_ratio=ratio)


def test_mirrored_mask_folder_with_plain_stem_names(folder_root: Path, trees) -> None:
    shutil.rmtree(folder_root / "masks")
    for defect in ("scratch", "dent"):
        for i in range(2):
            trees.save(folder_root / "gt" / defect / f"{defect}{i}.png", trees.square_mask())
    defects = [s for s in index_folder(folder_root) if s.label == 1]
    assert all(s.mask == folder_root / "gt" / s.defect_type / s.image.name for s in defects)


def test_explicit_dirs_without_root(folder_root: Path) -> None:
    samples = index_folder(
        None,
        normal_dir=folder_root / "good",
        defect_dirs=[folder_root / "scratch", folder_root / "dent"],
        mask_dir=folder_root / "masks",
        category="bench",
    )
    defects = [s for s in samples if s.label == 1]
    assert {s.defect_type for s in defects} == {"scratch", "dent"} and {s.category for s in samples} == {
        "bench"
    }
    assert all(s.mask is not None for s in defects)


def test_flat_mask_folder_reports_masks_of_other_defects(folder_root: Path) -> None:
    with pytest.raises(DataError, match=r"dent0_mask.png: mask without an image"):
        index_folder(folder_root, defect_dirs=["scratch"], mask_dir="masks")


def test_without_mask_folder_masks_are_none(folder_root: Path) -> None:
    shutil.rmtree(folder_root / "masks")
    assert all(s.mask is None for s in index_folder(folder_root))


def test_missing_mask_and_missing_folders(folder_root: Path) -> None:
    (folder_root / "masks" / "dent1_mask.png").unlink()
    with pytest.raises(DataError, match=r"dent1.png: no mask; expected .*masks/dent1_mask.png"):
        index_folder(folder_root)
    with pytest.raises(
        DataError, match=r"normal folder not found; sub-folders of .*: dent, good, masks, scratch"
    ):
        index_folder(folder_root, normal_dir="ok")
    with pytest.raises(DataError, match=r"nope: defect folder not found"):
        index_folder(folder_root, defect_dirs=["nope"])
    with pytest.raises(ConfigError, match="needs explicit defect_dirs"):
        index_folder(None, normal_dir=folder_root / "good")


def test_masks_of_normal_images_are_ignored_with_a_warning(folder_root: Path, trees) -> None:
    trees.save(folder_root / "masks" / "n00_mask.png", trees.square_mask(value=0))
    with pytest.warns(UserWarning, match=r"n00_mask.png: mask of a normal image, ignored"):
        index_folder(folder_root)


def test_normal_only_set_warns_and_empty_normal_folder_fails(tmp_path: Path, trees) -> None:
    for i in range(3):
        trees.save(tmp_path / "set" / "good" / f"{i}.png")
    with pytest.warns(UserWarning, match="no defect folders"):
        assert len(index_folder(tmp_path / "set")) == 3
    for p in (tmp_path / "set" / "good").iterdir():
        p.unlink()
    (tmp_path / "set" / "good" / ".DS_Store").write_bytes(b"x")
    with pytest.raises(DataError, match=r"good: no normal images"):
        index_folder(tmp_path / "set", defect_dirs=[])
