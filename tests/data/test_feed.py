"""Training batches from the decoded-image cache or from loader workers: the same weights, whichever way."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from miad.data import cache as cache_mod
from miad.data import feed
from miad.data.dataset import ImageDataset
from miad.data.feed import ImageFeed, resolve_workers
from miad.errors import ConfigError
from miad.registry import create, get_method
from miad.types import Sample


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("MIAD_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(cache_mod, "_warned", set())
    return tmp_path / "cache" / "images"


def _samples(folder: Path, n: int = 10) -> list[Sample]:
    """Normal 320x240 JPEGs (decoded in draft mode at the presets' sides, as MIAD frames are)."""
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True, exist_ok=True)
    ramp = np.linspace(40, 200, 320)[None, :, None] * np.ones((240, 320, 3))
    out = []
    for i in range(n):
        path = folder / f"{i:03d}.jpg"
        Image.fromarray(np.clip(ramp + rng.normal(0, 12, ramp.shape), 0, 255).astype(np.uint8)).save(path)
        out.append(Sample(image=path, mask=None, label=0, category="widget", split="train", defect_type="good"))
    return out


def _fit(method: str, samples, **options) -> dict[str, torch.Tensor]:
    smoke = {**get_method(method).SMOKE, "epochs": 2, "cache_features": False}  # else that cache has precedence
    det = create(method, "quick", **smoke).fit(samples, device="cpu", progress=False, **options)
    return det.model.state_dict()


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_training_with_the_cache_gives_the_same_weights_as_without(tmp_path, cache_dir, monkeypatch):
    """DRAEM: on-the-fly rotation and anomaly synthesis run on the cached pixels, seeded as before."""
    samples = _samples(tmp_path / "img")
    decoded = _fit("draem", samples, image_cache=False)
    calls = []
    real = cache_mod.DecodeDataset.__getitem__
    monkeypatch.setattr(cache_mod.DecodeDataset, "__getitem__", lambda self, i: calls.append(i) or real(self, i))
    _assert_same(decoded, _fit("draem", samples))  # in memory
    assert sorted(calls) == sorted([*range(9), 0])  # each image decoded once for both epochs (9 trained, 1 held out)
    monkeypatch.setenv("MIAD_IMAGE_CACHE_MEMORY", "1")  # a budget too small for one batch: a mapped file
    _assert_same(decoded, _fit("draem", samples))
    assert len(list(cache_dir.glob("*.u8"))) == 2  # the training images and the held-out ones
    monkeypatch.setenv("MIAD_IMAGE_CACHE", "off")
    _assert_same(decoded, _fit("draem", samples))


def test_an_unwritable_cache_trains_the_same_by_decoding(tmp_path, cache_dir, monkeypatch):
    samples = _samples(tmp_path / "img", n=6)
    monkeypatch.setenv("MIAD_IMAGE_CACHE_MEMORY", "0")
    (tmp_path / "cache").write_text("a file where the cache folder should be")
    with pytest.warns(UserWarning, match="cannot write the decoded-image cache") as record:
        weights = _fit("unet_ae", samples)
    assert len(record) == 1  # one warning, though the training and held-out images both wanted a file
    _assert_same(weights, _fit("unet_ae", samples, image_cache=False))


def test_zero_and_two_workers_give_the_same_weights(tmp_path, cache_dir):
    samples = _samples(tmp_path / "img")
    _assert_same(_fit("unet_ae", samples, image_cache=False, num_workers=0),
                 _fit("unet_ae", samples, image_cache=False, num_workers=2))  # persistent over both epochs


@pytest.mark.parametrize("crop", [None, 20])
def test_feed_batches_normalised_on_the_device_equal_the_dataset_items(tmp_path, cache_dir, crop):
    samples = _samples(tmp_path / "img", n=3)
    ds = ImageDataset(samples, 24, "imagenet", center_crop=crop, resize="opencv")
    for cache in (True, False):
        f = ImageFeed(ds, [2, 0, 1], cache=cache, workers=0, device=torch.device("cpu"), batch_size=2)
        (batch,) = list(f.batches([torch.tensor([1, 2])]))  # positions into the feed: samples 0 and 1
        assert batch.dtype == torch.uint8
        expected = torch.stack([ds[0]["image"], ds[1]["image"]])
        assert torch.equal(f.to_input(batch), expected)


def test_auto_workers_follow_the_usable_cores(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(6)), raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert resolve_workers("auto", 10_000) == 6
    assert resolve_workers("auto", feed.AUTO_MIN_IMAGES - 1) == 0  # starting workers costs more than decoding
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "3")  # torchrun: the cores are shared by the node's processes
    assert resolve_workers("auto", 10_000) == 2
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert resolve_workers("auto", 10_000) == 0 and resolve_workers(3) == 3
    with pytest.raises(ConfigError, match="num_workers must be 'auto' or an integer"):
        resolve_workers(-1)
