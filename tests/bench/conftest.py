"""A tiny two-category tree (with a factor manifest) and one small benchmark over it, shared by the bench tests."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest

sys.path.append(str(Path(__file__).parent))  # bench_child (the resume test's settings); after tests/ (conftest)

CATEGORIES = ("gadget", "widget")


def make_bench_tree(root: Path) -> Path:
    """Two MVTec-like categories of 32 px images plus a manifest.csv with per-image factor values.

    viewpoint and surface vary over the test images so that each tercile holds one good and one defective
    image; background is constant (a controlled factor, which the factor table must skip).
    """
    from conftest import make_mvtec_tree

    for seed, category in enumerate(CATEGORIES):
        make_mvtec_tree(root, category, n_train=6, n_good=3, n_bad=3, seed=seed)
    rows = []
    for category in CATEGORIES:
        for label, folder in ((0, "good"), (1, "scratch")):
            for i in range(3):
                rows.append({"path": f"{category}/test/{folder}/{i:03d}.png", "category": category,
                             "viewpoint": 0.1 + 0.3 * i + 0.01 * label, "background": 0.0,
                             "surface": 0.9 - 0.3 * i - 0.01 * label})
    with open(root / "manifest.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


@pytest.fixture(scope="session")
def bench_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_bench_tree(tmp_path_factory.mktemp("bench") / "data")


@pytest.fixture(scope="session")
def bench_run(bench_tree: Path, tmp_path_factory: pytest.TempPathFactory):
    """One finished benchmark: ref_ae (6 epochs) and ref_mean on both categories, seed 0, exactly as
    bench_child.py runs it (the uninterrupted reference of the resume test)."""
    from bench_child import METHODS, OVERRIDES

    from miad.bench import run_benchmark

    out = tmp_path_factory.mktemp("bench") / "out"
    return run_benchmark(str(bench_tree), methods=METHODS, out=out, overrides=OVERRIDES, progress=False)
