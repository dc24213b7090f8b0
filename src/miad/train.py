"""The one training loop for gradient methods, written out plainly.

Epochs, optimiser and MultiStepLR schedule come from the method's config; AMP on CUDA; a progress bar with loss,
images/s and ETA; validation loss on the held-out normal images only; resumable per-epoch state in `state_dir`
(a killed run continues from its last finished epoch and ends with the same weights as an uninterrupted one:
shuffling is seeded per epoch and the RNG states are saved with the weights).

Distributed training plugs in through `miad.distributed` (sampler, gradient all-reduce, rank-0 output) without
the methods knowing.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from miad import distributed as dist
from miad.atomic import atomic_save
from miad.checkpoint import read_torch
from miad.data.feed import EpochBatches, ImageFeed, image_source, loader_options, resolve_workers, to_device
from miad.errors import ConfigError, MiadError

STATE_FILE = "train_state.pt"


class TrainingError(MiadError, RuntimeError):
    """Training cannot continue (e.g. a non-finite loss)."""


def make_optimizer(config: Any, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    kind = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return kind(params, lr=config.lr, betas=tuple(config.betas), weight_decay=config.weight_decay)


def make_scheduler(config: Any, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, list(config.lr_milestones), gamma=config.lr_gamma)


def train_detector(
    det: Any, train: Dataset, val: Dataset | None, *, progress: bool = True, state_dir: str | None = None,
    num_workers: int | str = 0, callback: Any = None, image_cache: bool = True, selection: Any = None,
) -> list[dict[str, float]]:
    """Train `det` (a GradientDetector) for config.epochs; returns the per-epoch history.

    image_cache: decode each image once into the decoded-image cache (miad.data.cache) when the images are read
    more than once (two epochs or more left) and the frozen-feature cache (`cache_features`) does not apply.
    `selection` (miad.selection.SelectionOnTest, --protocol paper-selection only): validates on the test set
    before each epoch's state is saved, may stop early, and leaves the best weights in `det`."""
    cfg = det.config
    if len(train) == 0:  # type: ignore[arg-type]
        raise TrainingError("no training images left after the hold-out split; add normal training images")
    seed_training_rng(cfg.seed)
    params = det.trainable_parameters()
    optimizer = make_optimizer(cfg, params)
    scheduler = make_scheduler(cfg, optimizer)
    scaler, amp_dtype = _amp(det.device, cfg.amp)
    state_path = Path(state_dir) / STATE_FILE if state_dir else None
    start, history = _resume(det, optimizer, scheduler, state_path)
    if selection is not None:
        selection.resume(history)
    step_fn = dist.wrap_for_training(det)  # DDP when launched by torchrun, else the plain loss
    cache = image_cache and cfg.epochs - start >= 2 and _cache_enabled()
    batches = _Batches(det, train, cfg, num_workers, shuffle=True, image_cache=cache, progress=progress)
    val_batches = (_Batches(det, val, cfg, num_workers, shuffle=False, shard=False, image_cache=cache)
                   if val is not None else None)
    progress = progress and dist.is_main()
    for epoch in range(start, cfg.epochs):
        if selection is not None and selection.stopped:
            break
        t0, lr = time.perf_counter(), optimizer.param_groups[0]["lr"]
        train_loss, speed = _train_epoch(det, step_fn, batches, epoch, optimizer, scaler, amp_dtype, params, progress)
        scheduler.step()
        row = {"epoch": epoch + 1, "train_loss": train_loss, "lr": lr, "images_per_second": speed,
               "seconds": time.perf_counter() - t0}
        if val_batches is not None:
            row["val_loss"] = _validate(det, val_batches)
        if selection is not None:
            selection.after_epoch(det, row)
        history.append(row)
        if state_path is not None and dist.is_main():
            _save_state(det, optimizer, scheduler, history, state_path)
        dist.barrier()
        if callback is not None:  # after the state is saved: a logged epoch is never redone
            callback(row)
    if selection is not None:
        selection.restore_best(det)
    det.model.eval()
    return history


