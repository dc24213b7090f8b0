"""Decoded-image cache: every image decoded and resized once (uint8), then read from memory or a mapped file.

Training reads each image once per epoch; decoding a 1920x1440 JPEG costs ~8 ms, reading 256x256x3 bytes from
memory microseconds. `DecodedImages` holds images as uint8 [N,3,S,S] exactly as `miad.data.io.load_rgb`
returns them at side S with the given resize mode (so cached training gives the same weights as decoding).
A data set within the memory budget is kept in memory (this process only); a larger one goes to a
memory-mapped file under the miad cache folder (`miad.data.cache_store`), reused by later runs, keyed by the
files' paths (in order), sizes and modification times (`miad.data.fingerprint`), the side and the resize mode:
a changed data set gets a new key and is decoded again, never served stale.

Filling decodes in DataLoader worker processes; the main process writes the results. When the file cannot be
created (read-only folder, full disk, over the size limit) the caller falls back to decoding, after one warning.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from miad.atomic import atomic_path
from miad.data import cache_store as store
from miad.data.fingerprint import data_fingerprint
from miad.data.io import load_rgb
from miad.errors import DataError

_warned: set[str] = set()


def cache_key(files: Sequence[Path], size: int, resize: str) -> str:
    """Depends on the ordered paths, each file's size and mtime (one stat each), the side and the resize mode."""
    fp = data_fingerprint(Path("/"), files)["digest"]  # root "/": absolute paths count
    order = hashlib.sha256("\n".join(os.path.abspath(f) for f in files).encode("utf-8", "surrogateescape"))
    text = f"v{store.VERSION}\0{fp}\0{order.hexdigest()}\0{size}\0{resize}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class DecodeDataset(Dataset):
    """Item i -> (i, uint8 [3,S,S] numpy array, None) or (i, None, error message): a worker never raises, so the
    main process reports a corrupt file in the usual one line instead of a wrapped worker traceback."""

    def __init__(self, files: Sequence[Path], size: int, resize: str) -> None:
        self.files, self.size, self.resize = list(files), size, resize

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[int, np.ndarray | None, str | None]:
        try:
            rgb = np.asarray(load_rgb(self.files[i], self.size, self.resize), dtype=np.uint8)  # [S,S,3]
        except DataError as exc:
            return i, None, str(exc)
        return i, np.ascontiguousarray(rgb.transpose(2, 0, 1)), None  # [3,S,S]


def as_list(items: list) -> list:
    """DataLoader collate that keeps the items as they are (module level: picklable for spawned workers)."""
    return items


