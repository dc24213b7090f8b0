"""Reverse Distillation detector: the frozen teacher is the `encode` step (cacheable), the OCBE and the student
decoder are trained by the shared loop with the cosine-distance loss, and `predict` sums the per-scale
1 - cosine maps, blurs them (sigma 4) and takes the maximum as the image score. See `model.py`."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from miad.detector import GradientDetector
from miad.methods.reverse_distillation.model import (
    PRESETS,
    ReverseDistillationConfig,
    ReverseDistillationModel,
    distillation_loss,
)
from miad.registry import register


@register
class ReverseDistillationDetector(GradientDetector):
    name = "reverse_distillation"
    Config = ReverseDistillationConfig
    PRESETS = PRESETS
    # 64 px keeps the embedding at 2x2, so training-mode BatchNorm always sees more than one value per channel.
    SMOKE: dict[str, Any] = {
        "image_size": 64,
        "epochs": 1,
        "weights": "random",
        "bottleneck_blocks": 1,
        "decoder_blocks": (1, 1, 1),
        "embed_ratio": 0.5,
    }

    config: ReverseDistillationConfig
    model: ReverseDistillationModel

    def build(self, pretrained: bool) -> nn.Module:
        return ReverseDistillationModel(self.config, pretrained)

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.model.teacher(images))  # [B,c_i,S/s_i,S/s_i] per level

    def loss(self, inputs: Any) -> torch.Tensor:
        teacher = list(inputs)
        return distillation_loss(teacher, self.model.student(teacher), self.config.loss_mode)

    def trainable_modules(self) -> list[nn.Module]:
        return [self.model.bottleneck, self.model.decoder]
