"""DRAEM networks, presets and config validation."""

from __future__ import annotations

import pytest
import torch

from miad.errors import ConfigError
from miad.methods.draem.model import PRESETS, DiscriminativeNet, DraemConfig, DraemModel, ReconstructiveNet


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_paper_preset_is_appendix_a24():
    cfg = PRESETS["paper"]
    assert (cfg.image_size, cfg.epochs, cfg.batch_size) == (256, 700, 8)
    assert (cfg.optimizer, cfg.lr, cfg.lr_milestones, cfg.lr_gamma) == ("adam", 1e-4, (560, 630), 0.2)
    assert cfg.normalize == "none" and cfg.anomaly_source is None
    assert set(cfg.augmentations) == {
        "posterize",
        "sharpness",
        "solarize",
        "equalize",
        "brightness",
        "colour",
        "autocontrast",
    }
    assert cfg.n_augmentations == 3 and cfg.rotate_degrees == 45.0
    assert (cfg.recon_base_width, cfg.disc_base_width) == (128, 64)
    assert (cfg.beta_max, cfg.anomaly_probability, cfg.perlin_threshold) == (0.8, 0.5, 0.5)
    assert (cfg.perlin_min_exponent, cfg.perlin_max_exponent) == (0, 5)
    assert (cfg.ssim_window, cfg.ssim_sigma, cfg.focal_gamma, cfg.score_kernel) == (11, 1.5, 2.0, 21)


def test_paper_sized_networks_have_the_original_parameter_counts():
    with torch.device("meta"):  # no memory, no init cost
        model = DraemModel(PRESETS["paper"])
    # VitjanZ/DRAEM: ReconstructiveSubNetwork(base 128) and DiscriminativeSubNetwork(base 64)
    assert _count(model.reconstructive) == 69_048_579
    assert _count(model.discriminative) == 28_374_146


def test_shapes_and_the_discriminator_sees_reconstruction_then_input():
    model = DraemModel(DraemConfig(image_size=64, recon_base_width=4, disc_base_width=4)).eval()
    seen = {}
    model.discriminative.register_forward_pre_hook(lambda m, args: seen.update(x=args[0]))
    images = torch.rand(2, 3, 64, 64)
    recon, logits = model.reconstruct_and_segment(images)
    assert recon.shape == (2, 3, 64, 64) and logits.shape == (2, 2, 64, 64)
    assert torch.equal(seen["x"][:, :3], recon) and torch.equal(seen["x"][:, 3:], images)


def test_the_reconstructive_network_has_no_skip_connections():
    # without skips, the output depends on the input only through the 1/16 bottleneck: a change confined to
    # one pixel moves outputs far away (through the bottleneck) yet the decoder never sees full-resolution input
    net = ReconstructiveNet(4).eval()
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs[0].in_channels == 3 and convs[-1].out_channels == 3
    decoder_inputs = [block[0].in_channels for block in net.decoder]
    assert decoder_inputs == [32, 16, 8, 4]  # each decoder block takes only its upsampled input, no concatenation
    unet = DiscriminativeNet(4).eval()
    assert [block[0].in_channels for block in unet.decoder] == [64, 48, 24, 12, 8]  # up + skip channels


def test_initialisation_follows_the_original():
    model = DraemModel(DraemConfig(image_size=64, recon_base_width=16, disc_base_width=16))
    conv = torch.cat([m.weight.flatten() for m in model.modules() if isinstance(m, torch.nn.Conv2d)])
    bn = torch.cat([m.weight for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)])
    bias = torch.cat([m.bias for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)])
    assert abs(conv.std().item() - 0.02) < 0.002 and abs(conv.mean().item()) < 0.002
    assert abs(bn.mean().item() - 1) < 0.005 and abs(bn.std().item() - 0.02) < 0.005
    assert torch.equal(bias, torch.zeros_like(bias))


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"image_size": 48}, "image_size"),
        ({"image_size": 32}, "image_size"),
        ({"normalize": "imagenet"}, "normalize"),
        ({"cache_features": True}, "cache_features"),
        ({"augmentations": ("posterize", "blur")}, "augmentations"),
        ({"n_augmentations": 8}, "n_augmentations"),
        ({"beta_max": 1.0}, "beta_max"),
        ({"image_size": 64, "perlin_max_exponent": 7}, "perlin_max_exponent"),
        ({"ssim_window": 10}, "ssim_window"),
    ],
)
def test_invalid_settings_name_the_key_and_the_expectation(overrides, key):
    with pytest.raises(ConfigError, match=f"{key}=.*expected"):
        DraemConfig(**overrides)


def test_quick_preset_is_cpu_sized():
    cfg = PRESETS["quick"]
    assert cfg.image_size <= 128 and cfg.epochs <= 20
    assert cfg.recon_base_width <= 32 and cfg.disc_base_width <= 16
