"""DRAEM detector: synthetic anomalies in `encode`, the joint loss in `loss`, softmax anomaly channel as the map.

The shared loop (miad.train) calls `encode` on every batch of every epoch under no_grad: that is where the
normal images receive their synthetic anomalies (fresh ones each epoch; torch's global RNG, which the loop seeds
and saves, drives them, so runs are reproducible and resumable; each distributed rank draws its own).
Validation on held-out normals uses the same synthesis under the loop's fixed validation seed.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from miad.detector import GradientDetector
from miad.methods.draem.losses import draem_loss
from miad.methods.draem.model import PRESETS, DraemConfig, DraemModel
from miad.methods.draem.synthesis import AnomalySynthesizer
from miad.registry import register


@register
class DraemDetector(GradientDetector):
    name = "draem"
    Config = DraemConfig
    PRESETS = PRESETS
    SMOKE = {
        "image_size": 64,
        "epochs": 1,
        "batch_size": 4,
        "recon_base_width": 4,
        "disc_base_width": 4,
        "perlin_max_exponent": 3,
        "lr_milestones": [],
    }

    config: DraemConfig
    _synthesizer: AnomalySynthesizer | None = None

    def build(self, pretrained: bool) -> nn.Module:
        # DRAEM has no pretrained part: both sub-networks are trained from scratch.
        return DraemModel(self.config)

    @property
    def synthesizer(self) -> AnomalySynthesizer:
        """Created on first use, so a checkpoint loads where the anomaly_source folder does not exist."""
        if self._synthesizer is None:
            self._synthesizer = AnomalySynthesizer(self.config)
        return self._synthesizer

    def _fit(self, train: Any, val: Any, **options: Any) -> None:
        self.synthesizer  # noqa: B018  (a wrong anomaly_source fails now, not after the first batch loads)
        super()._fit(train, val, **options)

    def run_notes(self) -> dict[str, Any]:
        """result.json marks runs on procedural textures (the original requires DTD; README: DRAEM textures)."""
        return {"anomaly_source": self.config.anomaly_source or "procedural"}

    def trainable_modules(self) -> list[nn.Module]:
        return [self.model]

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Normal images [B,3,S,S] in [0,1] -> (augmented input, clean target, anomaly mask [B,S,S])."""
        batch = self.synthesizer(images, synthesis_generator())
        return batch.augmented, batch.clean, batch.mask

    def loss(self, inputs: Any) -> torch.Tensor:
        augmented, clean, mask = inputs
        recon, logits = self.model.reconstruct_and_segment(augmented)
        cfg = self.config
        return draem_loss(recon, logits, clean, mask, cfg.ssim_window, cfg.ssim_sigma, cfg.focal_gamma,
                          cfg.ssim_data_range)


def synthesis_generator() -> torch.Generator:
    """A CPU generator for one batch's synthesis, seeded from torch's global RNG, which the training loop seeds
    (per torchrun rank, so ranks paste different anomalies into their slices) and saves (runs stay reproducible
    and resumable); validation reseeds it alike on every rank, so all ranks score the same anomalies."""
    return torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,))))
