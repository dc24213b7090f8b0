"""Reverse Distillation numerics that need no training: maps, loss, shapes at every scale, presets, config checks."""

from __future__ import annotations

import math

import pytest
import torch

from miad.errors import ConfigError
from miad.methods.reverse_distillation.model import (
    PRESETS,
    ReverseDistillationModel,
    anomaly_map,
    distillation_loss,
)
from miad.ops import gaussian_blur
from miad.registry import create, make_config


def _features(seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(2, c, s, s, generator=gen) for c, s in ((8, 16), (12, 8), (16, 4))]


def test_identical_features_give_zero_map_and_zero_loss():
    feats = _features()
    maps = anomaly_map(feats, [f.clone() for f in feats], 64, "add")
    assert maps.shape == (2, 64, 64)
    torch.testing.assert_close(gaussian_blur(maps, 4.0), torch.zeros(2, 64, 64), atol=1e-5, rtol=0)
    for mode in ("flattened", "per_pixel"):
        assert distillation_loss(feats, feats, mode).abs().item() < 1e-5


def test_map_sums_per_scale_distances():
    """Opposite features at one scale (distance 2) + identical elsewhere (0): sum 2 everywhere, product 0."""
    teacher = _features()
    student = [teacher[0], -teacher[1], teacher[2]]
    torch.testing.assert_close(anomaly_map(teacher, student, 32, "add"), torch.full((2, 32, 32), 2.0))
    torch.testing.assert_close(anomaly_map(teacher, student, 32, "multiply"), torch.zeros(2, 32, 32), atol=1e-5, rtol=0)


def test_map_upsamples_with_aligned_corners():
    """A distance that is 0 in the left column and 1 in the right one ramps linearly corner to corner."""
    teacher = torch.ones(1, 2, 1, 2)
    student = torch.tensor([[[[1.0, 1.0]], [[1.0, -1.0]]]])  # left: same direction; right: orthogonal
    maps = anomaly_map([teacher], [student], 5)
    torch.testing.assert_close(maps[0, 2], torch.linspace(0, 1, 5))


def test_flattened_loss_follows_the_original_not_per_pixel():
    """Teacher ones; student 3 on half the pixels, -1 on the others. Per pixel the cosines are +1 and -1 (loss 1);
    over the whole flattened map the cosine is (3-1)/2 / sqrt((9+1)/2) = 1/sqrt(5)."""
    teacher = torch.ones(1, 4, 2, 2)
    student = torch.ones(1, 4, 2, 2)
    student[..., 0, :] = 3.0
    student[..., 1, :] = -1.0
    assert distillation_loss([teacher], [student], "per_pixel").item() == pytest.approx(1.0)
    assert distillation_loss([teacher], [student], "flattened").item() == pytest.approx(1 - 1 / math.sqrt(5))


def test_loss_sums_over_scales():
    teacher = _features(1)
    student = [-t for t in teacher]
    assert distillation_loss(teacher, student).item() == pytest.approx(6.0)


def test_wide_resnet50_shapes_match_the_original_network_at_256():
    """Shape propagation on the meta device: the exact WRN50 widths, without allocating 80M parameters."""
    with torch.device("meta"):
        model = ReverseDistillationModel(PRESETS["paper"], pretrained=False)
        teacher = model.teacher(torch.zeros(2, 3, 256, 256))
        embedding = model.bottleneck(teacher)
        student = model.decoder(embedding)
    expected = [(2, 256, 64, 64), (2, 512, 32, 32), (2, 1024, 16, 16)]
    assert [tuple(t.shape) for t in teacher] == expected
    assert [tuple(s.shape) for s in student] == expected
    assert tuple(embedding.shape) == (2, 2048, 8, 8)
    first = model.bottleneck.stage[0]
    assert (first.conv1.in_channels, first.conv1.out_channels, len(model.bottleneck.stage)) == (3072, 1024, 3)
    assert [len(s) for s in model.decoder.stages] == [3, 4, 6]
    assert [s[0].conv1.out_channels for s in model.decoder.stages] == [512, 256, 128]