def _train_epoch(det, step_fn, batches, epoch, optimizer, scaler, amp_dtype, params, progress) -> tuple[float, float]:
    """(mean training loss, training images per second; under torchrun, this rank's images x world size)."""
    cfg = det.config
    det.model.train()
    total, count, t0 = 0.0, 0, time.perf_counter()
    bar = tqdm(batches.epoch(epoch), total=len(batches), disable=not progress, leave=False,
               desc=f"{det.name} epoch {epoch + 1}/{cfg.epochs}")
    for step, (inputs, n) in enumerate(bar):
        with torch.autocast(det.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            loss = step_fn(inputs)
        if not torch.isfinite(loss):
            raise TrainingError(
                f"{det.name}: loss is {loss.item()} at epoch {epoch + 1}, step {step + 1}; lower lr "
                "(--set lr=...) or check the input images"
            )
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
        else:
            loss.backward()
        if cfg.grad_clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip_norm)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        total, count = total + loss.item() * n, count + n
        bar.set_postfix(loss=f"{loss.item():.4g}", img_s=f"{count / (time.perf_counter() - t0):.1f}")
    return total / max(count, 1), count * dist.world_size() / max(time.perf_counter() - t0, 1e-9)


@torch.no_grad()
def _validate(det, batches) -> float:
    """Mean loss on held-out normal images, eval mode, under a fixed RNG (training RNG untouched)."""
    det.model.eval()
    total, count = 0.0, 0
    with torch.random.fork_rng(devices=[det.device] if det.device.type == "cuda" else []):
        torch.manual_seed(det.config.seed + 7919)
        for inputs, n in batches.epoch(0):
            total, count = total + det.loss(inputs).item() * n, count + n
    return total / max(count, 1)


def seed_training_rng(seed: int) -> None:
    """Seed torch's global RNG for training: distinct per torchrun rank, so random augmentations and synthesised
    anomalies differ between the ranks' slices of a batch (validation reseeds it alike on every rank)."""
    torch.manual_seed(seed + 1_000_003 * dist.rank())


class _Batches:
    """Batches of encoded inputs; with cache_features the frozen encoder runs once for all epochs.

    The batch size is global: under torchrun each rank takes its contiguous slice of every global batch.
    """

    def __init__(self, det, dataset: Dataset, cfg, num_workers: int | str, shuffle: bool, shard: bool = True,
                 image_cache: bool = False, progress: bool = False) -> None:
        self.det, self.dataset, self.cfg, self.shuffle, self.shard = det, dataset, cfg, shuffle, shard
        self.n = len(dataset)  # type: ignore[arg-type]
        if shard:
            dist.local_batch_size(cfg.batch_size)  # fails early when the global batch does not divide
            if self.n < dist.world_size():
                raise ConfigError(f"{self.n} training images cannot feed {dist.world_size()} processes (each needs "
                                  "one per step): use fewer processes or more images")
        self.num_workers = resolve_workers(num_workers, self.n)
        self.cache: Any = None
        self.feed: ImageFeed | None = None  # uint8 images on disk: cached or decoded, normalised on the device
        self.loader: DataLoader | None = None
        if cfg.cache_features:  # precedence: the frozen encoder's outputs are cached, not the images
            self.cache = self._encode_all()
        elif (source := image_source(dataset)) is not None:
            self.feed = ImageFeed(*source, cache=image_cache, workers=num_workers, device=det.device,
                                  batch_size=cfg.batch_size, progress=progress)
        else:  # tensors or a user's Dataset: its own items, one persistent loader for all epochs
            self.sampler = EpochBatches()
            self.loader = DataLoader(dataset, batch_sampler=self.sampler,
                                     **loader_options(self.num_workers, det.device))

    def __len__(self) -> int:  # batches per epoch
        return len(self._global_batches(0))

    def _order(self, epoch: int) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.n)
        gen = torch.Generator().manual_seed(self.cfg.seed * 100_003 + epoch)  # seeded per epoch: resumable
        return torch.randperm(self.n, generator=gen)

    def _global_batches(self, epoch: int) -> list[torch.Tensor]:
        order, bs = self._order(epoch), self.cfg.batch_size
        batches = [order[i : i + bs] for i in range(0, self.n, bs)]
        if not self.shard:
            return batches
        # Training drops a short last batch: one sample breaks BatchNorm, and under DDP a rank without a sample
        # would skip a step that the others wait for. Shuffling hands the dropped samples to other batches.
        if len(batches) > 1 and len(batches[-1]) < max(2, dist.world_size()):
            batches = batches[:-1]
        return [dist.shard_batch(b) for b in batches]

    def epoch(self, epoch: int):
        batches = self._global_batches(epoch)  # never empty: see _global_batches
        if self.cache is not None:
            for idx in batches:
                yield _map(self.cache, lambda t, idx=idx: t[idx].to(self.det.device)), len(idx)
            return
        if self.feed is not None:
            for idx, pixels in zip(batches, self.feed.batches(batches)):
                images = self.feed.to_input(pixels)
                with torch.no_grad():
                    inputs = self.det.encode(images)
                yield inputs, len(idx)
            return
        assert self.loader is not None
        self.sampler.batches = [b.tolist() for b in batches]
        for batch in self.loader:
            images = to_device(batch["image"], self.det.device)
            with torch.no_grad():
                inputs = self.det.encode(images)
            yield inputs, len(images)

    @torch.no_grad()
    def _encode_all(self) -> Any:
        loader = DataLoader(self.dataset, batch_size=self.cfg.batch_size,
                            **loader_options(self.num_workers, self.det.device))
        parts = [_map(self.det.encode(b["image"].to(self.det.device)), lambda t: t.cpu()) for b in loader]
        if isinstance(parts[0], torch.Tensor):
            return torch.cat(parts)
        return type(parts[0])(torch.cat([p[i] for p in parts]) for i in range(len(parts[0])))


