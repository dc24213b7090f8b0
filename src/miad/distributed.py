"""Multi-GPU / multi-node training through PyTorch's own engine (torchrun + DistributedDataParallel).

`torchrun --nproc_per_node=N -m miad train ...` sets RANK / WORLD_SIZE / LOCAL_RANK; `init_from_env` starts the
process group (NCCL on CUDA, Gloo on CPU). The training loop then gives every rank its slice of each *global*
batch (the preset's batch size is the global batch, as the paper's 8-GPU UniAD run), wraps the trainable modules
in DDP so gradients are averaged, and lets rank 0 alone write state, checkpoints and logs. With a loss that is a
mean over samples and no batch statistics in the trainable parts, N processes compute the same update as one.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from miad.errors import ConfigError


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def broadcast_from_main(obj: Any) -> Any:
    """Rank 0's `obj` on every rank (a decision only rank 0 may take, e.g. under a file lock)."""
    if not is_distributed():
        return obj
    box = [obj if is_main() else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def init_from_env(device: str = "auto", timeout: timedelta | None = None) -> str:
    """Start the process group when launched by torchrun (or a SLURM job's tasks); returns the device this rank
    should use. `timeout`: of every collective (torch's default, 30 min, when None)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or is_distributed():
        return device
    use_cuda = device in ("auto", "cuda") and torch.cuda.is_available()
    dist.init_process_group(backend="nccl" if use_cuda else "gloo", timeout=timeout)
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        local %= torch.cuda.device_count()  # a task may see only its own GPU (SLURM GPU binding)
        torch.cuda.set_device(local)
        return f"cuda:{local}"
    return "cpu"


def local_batch_size(global_batch: int) -> int:
    n = world_size()
    if global_batch % n:
        raise ConfigError(f"batch_size={global_batch} (the global batch) must be divisible by the {n} processes; "
                          f"use --batch-size {global_batch - global_batch % n or n}")
    return global_batch // n


def shard_batch(global_idx: torch.Tensor) -> torch.Tensor:
    """This rank's contiguous slice of one global batch of indices; slice sizes differ by at most one, so every
    rank gets a sample whenever the batch has at least one per rank."""
    return torch.tensor_split(global_idx, world_size())[rank()]


class LossModule(nn.Module):
    """Wraps a detector's loss so DDP sees a forward pass over the trainable parameters."""

    def __init__(self, det: Any) -> None:
        super().__init__()
        self.trainable = nn.ModuleList(det.trainable_modules())
        self._det = [det]  # a list: not registered as a sub-module

    def forward(self, inputs: Any) -> torch.Tensor:
        return self._det[0].loss(inputs)


def wrap_for_training(det: Any) -> nn.Module:
    """DDP over the trainable modules when distributed (SyncBatchNorm on CUDA), else the plain loss module."""
    module = LossModule(det)
    if not is_distributed():
        return module
    if det.device.type == "cuda":
        nn.SyncBatchNorm.convert_sync_batchnorm(module.trainable)
        return nn.parallel.DistributedDataParallel(module, device_ids=[det.device.index])
    return nn.parallel.DistributedDataParallel(module)


def all_gather_variable(t: torch.Tensor) -> torch.Tensor:
    """Concatenate tensors of different lengths (dim 0) from every rank, in rank order."""
    if not is_distributed():
        return t
    n = torch.tensor([t.shape[0]], device=t.device)
    sizes = [torch.zeros_like(n) for _ in range(world_size())]
    dist.all_gather(sizes, n)
    biggest = int(max(s.item() for s in sizes))
    padded = torch.zeros((biggest, *t.shape[1:]), dtype=t.dtype, device=t.device)
    padded[: t.shape[0]] = t
    parts = [torch.zeros_like(padded) for _ in range(world_size())]
    dist.all_gather(parts, padded)
    return torch.cat([p[: int(s.item())] for p, s in zip(parts, sizes)])
