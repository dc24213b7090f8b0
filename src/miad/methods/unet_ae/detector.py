"""Fit/predict wrapper of the U-Net auto-encoder (see model.py for the method and its deviations)."""

from __future__ import annotations

import torch
from torch import nn

from miad import ops
from miad.detector import GradientDetector
from miad.methods.unet_ae.model import PRESETS, UNetAE, UNetAEConfig
from miad.registry import register


@register
class UNetAEDetector(GradientDetector):
    name = "unet_ae"
    Config = UNetAEConfig
    PRESETS = PRESETS
    SMOKE = {"image_size": 32, "depth": 3, "base_width": 4, "latent_channels": 4, "skip_channels": 2,
             "min_skip_stride": 4, "epochs": 1}

    def build(self, pretrained: bool) -> nn.Module:
        return UNetAE(self.config)  # trained from scratch: no pretrained weights

    def trainable_modules(self) -> list[nn.Module]:
        return [self.model]

    def loss(self, images: torch.Tensor) -> torch.Tensor:
        recon = self.model.reconstruct(images)
        if self.config.loss == "ssim":
            return 1 - ops.ssim_map((recon + 1) / 2, (images + 1) / 2, stable=False).mean()  # a loss: fast form
        return (recon - images).pow(2).mean()
