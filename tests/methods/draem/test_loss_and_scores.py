"""DRAEM loss terms, anomaly map / image score, and the detector's synthesis and checkpoint behaviour."""

from __future__ import annotations

import math
from unittest import mock

import pytest
import torch
from torch import nn

from miad import ops
from miad.errors import DataError
from miad.methods.draem.detector import DraemDetector
from miad.methods.draem.losses import draem_loss, focal_loss, ssim_loss
from miad.registry import create, load
from miad.train import seed_training_rng
from miad.types import Prediction


def test_focal_loss_matches_a_hand_computed_value():
    probs = torch.zeros(1, 2, 2, 2)
    probs[:, 1], probs[:, 0] = 0.8, 0.2  # every pixel: 0.8 anomaly
    target = torch.tensor([[[1, 1], [0, 0]]])
    s = 1e-5
    pt_right = (1 - s) * 0.8 + s * 0.2 + s  # smoothed one-hot (1 - s, s) . (0.2, 0.8) + s
    pt_wrong = (1 - s) * 0.2 + s * 0.8 + s
    expected = (-((1 - pt_right) ** 2) * math.log(pt_right) - ((1 - pt_wrong) ** 2) * math.log(pt_wrong)) / 2
    assert focal_loss(probs, target).item() == pytest.approx(expected, rel=1e-5)


def test_focal_loss_with_gamma_zero_is_cross_entropy_and_down_weights_easy_pixels():
    gen = torch.Generator().manual_seed(0)
    logits, target = torch.randn(2, 2, 8, 8, generator=gen), torch.randint(0, 2, (2, 8, 8), generator=gen)
    probs = logits.softmax(1)
    ce = nn.functional.cross_entropy(logits, target)
    assert focal_loss(probs, target, gamma=0.0).item() == pytest.approx(ce.item(), rel=1e-3)
    assert focal_loss(probs, target, gamma=2.0) < focal_loss(probs, target, gamma=0.0)


def test_loss_is_zero_for_a_perfect_reconstruction_and_segmentation():
    clean = torch.rand(2, 3, 16, 16)
    mask = torch.zeros(2, 16, 16)
    mask[:, 4:8, 4:8] = 1
    logits = torch.stack([-30 * (2 * mask - 1), 30 * (2 * mask - 1)], dim=1)  # confident, correct
    assert ssim_loss(clean, clean).item() == pytest.approx(0.0, abs=1e-6)
    assert draem_loss(clean, logits, clean, mask).item() == pytest.approx(0.0, abs=1e-4)
    noisy = (clean + 0.1 * torch.randn_like(clean)).clamp(0, 1)
    assert draem_loss(noisy, logits, clean, mask) > 0.01


def test_loss_is_float32_under_autocast():
    recon, clean = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = draem_loss(recon.bfloat16(), torch.randn(1, 2, 16, 16).bfloat16(), clean, torch.zeros(1, 16, 16))
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


def test_map_is_the_softmax_anomaly_channel_and_score_the_max_of_its_21x21_mean():
    det = create("draem", "quick", pretrained=False, image_size=64, score_kernel=21)  # the paper preset's window
    logits = torch.full((2, 2, 64, 64), 0.0)
    logits[0, 1, 10:12, 20:22] = 8.0  # a small confident blob in image 0
    logits[1, 1] = 1.0  # image 1: everywhere mildly anomalous
    det.model.reconstruct_and_segment = lambda images: (images, logits)  # the model's head on preset logits
    score, maps = det.model(torch.zeros(2, 3, 64, 64))
    pred = Prediction(score, maps)
    probs = logits.softmax(1)[:, 1]
    torch.testing.assert_close(pred.anomaly_map, probs)
    torch.testing.assert_close(pred.image_score, ops.max_score(ops.mean_filter(probs, 21)))
    # a blob of 4 pixels is averaged over 441: its score is far below its peak; a uniform map keeps its value
    assert pred.image_score[0] < 0.5 * (1 + 4 / 441) and pred.image_score[1] == pytest.approx(probs[1, 32, 32])


def test_encode_synthesises_from_torchs_global_generator():
    det = create("draem", "quick", pretrained=False, **DraemDetector.SMOKE)
    images = torch.rand(4, 3, 64, 64)
    torch.manual_seed(3)
    a = det.encode(images)
    torch.manual_seed(3)
    b = det.encode(images)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    augmented, clean, mask = a
    seed_training_rng(3)
    assert torch.equal(det.encode(images)[0], augmented)  # rank 0 of the training loop: the seed itself
    with mock.patch("miad.distributed.rank", return_value=1):  # another torchrun rank draws other anomalies
        seed_training_rng(3)
        other = det.encode(images)
    assert not torch.equal(other[0], augmented)
    assert augmented.shape == clean.shape == images.shape and mask.shape == (4, 64, 64)


def test_a_wrong_anomaly_source_fails_before_training(tmp_path, tiny_images):
    det = create("draem", "quick", pretrained=False, anomaly_source=str(tmp_path / "dtd"), **DraemDetector.SMOKE)
    with pytest.raises(DataError, match="anomaly_source"):
        det.fit(tiny_images, device="cpu", progress=False)


def test_a_checkpoint_loads_where_the_texture_folder_is_gone(tmp_path, tiny_images):
    from PIL import Image

    folder = tmp_path / "dtd" / "images" / "striped"
    folder.mkdir(parents=True)
    Image.new("RGB", (16, 16), (200, 30, 30)).save(folder / "x.png")
    det = create("draem", "quick", pretrained=False, anomaly_source=str(tmp_path / "dtd"), **DraemDetector.SMOKE)
    det.fit(tiny_images, device="cpu", progress=False)
    det.save(str(tmp_path / "m.pt"))
    (folder / "x.png").unlink()
    again = load(tmp_path / "m.pt")
    torch.testing.assert_close(again.predict(tiny_images).anomaly_map, det.predict(tiny_images).anomaly_map)