def test_quick_backbone_shapes_at_256():
    config = make_config("reverse_distillation", "quick", image_size=256)
    model = ReverseDistillationModel(config, pretrained=False).eval()
    with torch.no_grad():
        teacher, student = model.teacher_and_student(torch.randn(1, 3, 256, 256))
        embedding = model.bottleneck(teacher)
    expected = [(1, 24, 64, 64), (1, 40, 32, 32), (1, 112, 16, 16)]
    assert [tuple(t.shape) for t in teacher] == expected
    assert [tuple(s.shape) for s in student] == expected
    assert tuple(embedding.shape) == (1, 224, 8, 8)


def test_only_bottleneck_and_decoder_are_trained():
    det = create("reverse_distillation", "quick", pretrained=False, image_size=64)
    trained = {id(p) for p in det.trainable_parameters()}
    assert not any(id(p) in trained for p in det.model.teacher.parameters())
    student = [*det.model.bottleneck.parameters(), *det.model.decoder.parameters()]
    assert trained == {id(p) for p in student}


def test_paper_preset_is_appendix_a21():
    p = PRESETS["paper"]
    assert (p.image_size, p.backbone, p.layers, p.optimizer, p.lr, p.betas) == (
        256,
        "wide_resnet50_2",
        (1, 2, 3),
        "adam",
        0.005,
        (0.5, 0.999),
    )
    # A.2.1 "rest as Anomalib defaults": anomalib v0.3.7's per-pixel loss, multiplied maps, OpenCV resize
    assert (p.batch_size, p.epochs, p.map_mode, p.loss_mode, p.blur_sigma) == (32, 200, "multiply", "per_pixel", 4.0)
    assert p.resize == "opencv" and PRESETS["quick"].resize == "pil_draft"
    assert (PRESETS["quick"].map_mode, PRESETS["quick"].loss_mode) == ("add", "flattened")


def test_detector_uses_the_configured_loss_and_map_modes():
    """The anomalib v0.3.7 formulas, written out plainly, against what the detector computes in those modes."""
    det = create("reverse_distillation", "quick", pretrained=False, image_size=64, loss_mode="per_pixel",
                 map_mode="multiply", blur_sigma=0.0)
    det.model.eval()
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        teacher, student = det.model.teacher_and_student(images)
        want_loss = sum((1 - torch.nn.functional.cosine_similarity(t, s)).mean() for t, s in zip(teacher, student))
        torch.testing.assert_close(det.loss(det.encode(images)), want_loss)
        want_map = torch.ones(2, 1, 64, 64)
        for t, s in zip(teacher, student):
            d = (1 - torch.nn.functional.cosine_similarity(t, s)).unsqueeze(1)
            want_map *= torch.nn.functional.interpolate(d, size=(64, 64), mode="bilinear", align_corners=True)
        torch.testing.assert_close(det.model(images)[1], want_map.squeeze(1))


@pytest.mark.parametrize(
    "overrides",
    [
        {"image_size": 100},
        {"layers": [1, 3]},
        {"decoder_blocks": [1, 1]},
        {"map_mode": "max"},
        {"loss_mode": "l2"},
        {"width_ratio": 0},
    ],
)
def test_invalid_settings_are_rejected(overrides):
    with pytest.raises(ConfigError):
        make_config("reverse_distillation", "quick", **overrides)


@pytest.mark.parametrize("output_relu", [True, False])
def test_student_output_relu_controls_the_sign_of_student_features(output_relu):
    """ResNet teachers are post-ReLU (the original's ReLU output fits); Lite0's features are half negative."""
    config = make_config("reverse_distillation", "quick", image_size=64, student_output_relu=output_relu)
    model = ReverseDistillationModel(config, pretrained=False).eval()
    with torch.no_grad():
        _, student = model.teacher_and_student(torch.randn(2, 3, 64, 64))
    negative = any(bool((s < 0).any()) for s in student)
    assert negative is not output_relu