def _cache_enabled() -> bool:
    from miad.data.cache_store import cache_enabled

    return cache_enabled()


def _map(inputs: Any, fn) -> Any:
    if isinstance(inputs, torch.Tensor):
        return fn(inputs)
    return type(inputs)(fn(t) for t in inputs)


def _amp(device: torch.device, enabled: bool):
    if device.type != "cuda" or not enabled:
        return None, None
    if torch.cuda.is_bf16_supported():
        return None, torch.bfloat16
    return torch.amp.GradScaler("cuda"), torch.float16


def _save_state(det, optimizer, scheduler, history, path: Path) -> None:
    atomic_save({
        "model": det.model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "history": history,
        "rng_torch": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "rng_numpy": _numpy_state(),
        "rng_python": list(random.getstate()[1]),
    }, path)


def read_resume_state(path: Path, mmap: bool = False) -> dict[str, Any]:
    """The per-epoch state in `path`; an unreadable one says which folder to delete to start over."""
    state = read_torch(path, what="resume state", fix=f"delete {path.parent} to start training over", mmap=mmap)
    if not isinstance(state, dict) or not isinstance(state.get("history"), list):
        raise TrainingError(f"{path} is not a miad resume state; delete {path.parent} to start training over")
    return state


def finished_epochs(state_dir: str | Path) -> list[dict[str, float]]:
    """The history rows of the epochs a resume state in `state_dir` holds ([] without one): what a resumed run's
    logs must show before it continues."""
    path = Path(state_dir) / STATE_FILE
    return list(read_resume_state(path, mmap=True)["history"]) if path.is_file() else []


def _resume(det, optimizer, scheduler, path: Path | None) -> tuple[int, list[dict[str, float]]]:
    if path is None or not path.is_file():
        return 0, []
    state = read_resume_state(path)
    try:
        det.load_model_state(state["model"])  # the detector's own loading, as from a checkpoint
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
    except (KeyError, RuntimeError, ValueError) as exc:
        first = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise TrainingError(f"resume state {path} does not fit this {det.name} model ({first}); it was saved with "
                            f"other settings: delete {path.parent} to start training over") from None
    torch.set_rng_state(state["rng_torch"])
    if state["rng_cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng_cuda"])
    keys, pos, has_gauss, cached = state["rng_numpy"]
    np.random.set_state(("MT19937", keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    random.setstate((3, tuple(state["rng_python"]), None))
    return len(state["history"]), list(state["history"])


def _numpy_state() -> list:
    _, keys, pos, has_gauss, cached = np.random.get_state()
    return [torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)]
