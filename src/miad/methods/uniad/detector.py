"""UniAD detector: trains the reconstruction transformer with the shared loop on cached frozen features.

Nothing here depends on the number of categories: fit on Samples of one scenario (per-scenario model) or of
all scenarios together (the unified model UniAD is designed for) in the same way.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from miad.detector import GradientDetector
from miad.methods.uniad.model import PRESETS, UniADConfig, UniADModel
from miad.registry import register


@register
class UniADDetector(GradientDetector):
    name = "uniad"
    Config = UniADConfig
    PRESETS = PRESETS
    # 32 px -> 2x2 tokens, so the neighbourhood shrinks to the token itself
    SMOKE = {
        "image_size": 32,
        "weights": "random",
        "epochs": 1,
        "batch_size": 4,
        "neighbor_size": 1,
        "score_pool": 8,
        "hidden_dim": 16,
        "num_heads": 2,
        "ffn_dim": 32,
        "encoder_layers": 1,
        "decoder_layers": 1,
    }

    config: UniADConfig
    model: UniADModel

    def build(self, pretrained: bool) -> nn.Module:
        return UniADModel(self.config, pretrained)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.features(images)  # [B,C,g,g], frozen: cached across epochs with cache_features

    def loss(self, features: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(self.model.reconstruct(features), features)

    def trainable_modules(self) -> list[nn.Module]:
        return [self.model.reconstruction]
