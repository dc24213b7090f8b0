"""Shared fixtures: tiny image trees and the test-only reference detectors."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# The CLI's OpenMP wait policy (passive on a busy machine, brief spinning on an idle one); before torch loads.
from miad.openmp import set_wait_policy  # noqa: E402  (imports no torch)

set_wait_policy()

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
sys.path.insert(0, str(Path(__file__).parent))
import reference_methods  # noqa: E402,F401  (registers ref_mean and ref_ae)


def write_png(path: Path, array: np.ndarray) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def make_mvtec_tree(root: Path, category: str = "widget", n_train: int = 6, n_good: int = 2, n_bad: int = 2,
                    size: int = 32, seed: int = 0) -> Path:
    """<root>/<category>/{train/good,test/good,test/scratch,ground_truth/scratch}: smooth images, bright squares."""
    rng = np.random.default_rng(seed)
    base = (np.linspace(60, 160, size)[None, :, None] * np.ones((size, size, 3))).astype(np.uint8)

    def normal() -> np.ndarray:
        return np.clip(base + rng.integers(-5, 6, base.shape), 0, 255).astype(np.uint8)

    cat = root / category
    for i in range(n_train):
        write_png(cat / "train" / "good" / f"{i:03d}.png", normal())
    for i in range(n_good):
        write_png(cat / "test" / "good" / f"{i:03d}.png", normal())
    for i in range(n_bad):
        img, mask = normal(), np.zeros((size, size), np.uint8)
        y, x = rng.integers(2, size // 2, 2)
        img[y : y + size // 4, x : x + size // 4] = 255
        mask[y : y + size // 4, x : x + size // 4] = 255
        write_png(cat / "test" / "scratch" / f"{i:03d}.png", img)
        write_png(cat / "ground_truth" / "scratch" / f"{i:03d}_mask.png", mask)
    return root


@pytest.fixture
def tiny_tree(tmp_path: Path) -> Path:
    return make_mvtec_tree(tmp_path / "data")


@pytest.fixture
def tiny_images() -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return torch.rand(6, 3, 32, 32, generator=gen)


@pytest.fixture(scope="session")
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One SQLite MLflow store for the tests that set MLFLOW_TRACKING_URI (creating one takes seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
