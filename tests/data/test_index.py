"""Format detection, the one indexing entry point, --data resolution and sample helpers."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from miad.data.index import categories_of, detect_format, index_dataset, resolve_data_root, split_samples
from miad.errors import ConfigError, DataError


def test_detect_format(mvtec_root: Path, folder_root: Path, tmp_path: Path, trees) -> None:
    assert detect_format(mvtec_root) == "mvtec"
    assert detect_format(mvtec_root / "bottle") == "mvtec"  # a single category
    assert detect_format(folder_root) == "folder"
    with pytest.raises(DataError, match="does not exist"):
        detect_format(tmp_path / "absent")


def test_index_dataset_auto_matches_the_indexers(mvtec_root: Path, folder_root: Path) -> None:
    assert {s.category for s in index_dataset(mvtec_root)} == {"bottle", "screw"}
    assert {s.category for s in index_dataset(folder_root)} == {"parts"}
    assert index_dataset(folder_root, test_ratio=0.5) != index_dataset(folder_root)
    assert {s.category for s in index_dataset(mvtec_root, categories=["bottle"])} == {"bottle"}


def test_folder_categories_filter(folder_root: Path) -> None:
    assert len(index_dataset(folder_root, categories=["parts"])) == 14
    with pytest.raises(DataError, match="unknown category other; available: parts"):
        index_dataset(folder_root, categories=["other"])


def test_miad_format_warns_about_non_miad_names(mvtec_root: Path) -> None:
    with pytest.warns(
        UserWarning, match=r"unknown categories bottle, screw \(known expected names: electrical"
    ):
        samples = index_dataset(mvtec_root, format="miad")
    assert len(samples) == 16  # warned, still indexed


def test_bad_format_and_misplaced_folder_options(mvtec_root: Path) -> None:
    with pytest.raises(ConfigError, match="unknown data format 'coco'; valid: auto, miad, mvtec, folder"):
        index_dataset(mvtec_root, format="coco")
    with pytest.raises(ConfigError, match="test_ratio only apply to --format folder"):
        index_dataset(mvtec_root, test_ratio=0.3)


def test_resolve_data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_data_root(str(tmp_path)) == tmp_path
    with pytest.raises(DataError, match="does not exist; pass an existing folder, or 'builtin'"):
        resolve_data_root(str(tmp_path / "nope"))
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(DataError, match="is a file"):
        resolve_data_root(str(tmp_path / "file.txt"))
    calls = []
    fake = types.ModuleType("miad.data.builtin")
    fake.builtin_root = lambda refresh=False: calls.append(refresh) or tmp_path / "cache"
    monkeypatch.setitem(sys.modules, "miad.data.builtin", fake)
    assert resolve_data_root("builtin") == tmp_path / "cache" and calls == [False]


def test_split_samples_and_categories_of(mvtec_root: Path) -> None:
    samples = index_dataset(mvtec_root)
    train, test = split_samples(samples, "train"), split_samples(samples, "test")
    assert len(train) + len(test) == len(samples) and {s.split for s in train} == {"train"}
    assert all(s.label == 0 for s in train)
    assert categories_of(samples) == ["bottle", "screw"]
    with pytest.raises(ConfigError, match="unknown split 'val'"):
        split_samples(samples, "val")
