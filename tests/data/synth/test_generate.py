"""Whole trees: layout, manifest, determinism, atomic publication, and the data layer reading them."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from miad.data.defects import MIAD_DEFECTS, defect_group
from miad.data.synth import MANIFEST_COLUMNS, Strengths, generate
from miad.errors import ConfigError, DataError

TINY = {"n_train": 2, "n_test_good": 1, "n_test_defect": 3, "size": 48, "seed": 3}


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("synth") / "mini", **TINY)


def read_manifest(root: Path) -> list[dict]:
    with open(root / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_has_every_scenario_and_all_fourteen_defect_types(tree):
    for scenario, defects in MIAD_DEFECTS.items():
        base = tree / scenario
        assert sorted(p.name for p in (base / "train" / "good").iterdir()) == ["000.png", "001.png"]
        assert sorted(p.name for p in (base / "test" / "good").iterdir()) == ["000.png"]
        assert sorted(p.name for p in (base / "test").iterdir()) == sorted(("good", *defects))
        assert sorted(p.name for p in (base / "ground_truth").iterdir()) == sorted(defects)
    found = {(r["category"], r["defect_type"]) for r in read_manifest(tree) if r["label"] == "1"}
    assert len(found) == 14


def test_defect_images_are_spread_evenly_over_the_types(tmp_path):
    root = generate(tmp_path / "t", scenarios=["catenary_dropper"], n_train=1, n_test_good=0, n_test_defect=8, size=32)
    counts = {d: len(list((root / "catenary_dropper" / "test" / d).iterdir())) for d in ("looseness", "broken", "miss")}
    assert counts == {"looseness": 3, "broken": 3, "miss": 2}


def test_every_defect_image_has_a_nonempty_binary_mask_of_its_size_and_good_images_none(tree):
    for row in read_manifest(tree):
        image = np.asarray(Image.open(tree / row["path"]))
        assert image.shape == (48, 48, 3)
        if row["label"] == "0":
            assert row["defect_type"] == "good" and row["mask_path"] == "" and row["group"] == ""
            continue
        mask = np.asarray(Image.open(tree / row["mask_path"]))
        assert mask.shape == (48, 48) and set(np.unique(mask)) == {0, 255}
        assert row["mask_path"] == row["path"].replace("/test/", "/ground_truth/").replace(".png", "_mask.png")
        assert row["group"] == defect_group(row["category"], row["defect_type"])
    masks = list(tree.glob("*/ground_truth/*/*.png"))
    assert len(masks) == 7 * 3 and not list(tree.glob("*/ground_truth/good"))


def test_manifest_lists_every_image_once_with_factors_in_range(tree):
    rows = read_manifest(tree)
    assert tuple(rows[0]) == MANIFEST_COLUMNS
    on_disk = {p.relative_to(tree).as_posix() for p in tree.glob("*/*/*/*.png") if "ground_truth" not in p.parts}
    assert sorted(r["path"] for r in rows) == sorted(on_disk)
    assert len(rows) == 7 * (2 + 1 + 3)
    for r in rows:
        for factor in ("viewpoint", "background", "surface"):
            assert 0.0 <= float(r[factor]) <= 1.0
    assert {r["split"] for r in rows} == {"train", "test"}


def test_same_seed_gives_identical_bytes_whatever_the_worker_count(tmp_path, tree):
    # The tree fixture ran OpenCV multi-threaded in this process: forking workers must still not hang.
    threads = cv2.getNumThreads()
    again = generate(tmp_path / "again", workers=2, **TINY)
    assert files(again) == files(tree)
    assert cv2.getNumThreads() == threads  # the caller's OpenCV setting is restored
    other = generate(tmp_path / "other", **{**TINY, "seed": 4})
    assert files(other) != files(tree)


def test_smaller_sets_are_prefixes_of_larger_ones(tmp_path):
    small = generate(tmp_path / "s", scenarios=["wind_turbine"], n_train=1, n_test_good=1, n_test_defect=1, size=32)
    large = generate(tmp_path / "l", scenarios=["wind_turbine"], n_train=3, n_test_good=2, n_test_defect=2, size=32)
    for rel, data in files(small).items():
        if rel != "manifest.csv":
            assert (large / rel).read_bytes() == data


def test_strengths_set_the_range_of_the_manifest_factors(tmp_path):
    root = generate(
        tmp_path / "f",
        scenarios=["nut_and_bolt", "metal_welding"],
        n_train=8,
        n_test_good=0,
        n_test_defect=0,
        size=32,
        strengths=Strengths(viewpoint=0.5, background=0.0, surface=0.25),
    )
    rows = read_manifest(root)
    views = [float(r["viewpoint"]) for r in rows]
    assert all(0.0 <= v <= 0.5 for v in views) and len(set(views)) > 8
    assert all(float(r["background"]) == 0.0 for r in rows)
    assert all(0.0 <= float(r["surface"]) <= 0.25 for r in rows) and len({r["surface"] for r in rows}) > 8


def test_existing_foreign_folder_is_refused_and_an_earlier_output_replaced(tmp_path):
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(DataError, match="not an earlier `miad synth` output"):
        generate(foreign, scenarios=["wind_turbine"], n_train=1, n_test_good=0, n_test_defect=0, size=32)
    assert (foreign / "holiday.jpg").exists()
    out = generate(tmp_path / "out", scenarios=["wind_turbine"], n_train=2, n_test_good=0, n_test_defect=0, size=32)
    generate(out, scenarios=["witness_mark"], n_train=1, n_test_good=0, n_test_defect=0, size=32)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.csv", "witness_mark"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "photos"]  # no temporary folders left


def test_an_interrupted_generation_leaves_nothing_that_looks_complete(tmp_path, monkeypatch):
    import miad.data.synth.writer as writer

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(writer, "_write_manifest", crash)
    with pytest.raises(KeyboardInterrupt):
        generate(tmp_path / "out", scenarios=["wind_turbine"], n_train=2, n_test_good=0, n_test_defect=0, size=32)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scenarios": ["bridge"]}, "unknown scenario"),
        ({"n_train": 0}, "n_train must be an integer >= 1"),
        ({"size": 8}, "size must be an integer >= 32"),
    ],
)
def test_bad_parameters_fail_with_a_clear_message(tmp_path, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        generate(tmp_path / "x", **{"n_train": 1, "n_test_good": 0, "n_test_defect": 0, "size": 32, **kwargs})
    assert not (tmp_path / "x").exists()


def test_data_layer_indexes_and_checks_the_tree(tree):
    from miad.cli import main
    from miad.data.index import index_dataset

    samples = index_dataset(tree)
    assert len(samples) == 7 * 6
    assert {(s.category, s.defect_type) for s in samples if s.label} == {
        (c, d) for c, ds in MIAD_DEFECTS.items() for d in ds
    }
    assert all((s.mask is not None) == bool(s.label) for s in samples)
    assert main(["data", "check", str(tree)]) == 0