class DecodedImages:
    """uint8 [N,3,S,S] images of `files` at side `size`; `batch(indices)` -> torch uint8 [B,3,S,S].

    Use `open(...)`: it returns None when the images can neither stay in memory nor go to a file.
    """

    def __init__(self, files: Sequence[Path], size: int, resize: str, array: np.ndarray, filled: bool,
                 temp: Path | None = None, final: Path | None = None) -> None:
        self.files, self.size, self.resize = list(files), size, resize
        self.array = array  # [N,3,S,S] uint8: np.ndarray (memory) or np.memmap (file)
        self.filled = np.full(len(self.files), filled, dtype=bool)
        self.temp, self.final = temp, final  # a file being filled, and the name it gets when complete

    @property
    def on_disk(self) -> bool:
        return isinstance(self.array, np.memmap)

    @property
    def complete(self) -> bool:
        return bool(self.filled.all())

    @staticmethod
    def open(files: Sequence[Path], size: int, resize: str, budget: int | None = None) -> DecodedImages | None:
        files = [Path(f) for f in files]
        shape = (len(files), 3, size, size)
        nbytes = int(np.prod(shape))
        if nbytes <= (store.memory_budget() if budget is None else budget):
            return DecodedImages(files, size, resize, np.empty(shape, np.uint8), filled=False)
        folder = store.images_dir()
        key = cache_key(files, size, resize)
        final = folder / f"{key}.u8"
        if final.is_file() and final.stat().st_size == nbytes:
            store.touch(final)
            return DecodedImages(files, size, resize, np.memmap(final, np.uint8, "r", shape=shape), filled=True)
        try:
            temp, array = _new_file(folder, key, nbytes, shape)
        except OSError as exc:
            _warn_once(folder, f"cannot write the decoded-image cache in {folder} ({exc.strerror or exc}); "
                       "decoding the images every epoch instead (set MIAD_CACHE to a writable folder with "
                       f"{nbytes / 1e9:.1f} GB free, or MIAD_IMAGE_CACHE=off to silence this)")
            return None
        return DecodedImages(files, size, resize, array, filled=False, temp=temp, final=final)

    def fill(self, num_workers: int = 0, batch_size: int = 32, progress: bool = False) -> None:
        """Decode every image not cached yet, in `num_workers` processes; a corrupt file raises DataError."""
        missing = np.flatnonzero(~self.filled).tolist()
        if not missing:
            return
        ds = DecodeDataset(self.files, self.size, self.resize)
        loader = DataLoader(ds, batch_sampler=[missing[i : i + batch_size] for i in range(0, len(missing),
                            batch_size)], num_workers=num_workers, collate_fn=as_list,
                            generator=torch.Generator())  # not the global RNG (see miad.data.feed.loader_options)
        try:
            with tqdm(total=len(missing), disable=not progress, leave=False, desc="decoding into the cache") as bar:
                for items in loader:
                    for i, pixels, error in items:
                        self._store(i, pixels, error)
                    bar.update(len(items))
            self._finish()
        except BaseException:
            self.discard()
            raise

    def get(self, i: int) -> np.ndarray:
        """Image i as uint8 [3,S,S], decoded now if not cached yet (lazy filling, e.g. DRAEM's textures)."""
        if not self.filled[i]:
            self._store(i, *DecodeDataset(self.files, self.size, self.resize)[i][1:])
            if self.complete:
                self._finish()
        return self.array[i]

    def batch(self, indices: Sequence[int] | torch.Tensor) -> torch.Tensor:
        """uint8 [B,3,S,S] of the (cached) images at `indices`, in that order."""
        idx = np.asarray(indices.tolist() if isinstance(indices, torch.Tensor) else indices, dtype=np.int64)
        assert self.filled[idx].all(), "DecodedImages.batch before fill()"
        return torch.from_numpy(np.ascontiguousarray(self.array[idx]))

    def discard(self) -> None:
        """Drop a file that is still being filled (after an error): no half-written entry remains."""
        if self.temp is not None:
            self.temp.unlink(missing_ok=True)
            self.temp = None

    def _store(self, i: int, pixels: np.ndarray | None, error: str | None) -> None:
        if error is not None:
            raise DataError(error)
        self.array[i] = pixels
        self.filled[i] = True

    def _finish(self) -> None:
        """A complete file becomes an entry: flushed, described, renamed into place (memory: nothing to do)."""
        if self.temp is None or not self.complete:
            return
        assert isinstance(self.array, np.memmap) and self.final is not None
        self.array.flush()
        meta = {"version": store.VERSION, "shape": list(self.array.shape), "size": self.size,
                "resize": self.resize, "images": len(self.files), "folder": _common_folder(self.files),
                "created": time.time()}
        try:
            _write_meta(store.meta_path(self.final), meta)
            os.replace(self.temp, self.final)
        except OSError as exc:  # the cache stays usable in this process; only reuse by later runs is lost
            _warn_once(self.final.parent, f"cannot finish the decoded-image cache entry {self.final} "
                       f"({exc.strerror or exc}); later runs will decode again")
            return
        self.temp = None
        self.array = np.memmap(self.final, np.uint8, "r", shape=self.array.shape)


def _new_file(folder: Path, key: str, nbytes: int, shape: tuple[int, ...]) -> tuple[Path, np.memmap]:
    """A temp file of `nbytes` with its blocks reserved (a full disk fails here, not as SIGBUS while writing)."""
    folder.mkdir(parents=True, exist_ok=True)
    if not store.make_room(nbytes, folder):
        raise OSError(f"{nbytes / 1e9:.1f} GB exceed the cache limit MIAD_IMAGE_CACHE_LIMIT="
                      f"{store.disk_limit() / 1e9:.1f} GB")
    temp = folder / f".{key}.{os.getpid()}.{time.monotonic_ns()}.tmp"
    fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        if hasattr(os, "posix_fallocate"):
            os.posix_fallocate(fd, 0, nbytes)
        else:
            os.ftruncate(fd, nbytes)
    except OSError:
        os.close(fd)
        temp.unlink(missing_ok=True)
        raise
    os.close(fd)
    return temp, np.memmap(temp, np.uint8, "r+", shape=shape)


def _write_meta(path: Path, meta: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(meta, indent=1) + "\n")


def _common_folder(files: Sequence[Path]) -> str:
    try:
        return os.path.commonpath([os.path.abspath(f.parent) for f in files])
    except ValueError:
        return ""


def _warn_once(folder: Path, message: str) -> None:
    if str(folder) not in _warned:
        _warned.add(str(folder))
        warnings.warn(message, UserWarning, stacklevel=3)
