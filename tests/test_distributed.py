"""Distributed training on CPU (gloo, 2 processes) gives the same weights as one process."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from miad import distributed
from miad.errors import ConfigError


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CASES = {
    "ref_ae": {"epochs": 3},
    # A real method without batch norm in its trainable parts (LayerNorm + coupling flows), as the issue asks.
    "fastflow": {"image_size": 32, "epochs": 2, "weights": "random", "flow_steps": 2},
}


def _create(name: str):
    from miad.registry import create

    return create(name, "quick", pretrained=False, batch_size=4, holdout_fraction=0.0, **CASES[name])


def _worker(rank: int, world: int, port: int, name: str, images: torch.Tensor, out: str) -> None:
    sys.path.insert(0, str(next(p for p in Path(__file__).parents if (p / "reference_methods.py").is_file())))
    import reference_methods  # noqa: F401  (registers ref_ae in the child)

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    device = distributed.init_from_env("cpu")
    det = _create(name)
    det.fit(images, device=device, progress=False)
    if distributed.is_main():
        torch.save(det.model.state_dict(), out)
    torch.distributed.destroy_process_group()


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_two_processes_match_one(name, tmp_path, tiny_images):
    images = torch.cat([tiny_images, tiny_images.flip(-1)])  # 12 images: 3 global batches of 4
    single = _create(name)
    single.fit(images, device="cpu", progress=False)
    out = tmp_path / "rank0.pt"
    mp.spawn(_worker, args=(2, _free_port(), name, images, str(out)), nprocs=2, join=True)
    two = torch.load(out, weights_only=True)
    for k, v in single.model.state_dict().items():
        torch.testing.assert_close(two[k], v, rtol=1e-3, atol=1e-4)  # float reduction order differs


def test_global_batch_must_divide_world(monkeypatch):
    monkeypatch.setattr(distributed, "world_size", lambda: 3)
    with pytest.raises(ConfigError, match="divisible by the 3 processes"):
        distributed.local_batch_size(32)
    monkeypatch.setattr(distributed, "rank", lambda: 1)
    assert distributed.shard_batch(torch.arange(6)).tolist() == [2, 3]


def _patchcore(images_per_batch: int = 4):
    from miad.registry import create, get_method

    return create("patchcore", "quick", pretrained=False, batch_size=images_per_batch, holdout_fraction=0.0,
                  **get_method("patchcore").SMOKE)


def _patchcore_worker(rank: int, world: int, port: int, images: torch.Tensor, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    device = distributed.init_from_env("cpu")
    det = _patchcore().fit(images, device=device, progress=False)
    if distributed.is_main():
        torch.save(det.model.memory_bank.clone(), out)
    torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_patchcore_sharded_bank_equals_single_process_bank(tmp_path, tiny_images):
    images = torch.cat([tiny_images, tiny_images.flip(-1), tiny_images.flip(-2)])[:14]  # last batch: 2 of 4
    torch.set_num_threads(1)
    single = _patchcore().fit(images, device="cpu", progress=False).model.memory_bank
    out = tmp_path / "bank.pt"
    mp.spawn(_patchcore_worker, args=(2, _free_port(), images, str(out)), nprocs=2, join=True)
    torch.testing.assert_close(torch.load(out, weights_only=True), single)


@pytest.mark.parametrize(("n", "world", "sizes"), [(7, 3, [3, 2, 2]), (2, 3, [1, 1, 0]), (8, 2, [4, 4])])
def test_shard_batch_is_balanced_and_contiguous(monkeypatch, n, world, sizes):
    monkeypatch.setattr(distributed, "world_size", lambda: world)
    shards = []
    for r in range(world):
        monkeypatch.setattr(distributed, "rank", lambda r=r: r)
        shards.append(distributed.shard_batch(torch.arange(n)))
    assert [len(s) for s in shards] == sizes
    assert torch.cat(shards).tolist() == list(range(n))  # rank order gives back the global batch
