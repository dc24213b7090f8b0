"""Training batches as uint8, normalised on the training device; data-loader settings a GPU user expects.

`ImageFeed` serves the images of an `ImageDataset` (or a Subset of one) batch by batch as uint8 [B,3,S,S]:
from the decoded-image cache (`miad.data.cache`) when it is on and pays (the images are read more than once),
else decoded by persistent DataLoader workers. Either way the pixels are exactly `ImageDataset`'s, so training
gives the same weights with or without the cache and with any number of workers (no randomness lives in the
loader: batch order is seeded per epoch by the training loop, augmentation runs on the training device).
uint8 batches are a quarter of float32 ones to move between processes and to the GPU; on CUDA they are copied
from pinned memory without blocking.

`--num-workers auto` (the default of the commands): the usable cores (os.sched_getaffinity) divided among the
processes of a torchrun node, at most 8; none on one core or for fewer than 256 images, where starting worker
processes costs more than decoding in the main process.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from miad.data.cache import DecodeDataset, DecodedImages
from miad.data.dataset import ImageDataset
from miad.errors import ConfigError, DataError
from miad.preprocess import normalize

AUTO_MIN_IMAGES = 256


def usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def resolve_workers(requested: int | str, n_items: int | None = None) -> int:
    """`requested` workers, or for "auto" the usable cores of this process (see the module docstring)."""
    if requested == "auto":
        if n_items is not None and n_items < AUTO_MIN_IMAGES:
            return 0
        per_process = usable_cores() // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
        return min(per_process, 8) if per_process >= 2 else 0
    if isinstance(requested, bool) or not isinstance(requested, int) or requested < 0:
        raise ConfigError(f"num_workers must be 'auto' or an integer >= 0, got {requested!r}")
    return requested


def loader_options(workers: int, device: torch.device) -> dict[str, Any]:
    """Persistent workers with prefetching; pinned memory on CUDA (for non-blocking copies). The loader seeds
    its workers from a private generator: iterating it never draws from torch's global RNG, which drives the
    training's augmentation, so results are the same whether images come from the cache or from a loader."""
    options: dict[str, Any] = {"num_workers": workers, "pin_memory": device.type == "cuda",
                               "generator": torch.Generator()}
    if workers > 0:
        options.update(persistent_workers=True, prefetch_factor=4)
    return options


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True) if not tensor.is_pinned() else tensor.to(
            device, non_blocking=True)
    return tensor.to(device)


class EpochBatches:
    """A batch sampler whose batches are set per epoch: a persistent DataLoader re-reads it every epoch."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def image_source(dataset: Dataset) -> tuple[Any, list[int]] | None:
    """(the ImageDataset under `dataset`, its sample indices) for an ImageDataset or nested Subsets of one."""
    indices: list[int] | None = None
    while isinstance(dataset, Subset):
        outer = list(dataset.indices)
        indices = outer if indices is None else [outer[i] for i in indices]
        dataset = dataset.dataset
    if not isinstance(dataset, ImageDataset):
        return None
    return dataset, list(range(len(dataset))) if indices is None else indices


def stack_decoded(items: list) -> torch.Tensor | str:
    """Collate DecodeDataset items into uint8 [B,3,S,S], or the first error message (raised in the main
    process: one line naming the file)."""
    for _, _, error in items:
        if error is not None:
            return error
    return torch.stack([torch.from_numpy(pixels) for _, pixels, _ in items])


class ImageFeed:
    """uint8 batches of the images of an ImageDataset (see the module docstring); `to_input` normalises."""

    def __init__(self, base: Any, indices: Sequence[int], *, cache: bool, workers: int | str, device: torch.device,
                 batch_size: int, progress: bool = False) -> None:
        self.files = [Path(base.samples[i].image) for i in indices]
        self.size, self.resize, self.crop, self.normalize = (base.image_size, base.resize, base.center_crop,
                                                             base.normalize)
        self.workers = resolve_workers(workers, len(self.files))
        self.device = device
        self.cached: DecodedImages | None = DecodedImages.open(self.files, self.size, self.resize) if cache else None
        if self.cached is not None:
            self.cached.fill(self.workers, batch_size, progress)
            self._loader = None
        else:  # decoded every epoch by persistent workers
            self._sampler = EpochBatches()
            self._loader = DataLoader(DecodeDataset(self.files, self.size, self.resize), batch_sampler=self._sampler,
                                      collate_fn=stack_decoded, **loader_options(self.workers, device))

    def __len__(self) -> int:
        return len(self.files)

    def batches(self, batches: Sequence[torch.Tensor]) -> Iterator[torch.Tensor]:
        """uint8 [B,3,S,S] per batch of positions (into this feed's images), in order."""
        if self.cached is not None:
            for idx in batches:
                yield self.cached.batch(idx)
            return
        assert self._loader is not None
        self._sampler.batches = [b.tolist() for b in batches]
        for batch in self._loader:
            if isinstance(batch, str):
                raise DataError(batch)
            yield batch

    def to_input(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 [B,3,S,S] -> the model's float input on the device (crop, /255, the preset's normalisation),
        the same values as `ImageDataset` gives."""
        images = to_device(images, self.device)
        if self.crop is not None:
            top = (self.size - self.crop) // 2
            images = images[..., top : top + self.crop, top : top + self.crop]
        return normalize(images.float() / 255.0, self.normalize)
