"""FastFlow detector: the frozen backbone is the `encode` step (cacheable), the LayerNorms and flows are trained
with the shared loop in `miad.train` on the negative log-likelihood; see `model.py` for the method."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from miad.detector import GradientDetector
from miad.methods.fastflow.model import PRESETS, FastFlowConfig, FastFlowModel
from miad.registry import register


@register
class FastFlowDetector(GradientDetector):
    name = "fastflow"
    Config = FastFlowConfig
    PRESETS = PRESETS
    SMOKE: dict[str, Any] = {"image_size": 32, "epochs": 1, "weights": "random", "flow_steps": 2, "batch_size": 4}

    config: FastFlowConfig
    model: FastFlowModel

    def build(self, pretrained: bool) -> nn.Module:
        return FastFlowModel(self.config, pretrained)

    def encode(self, images: torch.Tensor) -> list[torch.Tensor]:
        return self.model.backbone(images)  # frozen features per scale, [B,C_i,H_i,W_i]

    def loss(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        return self.model.nll(list(inputs))

    def trainable_modules(self) -> list[nn.Module]:
        return [self.model.norms, self.model.flows]
