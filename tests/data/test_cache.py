"""The decoded-image cache: exact pixels, keyed by the data, safe to fill, and a clean fallback when it cannot be."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from miad.data import cache as cache_mod
from miad.data import cache_store
from miad.data.cache import DecodedImages, cache_key
from miad.data.io import load_rgb
from miad.errors import DataError


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("MIAD_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(cache_mod, "_warned", set())
    return tmp_path / "cache" / "images"


def _jpegs(folder: Path, n: int = 5, seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"{i:03d}.jpg"
        Image.fromarray(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)).save(path, quality=90)
        paths.append(path)
    return paths


@pytest.mark.parametrize("resize", ["pil_draft", "opencv"])
@pytest.mark.parametrize("budget", [None, 0], ids=["memory", "file"])
def test_cached_pixels_are_exactly_the_decoded_ones(tmp_path, cache_dir, resize, budget):
    files = _jpegs(tmp_path / "img")
    images = DecodedImages.open(files, 24, resize, budget=budget)
    images.fill()
    assert images.on_disk == (budget == 0) and images.complete
    batch = images.batch([3, 0, 3])  # uint8 [3,3,S,S], in the order asked
    for row, i in zip(batch, [3, 0, 3]):
        expected = np.asarray(load_rgb(files[i], 24, resize)).transpose(2, 0, 1)
        assert row.dtype == torch.uint8 and np.array_equal(row.numpy(), expected)
    if budget == 0:  # a finished file is an entry, reused by the next open without decoding
        assert [e.key for e in cache_store.list_entries()] == [cache_key(files, 24, resize)]
        assert DecodedImages.open(files, 24, resize, budget=0).complete
        assert not list(cache_dir.glob(".*.tmp"))


def test_a_changed_data_set_is_decoded_again(tmp_path, cache_dir):
    files = _jpegs(tmp_path / "img")
    DecodedImages.open(files, 16, "pil", budget=0).fill()
    Image.fromarray(np.zeros((60, 80, 3), np.uint8)).save(files[2])  # replaced under the cached run
    os.utime(files[2], ns=(time.time_ns(), time.time_ns() + 10**9))  # even within the mtime resolution
    again = DecodedImages.open(files, 16, "pil", budget=0)
    assert not again.filled.any()  # another key: nothing is served stale
    again.fill()
    assert int(again.batch([2]).max()) == 0
    assert len(cache_store.list_entries()) == 2


def test_the_key_covers_the_side_the_resize_mode_and_the_order(tmp_path):
    files = _jpegs(tmp_path / "img", n=2)
    keys = {cache_key(files, 16, "pil"), cache_key(files, 17, "pil"), cache_key(files, 16, "opencv"),
            cache_key(files[::-1], 16, "pil")}
    assert len(keys) == 4


@pytest.mark.parametrize("workers", [0, 1])
def test_a_corrupt_image_met_while_filling_is_one_line_naming_the_file(tmp_path, cache_dir, workers):
    files = _jpegs(tmp_path / "img", n=3)
    files[1].write_bytes(b"not a jpeg")
    images = DecodedImages.open(files, 16, "pil_draft", budget=0)
    with pytest.raises(DataError) as err:
        images.fill(num_workers=workers, batch_size=2)
    assert str(files[1]) in str(err.value) and "\n" not in str(err.value)
    assert not list(cache_dir.glob(".*.tmp"))  # no half-written entry
    assert cache_store.list_entries() == []


@pytest.mark.parametrize("failure", ["read-only", "full"])
def test_an_unwritable_cache_folder_falls_back_with_one_warning(tmp_path, cache_dir, monkeypatch, failure):
    files = _jpegs(tmp_path / "img", n=2)
    if failure == "read-only":  # tests run as root, where chmod does not stop writes: fail the open instead
        real_open = os.open

        def read_only(path, *args, **kwargs):
            if str(path).startswith(str(cache_dir)):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
            return real_open(path, *args, **kwargs)

        monkeypatch.setattr(os, "open", read_only)
    else:
        def full(fd, offset, length):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(os, "posix_fallocate", full)
    with pytest.warns(UserWarning, match="decoding the images every epoch") as record:
        assert DecodedImages.open(files, 16, "pil", budget=0) is None
        assert DecodedImages.open(files, 16, "pil", budget=0) is None
    assert len(record) == 1
    assert not list(cache_dir.glob(".*.tmp"))


def test_the_size_limit_evicts_the_least_recently_used(tmp_path, cache_dir, monkeypatch):
    sets = [_jpegs(tmp_path / f"img{k}", n=2, seed=k) for k in range(3)]
    one = 2 * 3 * 16 * 16
    monkeypatch.setenv("MIAD_IMAGE_CACHE_LIMIT", str(2 * one))  # room for two entries
    for k, files in enumerate(sets[:2]):
        DecodedImages.open(files, 16, "pil", budget=0).fill()
        os.utime(cache_store.meta_path(cache_dir / f"{cache_key(files, 16, 'pil')}.u8"), (k + 1, k + 1))
    DecodedImages.open(sets[0], 16, "pil", budget=0)  # used again: now the second is the oldest
    DecodedImages.open(sets[2], 16, "pil", budget=0).fill()
    keys = {e.key for e in cache_store.list_entries()}
    assert keys == {cache_key(sets[0], 16, "pil"), cache_key(sets[2], 16, "pil")}


def test_concurrent_fills_of_one_entry_end_in_one_complete_entry(tmp_path, cache_dir):
    files = _jpegs(tmp_path / "img", n=3)
    a = DecodedImages.open(files, 16, "pil", budget=0)
    b = DecodedImages.open(files, 16, "pil", budget=0)  # another process, before the first finished
    assert a.temp != b.temp
    b.fill()
    a.fill()
    assert len(cache_store.list_entries()) == 1 and not list(cache_dir.glob(".*.tmp"))
    assert np.array_equal(a.batch([0, 1, 2]).numpy(), b.batch([0, 1, 2]).numpy())


def test_sizes_in_the_settings_are_parsed_and_bad_ones_named(monkeypatch):
    assert cache_store.parse_bytes("8GB", "X") == 8 * 10**9 and cache_store.parse_bytes("512 MiB", "X") == 2**29
    monkeypatch.setenv("MIAD_IMAGE_CACHE_MEMORY", "lots")
    with pytest.raises(Exception, match="MIAD_IMAGE_CACHE_MEMORY='lots' is not a size"):
        cache_store.memory_budget()
