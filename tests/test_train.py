"""The shared training loop: resume equals an uninterrupted run; validation uses held-out normals only."""

from __future__ import annotations

import pytest
import torch

from miad.holdout import split_holdout
from miad.registry import create
from miad.train import STATE_FILE, TrainingError


def _weights(det):
    return {k: v.clone() for k, v in det.model.state_dict().items()}


class _Kill(Exception):
    pass


def test_resume_after_interrupted_epoch_gives_same_weights(tiny_images, tmp_path):
    full = create("ref_ae", "quick", epochs=4).fit(tiny_images, device="cpu", progress=False)

    def stop_after_two(row):
        if row["epoch"] == 2:
            raise _Kill

    state = tmp_path / "state"
    with pytest.raises(_Kill):
        create("ref_ae", "quick", epochs=4).fit(tiny_images, device="cpu", progress=False,
                                                state_dir=str(state), callback=stop_after_two)
    assert (state / STATE_FILE).is_file()
    torch.manual_seed(12345)  # a different global RNG state must not matter
    resumed = create("ref_ae", "quick", epochs=4).fit(tiny_images, device="cpu", progress=False,
                                                      state_dir=str(state))
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4]
    for k, v in _weights(full).items():
        torch.testing.assert_close(resumed.model.state_dict()[k], v)


def test_validation_loss_uses_only_heldout_images(tiny_images):
    det = create("ref_ae", "quick", epochs=1, holdout_fraction=0.34)
    seen = []
    original = det.loss

    def spy(images):
        seen.append(images.detach().clone())
        return original(images)

    det.loss = spy
    det.fit(tiny_images, device="cpu", progress=False)
    train_idx, hold_idx = split_holdout([""] * 6, det.config)
    assert len(hold_idx) == 2 and not set(hold_idx) & set(train_idx)
    val_batch = seen[-1]  # the last loss call of the epoch is validation
    assert val_batch.shape[0] == 2
    torch.testing.assert_close(val_batch, tiny_images[hold_idx])
    assert "val_loss" in det.history[0]


def test_feature_cache_gives_same_result_as_no_cache(tiny_images):
    a = create("ref_ae", "quick", epochs=2).fit(tiny_images, device="cpu", progress=False)
    b = create("ref_ae", "quick", epochs=2, cache_features=True).fit(tiny_images, device="cpu", progress=False)
    for k, v in _weights(a).items():
        torch.testing.assert_close(b.model.state_dict()[k], v)


def test_nan_loss_stops_with_epoch_and_step(tiny_images):
    det = create("ref_ae", "quick", epochs=1)
    det.loss = lambda images: torch.tensor(float("nan"), requires_grad=True)
    with pytest.raises(TrainingError, match="epoch 1, step 1"):
        det.fit(tiny_images, device="cpu", progress=False)


def test_max_train_images_and_tiny_sets(tiny_images):
    det = create("ref_ae", "quick", epochs=1, max_train_images=2)
    train_idx, hold_idx = split_holdout([""] * 6, det.config)
    assert len(train_idx) == 2 and len(hold_idx) == 1
    one = create("ref_ae", "quick", epochs=1).fit(tiny_images[:1], device="cpu", progress=False)
    assert one.holdout is None and one.threshold is None


def _batch_sizes(n: int, batch_size: int, shard: bool = True) -> list[int]:
    from miad.data.dataset import TensorImageDataset
    from miad.train import _Batches

    det = create("ref_ae", "quick", batch_size=batch_size)
    batches = _Batches(det, TensorImageDataset(torch.zeros(n, 3, 8, 8)), det.config, 0, shuffle=True, shard=shard)
    sizes = [size for _, size in batches.epoch(0)]
    assert len(sizes) == len(batches)
    return sizes


def test_training_drops_a_last_batch_of_one_but_never_the_only_batch():
    assert _batch_sizes(9, 4) == [4, 4]  # one sample would break BatchNorm; shuffling reuses it next epoch
    assert _batch_sizes(10, 4) == [4, 4, 2]
    assert _batch_sizes(1, 4) == [1]
    assert _batch_sizes(9, 4, shard=False) == [4, 4, 1]  # validation keeps every image


def test_under_ddp_every_rank_gets_a_sample_in_every_step(monkeypatch):
    from miad import distributed
    from miad.errors import ConfigError

    monkeypatch.setattr(distributed, "world_size", lambda: 4)
    monkeypatch.setattr(distributed, "rank", lambda: 3)
    assert _batch_sizes(19, 8) == [2, 2]  # the last global batch of 3 would leave rank 3 without a sample
    assert _batch_sizes(21, 8) == [2, 2, 1]  # 5 = 2 + 1 + 1 + 1: every rank steps
    with pytest.raises(ConfigError, match="3 training images cannot feed 4 processes"):
        _batch_sizes(3, 8)
