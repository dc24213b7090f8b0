"""DRAEM networks and configuration (Zavrtanik et al., "DRAEM - A discriminatively trained reconstruction
embedding for surface anomaly detection", ICCV 2021, arXiv 2108.07610; MIAD appendix A.2.4).

Idea: a reconstructive sub-network learns to turn images with synthetic anomalies (Perlin-noise shaped patches
of a foreign texture) back into the clean image; a discriminative sub-network sees the input and its
reconstruction side by side and learns to segment where they disagree. At test time the segmentation's anomaly
channel is the anomaly map.

Deviations from the original code (VitjanZ/DRAEM), documented next to their fields too:
- Images are RGB; the original reads them with OpenCV as BGR. Both networks are trained from scratch, so the
  channel order only matters when loading the original's weights (not supported).
- Without `anomaly_source` (a DTD folder), anomaly textures are generated procedurally (`textures.py`): no
  download. With it, DTD images are used as in the original.
- Texture augmentations: the seven operations MIAD's appendix lists (the original draws from ten imgaug ops,
  also gamma, invert and rotate), done with torchvision.transforms.v2 instead of the unmaintained imgaug; ranges
  follow the original's imgaug settings, brightness and hue/saturation changes approximated in RGB.
- Normal images are rotated by (-45, 45) degrees as A.2.4 says (the original: (-90, 90)), with the original's
  probability 0.3, which A.2.4 does not state.
- `paper` trains in float32 as the original (`amp=False`); `--set amp=true` runs the networks under bfloat16
  autocast on CUDA, the losses still in float32.
- SSIM's data range: `paper` as the original (loss.py ssim with val_range None: 2 when the reconstruction goes
  below -0.5, 255 when above 128, else 1); `--set ssim_data_range=1.0` fixes it at 1 (the earlier behaviour).
- `quick` (CPU) scores images with a 5 px window, the original's 21 px at 256 px scaled to 64 px.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from miad import ops
from miad.config import BaseConfig, _check
from miad.sources import ALL_IMAGES, DRAEM, HOLDOUT, SEED, THRESHOLD, cited_preset

AUGMENTATIONS = ("posterize", "sharpness", "solarize", "equalize", "brightness", "colour", "autocontrast")
DOWNSAMPLE = 32  # the discriminative U-Net pools 5 times: inputs must be a multiple of 2**5


@dataclass(frozen=True)
class DraemConfig(BaseConfig):
    # --- input: A.2.4 "zoomed to the input size of 256x256"; VitjanZ/DRAEM data_loader.py: [0,1], no ImageNet norm
    image_size: int = 256
    normalize: str = "none"
    # --- optimisation: A.2.4 700 epochs, batch 8, Adam lr 1e-4, x0.2 after epochs 560 and 630
    epochs: int = 700
    batch_size: int = 8
    optimizer: str = "adam"
    lr: float = 1e-4
    lr_milestones: tuple[int, ...] = (560, 630)
    lr_gamma: float = 0.2
    # --- networks (VitjanZ/DRAEM model_unet.py: reconstructive base width 128, discriminative base width 64)
    recon_base_width: int = 128
    disc_base_width: int = 64
    # --- anomaly synthesis (VitjanZ/DRAEM data_loader.py; sources per field in PAPER_SOURCES)
    anomaly_source: str | None = None  # folder of texture images (DTD: dtd/images); None = procedural textures
    anomaly_probability: float = 0.5  # share of training samples that receive a synthetic anomaly
    perlin_min_exponent: int = 0  # Perlin lattice scale per axis = 2**k, k uniform in [min, max]
    perlin_max_exponent: int = 5
    perlin_rotation: float = 90.0  # noise rotated by U(-r, r) degrees before thresholding
    perlin_threshold: float = 0.5  # mask = rotated noise > threshold
    beta_max: float = 0.8  # opacity of the normal image inside the mask: beta ~ U(0, beta_max)
    n_augmentations: int = 3  # A.2.4: 3 operations drawn from `augmentations`, applied to the texture
    augmentations: tuple[str, ...] = AUGMENTATIONS  # A.2.4's list
    rotate_probability: float = 0.3  # original code: 30 % of normal training images are rotated ...
    rotate_degrees: float = 45.0  # ... A.2.4: by an angle in (-45, 45) degrees
    # --- loss (A.2.4; VitjanZ/DRAEM loss.py): L2 + (1 - SSIM) on the reconstruction, focal loss on the segmentation
    ssim_window: int = 11
    ssim_sigma: float = 1.5
    ssim_data_range: float | None = 1.0  # None: the original's rule (losses.py original_data_range); else fixed
    focal_gamma: float = 2.0
    # --- scoring: image score = max of the k x k mean-filtered anomaly map (original test code: k = 21)
    score_kernel: int = 21

    def validate(self) -> None:
        super().validate()
        s = self.image_size
        _check(
            self.normalize == "none",
            "normalize",
            self.normalize,
            "'none' (synthesis, the [0,1] reconstruction target and SSIM's data range assume plain [0,1] images)",
        )
        _check(
            s % DOWNSAMPLE == 0 and s >= 2 * DOWNSAMPLE,
            "image_size",
            s,
            f"a multiple of {DOWNSAMPLE}, at least {2 * DOWNSAMPLE} (the U-Net pools 5 times; a 1x1 bottleneck "
            "breaks BatchNorm on a batch of one)",
        )
        _check(self.recon_base_width >= 1, "recon_base_width", self.recon_base_width, "an integer >= 1")
        _check(self.disc_base_width >= 1, "disc_base_width", self.disc_base_width, "an integer >= 1")
        _check(0.0 <= self.anomaly_probability <= 1.0, "anomaly_probability", self.anomaly_probability, "in [0, 1]")
        _check(
            0 <= self.perlin_min_exponent <= self.perlin_max_exponent,
            "perlin_min_exponent",
            self.perlin_min_exponent,
            f"in [0, perlin_max_exponent={self.perlin_max_exponent}]",
        )
        _check(
            2**self.perlin_max_exponent <= s,
            "perlin_max_exponent",
            self.perlin_max_exponent,
            f"at most log2(image_size={s})",
        )
        _check(0.0 <= self.beta_max < 1.0, "beta_max", self.beta_max, "in [0, 1)")
        unknown = [a for a in self.augmentations if a not in AUGMENTATIONS]
        _check(
            not unknown and len(set(self.augmentations)) == len(self.augmentations),
            "augmentations",
            self.augmentations,
            f"distinct names from {list(AUGMENTATIONS)}",
        )
        _check(
            0 <= self.n_augmentations <= len(self.augmentations),
            "n_augmentations",
            self.n_augmentations,
            f"in [0, len(augmentations)={len(self.augmentations)}]",
        )
        _check(0.0 <= self.rotate_probability <= 1.0, "rotate_probability", self.rotate_probability, "in [0, 1]")
        _check(self.ssim_window % 2 == 1, "ssim_window", self.ssim_window, "an odd integer")
        _check(
            self.ssim_data_range is None or self.ssim_data_range > 0, "ssim_data_range", self.ssim_data_range,
            "null (the original's rule) or > 0",
        )
        _check(self.score_kernel % 2 == 1, "score_kernel", self.score_kernel, "an odd integer")
        _check(
            not self.cache_features,
            "cache_features",
            self.cache_features,
            "false (DRAEM synthesises new anomalies every epoch)",
        )


_LOADER = f"{DRAEM} data_loader.py"
_TRAIN = f"{DRAEM} train_DRAEM.py"
# The paper preset: every field with its source (A.2.4, else the original code A.2.4 says it ran).
PAPER, PAPER_SOURCES = cited_preset(DraemConfig, {
    "image_size": (256, "MIAD A.2.4: training and testing images zoomed to 256x256"),
    "normalize": ("none", f"{_LOADER}: image / 255.0, no mean/std normalisation"),
    "resize": ("opencv", f"{_LOADER}: cv2.imread (full decode), cv2.resize (INTER_LINEAR, no antialias), images "
               "and anomaly-source textures alike"),
    "max_train_images": (None, ALL_IMAGES),
    "holdout_fraction": (0.1, HOLDOUT),
    "threshold_quantile": (0.99, THRESHOLD),
    "epochs": (700, f"MIAD A.2.4: trained for 700 epochs; {_TRAIN} saves the last epoch's weights (no selection)"),
    "batch_size": (8, "MIAD A.2.4: batch size 8 on 1 GPU"),
    "optimizer": ("adam", "MIAD A.2.4: Adam"),
    "lr": (1e-4, "MIAD A.2.4: learning rate 1e-4"),
    "weight_decay": (0.0, f"{_TRAIN}: torch.optim.Adam without weight decay"),
    "betas": ((0.9, 0.999), f"{_TRAIN}: torch.optim.Adam with default betas"),
    "lr_milestones": ((560, 630), "MIAD A.2.4: multiplied by 0.2 after 560 and 630 epochs"),
    "lr_gamma": (0.2, "MIAD A.2.4: multiplied by 0.2"),
    "grad_clip_norm": (None, f"{_TRAIN}: no gradient clipping"),
    "amp": (False, f"{_TRAIN}: float32 training (no autocast)"),
    "cache_features": (False, "miad: must be off, DRAEM synthesises new anomalies every epoch"),
    "seed": (0, SEED),
    "recon_base_width": (128, f"{DRAEM} model_unet.py: ReconstructiveSubNetwork base_width=128"),
    "disc_base_width": (64, f"{DRAEM} model_unet.py: DiscriminativeSubNetwork base_channels=64"),
    "anomaly_source": (None, f"miad: procedural textures without a download (textures.py); the original uses DTD "
                       f"images ({_LOADER}: anomaly_source_path/*/*.jpg): --set anomaly_source=/data/dtd/images"),
    "anomaly_probability": (0.5, f"{_LOADER}: augment_image, no anomaly when rand > 0.5"),
    "perlin_min_exponent": (0, f"{_LOADER}: min_perlin_scale 0"),
    "perlin_max_exponent": (5, f"{_LOADER}: perlin_scale 6, torch.randint(0, 6) -> scales 2**0 .. 2**5"),
    "perlin_rotation": (90.0, f"{_LOADER}: noise rotated by iaa.Affine(rotate=(-90, 90))"),
    "perlin_threshold": (0.5, f"{_LOADER}: threshold 0.5"),
    "beta_max": (0.8, f"{_LOADER}: beta = rand * 0.8"),
    "n_augmentations": (3, "MIAD A.2.4: a set of 3 random augmentation functions"),
    "augmentations": (AUGMENTATIONS, "MIAD A.2.4: posterize, sharpness, solarize, equalize, brightness change, "
                      "color change, auto-contrast"),
    "rotate_probability": (0.3, f"{_LOADER}: transform_image, rotated when rand > 0.7"),
    "rotate_degrees": (45.0, "MIAD A.2.4: rotation in (-45, 45) degrees on non-defective images"),
    "ssim_window": (11, f"{DRAEM} loss.py: SSIM window_size=11"),
    "ssim_sigma": (1.5, f"{DRAEM} loss.py: gaussian(window_size, 1.5)"),
    "ssim_data_range": (None, f"{DRAEM} loss.py: ssim(val_range=None), range from the reconstruction's values"),
    "focal_gamma": (2.0, f"{DRAEM} loss.py: FocalLoss gamma=2"),
    "score_kernel": (21, f"{DRAEM} test_DRAEM.py: avg_pool2d(21, stride=1, padding=10) before the max"),
})
PRESETS: dict[str, DraemConfig] = {
    "paper": PAPER,
    # CPU-sized (measured on the built-in mini-MIAD, ~25 CPU-seconds per scenario on one core): DRAEM trains both
    # networks from scratch, so this is a short run, far from the paper's 700 GPU epochs. Small step count ->
    # lr 1e-3 and batch 4 (twice the optimiser steps of batch 8 for the same cost); narrow networks at 64 px
    # (step time is overhead-bound on CPU, so width matters less than steps); Perlin scales up to 2**4 at 64 px.
    "quick": DraemConfig(
        image_size=64,
        epochs=7,
        batch_size=4,
        lr=1e-3,
        lr_milestones=(5,),
        recon_base_width=8,
        disc_base_width=8,
        perlin_max_exponent=4,
        score_kernel=5,  # the original's 21 px window at 256 px, scaled to 64 px (21 hid small defects here)
    ),
}


def _conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


def _block(c_in: int, c_mid: int, c_out: int | None = None) -> nn.Sequential:
    """Two 3x3 conv + BN + ReLU layers."""
    return nn.Sequential(*_conv_bn_relu(c_in, c_mid), *_conv_bn_relu(c_mid, c_out or c_mid))


def _up(c_in: int, c_out: int) -> nn.Sequential:
    """x2 bilinear upsampling followed by one conv + BN + ReLU (as the original, not a transposed conv)."""
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True), *_conv_bn_relu(c_in, c_out))


class ReconstructiveNet(nn.Module):
    """Encoder-decoder WITHOUT skip connections: widths b, 2b, 4b, 8b, 8b with 4 poolings, mirrored back."""

    def __init__(self, base: int, channels: int = 3) -> None:
        super().__init__()
        b = base
        widths = [b, 2 * b, 4 * b, 8 * b, 8 * b]
        ins = [channels] + widths[:-1]
        self.encoder = nn.ModuleList([_block(i, o) for i, o in zip(ins, widths)])
        self.pool = nn.MaxPool2d(2)
        # decoder stages: (up in -> up out, then block up out -> stage out)
        stages = [(8 * b, 8 * b, 4 * b), (4 * b, 4 * b, 2 * b), (2 * b, 2 * b, b), (b, b, b)]
        self.ups = nn.ModuleList([_up(c_in, c_mid) for c_in, c_mid, _ in stages])
        self.decoder = nn.ModuleList([_block(c_mid, c_mid, c_out) for _, c_mid, c_out in stages])
        self.head = nn.Conv2d(b, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, block in enumerate(self.encoder):
            x = block(x if i == 0 else self.pool(x))  # [B,w_i,S/2^i,S/2^i]
        for up, block in zip(self.ups, self.decoder):
            x = block(up(x))
        return self.head(x)  # [B,3,S,S], unbounded as the original


class DiscriminativeNet(nn.Module):
    """U-Net WITH skips: encoder b, 2b, 4b, 8b, 8b, 8b (5 poolings); 6-ch input, 2-ch logits."""

    def __init__(self, base: int, in_channels: int = 6, out_channels: int = 2) -> None:
        super().__init__()
        b = base
        widths = [b, 2 * b, 4 * b, 8 * b, 8 * b, 8 * b]
        ins = [in_channels] + widths[:-1]
        self.encoder = nn.ModuleList([_block(i, o) for i, o in zip(ins, widths)])
        self.pool = nn.MaxPool2d(2)
        outs = [8 * b, 4 * b, 2 * b, b, b]  # decoder widths, deepest first
        self.ups = nn.ModuleList([_up(c_in, c_out) for c_in, c_out in zip([8 * b, *outs[:-1]], outs)])
        skips = widths[-2::-1]  # encoder outputs joined at each decoder stage: 8b, 8b, 4b, 2b, b
        self.decoder = nn.ModuleList([_block(o + s, o) for o, s in zip(outs, skips)])
        self.head = nn.Conv2d(b, out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = []
        for i, block in enumerate(self.encoder):
            x = block(x if i == 0 else self.pool(x))
            feats.append(x)
        x = feats.pop()  # bottleneck [B,8b,S/32,S/32]
        for up, block in zip(self.ups, self.decoder):
            x = block(torch.cat([up(x), feats.pop()], dim=1))
        return self.head(x)  # [B,2,S,S] logits (channel 1 = anomaly)


class DraemModel(nn.Module):
    """Both sub-networks; forward returns (image scores, maps), `reconstruct_and_segment` what training needs."""

    def __init__(self, cfg: DraemConfig) -> None:
        super().__init__()
        self.reconstructive = ReconstructiveNet(cfg.recon_base_width)
        self.discriminative = DiscriminativeNet(cfg.disc_base_width)
        self.score_kernel = cfg.score_kernel
        self.apply(_init_weights)

    def reconstruct_and_segment(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        recon = self.reconstructive(images)  # [B,3,S,S]
        logits = self.discriminative(torch.cat([recon, images], dim=1))  # [B,2,S,S]
        return recon, logits

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[B,3,S,S] -> (scores [B]: max of the score_kernel mean of the map, maps [B,S,S]: P(anomaly))."""
        _, logits = self.reconstruct_and_segment(images)
        maps = torch.softmax(logits.float(), dim=1)[:, 1]  # [B,S,S] probability of "anomaly"
        return ops.max_score(ops.mean_filter(maps, self.score_kernel)), maps


def _init_weights(module: nn.Module) -> None:
    """Original init: conv weights N(0, 0.02); BatchNorm weight N(1, 0.02), bias 0."""
    if isinstance(module, nn.Conv2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
