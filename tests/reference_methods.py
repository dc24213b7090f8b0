"""Two trivial reference detectors used only by the tests, to exercise the core without the real methods.

- ref_mean: distance of each location's backbone feature to the mean training feature (fit without gradients).
- ref_ae: a tiny convolutional auto-encoder trained with the shared loop (gradient path, resume, caching).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from miad import ops
from miad.backbones import FeatureExtractor
from miad.config import BaseConfig
from miad.detector import Detector, GradientDetector
from miad.registry import register


@dataclass(frozen=True)
class RefMeanConfig(BaseConfig):
    image_size: int = 32
    backbone: str = "efficientnet_lite0"
    weights: str = "random"


class _MeanModel(nn.Module):
    def __init__(self, cfg: RefMeanConfig, pretrained: bool) -> None:
        super().__init__()
        self.backbone = FeatureExtractor(cfg.backbone, (1, 2), cfg.weights if pretrained else "random")
        self.register_buffer("mean", torch.zeros(sum(self.backbone.channels), 1, 1))
        self.image_size = cfg.image_size

    def features(self, images: torch.Tensor) -> torch.Tensor:
        f1, f2 = self.backbone(images)
        return torch.cat([f1, ops.upsample(f2, f1.shape[-2:])], dim=1)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        d = (self.features(images) - self.mean).pow(2).sum(1).sqrt()
        maps = ops.upsample(d, self.image_size)
        return ops.max_score(maps), maps


@register
class RefMeanDetector(Detector):
    name = "ref_mean"
    Config = RefMeanConfig
    PRESETS = {"quick": RefMeanConfig(), "paper": RefMeanConfig(image_size=64)}
    SMOKE = {"image_size": 32}

    def build(self, pretrained: bool) -> nn.Module:
        return _MeanModel(self.config, pretrained)

    def _fit(self, train, val, **options) -> None:
        total, count = 0.0, 0
        for batch in torch.utils.data.DataLoader(train, batch_size=self.config.batch_size):
            f = self.model.features(batch["image"].to(self.device))
            total, count = total + f.sum(dim=(0, 2, 3)), count + f.shape[0] * f.shape[2] * f.shape[3]
        self.model.mean.copy_((total / count).view(-1, 1, 1))


@dataclass(frozen=True)
class RefAEConfig(BaseConfig):
    image_size: int = 32
    normalize: str = "half"
    epochs: int = 3
    batch_size: int = 4
    lr: float = 1e-3
    width: int = 8


class _AEModel(nn.Module):
    def __init__(self, w: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, w, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(w, w, 3, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(w, w, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(w, 3, 4, stride=2, padding=1),
        )

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        maps = (self.net(images) - images).pow(2).mean(1)
        return ops.max_score(maps), maps


@register
class RefAEDetector(GradientDetector):
    name = "ref_ae"
    Config = RefAEConfig
    PRESETS = {"quick": RefAEConfig(), "paper": RefAEConfig(epochs=10)}
    SMOKE = {"epochs": 2}

    def build(self, pretrained: bool) -> nn.Module:
        return _AEModel(self.config.width)

    def trainable_modules(self) -> list[nn.Module]:
        return [self.model]

    def loss(self, images: torch.Tensor) -> torch.Tensor:
        return (self.model.net(images) - images).pow(2).mean()
