"""U-Net auto-encoder of MIAD appendix A.2.5: the MVTec AD auto-encoder baseline with a modified U-Net.

Idea: an auto-encoder trained on normal images only reconstructs normal appearance; the per-pixel
reconstruction error marks anomalies. A plain U-Net with skips at every level can copy its input through the
full-resolution skips and learns the identity, which detects nothing. Our modification: skip connections only
from levels of stride >= `min_skip_stride` (16 by default: a 256-px image gives one 16x16 skip map, too
coarse to carry a defect's pixels), each skip squeezed by a 1x1 convolution to `skip_channels` and dropped out
with `skip_dropout` during training, and a narrow bottleneck (`latent_channels` at stride 32). Fine detail must
therefore be rebuilt from what was learnt on normal images. Tested: a pasted unseen defect is not reproduced.

Deviations: the MVTec AD paper's SSIM-AE is a plain conv stack at 128 px; the MIAD appendix replaces it with a
modified U-Net and fixes only input size, normalisation, epochs, batch, Adam lr and weight decay. The map is
smoothed with a Gaussian (sigma `map_sigma`, as RD and PatchCore) and the image score is its maximum.
The map is the per-pixel L2 error by default (`loss="l2"`, trained with MSE) or 1 - SSIM (`loss="ssim"`, trained
with the SSIM loss, the MVTec AD SSIM-AE variant); the `quick` preset uses SSIM (see its comment for why).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from miad import ops
from miad.config import BaseConfig, _check
from miad.sources import ALL_IMAGES, HOLDOUT, SEED, THRESHOLD, cited_preset


@dataclass(frozen=True)
class UNetAEConfig(BaseConfig):
    # --- input (A.2.5: "normalized by a mean of 0.5 and a standard deviation of 0.5", 256 x 256)
    image_size: int = 256
    normalize: str = "half"
    # --- network (the appendix is silent: our modified U-Net, see module docstring)
    base_width: int = 32  # channels of the first level, doubled per level up to 8x
    depth: int = 5  # number of stride-2 levels: 256 px -> 8 x 8 bottleneck
    latent_channels: int = 64  # bottleneck channels at stride 2**depth
    min_skip_stride: int = 16  # skips only from levels this coarse or coarser
    skip_channels: int = 16  # 1x1 squeeze of every skip
    skip_dropout: float = 0.5  # drop skip features during training
    # --- loss and scoring
    loss: str = "l2"  # l2 | ssim (the two MVTec AD auto-encoder variants)
    map_sigma: float = 4.0  # Gaussian smoothing of the error map
    # --- optimisation (A.2.5)
    epochs: int = 100
    batch_size: int = 16
    lr: float = 1e-4
    weight_decay: float = 5e-4

    def validate(self) -> None:
        super().validate()
        _check(self.base_width >= 1 and self.latent_channels >= 1, "base_width/latent_channels",
               (self.base_width, self.latent_channels), "integers >= 1")
        _check(1 <= self.depth <= 7, "depth", self.depth, "an integer in [1, 7]")
        _check(self.image_size % (2 ** self.depth) == 0, "image_size", self.image_size,
               f"a multiple of 2**depth = {2 ** self.depth}")
        _check(self.loss in ("l2", "ssim"), "loss", self.loss, "'l2' or 'ssim'")
        _check(0.0 <= self.skip_dropout < 1.0, "skip_dropout", self.skip_dropout, "in [0, 1)")
        _check(self.min_skip_stride >= 2, "min_skip_stride", self.min_skip_stride, ">= 2 (no full-resolution skip)")


_OWN_NET = "miad: A.2.5 names only 'a modified U-Net' and MIAD published no code; our network (module docstring)"
# The paper preset: every field with its source (A.2.5; MIAD's own implementation is not public).
PAPER, PAPER_SOURCES = cited_preset(UNetAEConfig, {
    "image_size": (256, "MIAD A.2.5: training and testing images zoomed to 256x256, no other augmentation"),
    "normalize": ("half", "MIAD A.2.5: RGB normalised by a mean of 0.5 and a standard deviation of 0.5"),
    "resize": ("opencv", "miad: full decode and OpenCV bilinear, like the anomalib pipeline MIAD ran RD and PatchCore "
               "in (an assumption: A.2.5 is silent; --set resize=pil_draft for the quick way)"),
    "max_train_images": (None, ALL_IMAGES),
    "holdout_fraction": (0.1, HOLDOUT),
    "threshold_quantile": (0.99, THRESHOLD),
    "epochs": (100, "MIAD A.2.5: run for 100 epochs"),
    "batch_size": (16, "MIAD A.2.5: batch size 16 on 1 GPU"),
    "optimizer": ("adam", "MIAD A.2.5: Adam"),
    "lr": (1e-4, "MIAD A.2.5: learning rate 0.0001"),
    "weight_decay": (5e-4, "MIAD A.2.5: weight decay 0.0005"),
    "betas": ((0.9, 0.999), "miad: Adam's default betas (A.2.5 states none)"),
    "lr_milestones": ((), "miad: constant learning rate (A.2.5 states no schedule)"),
    "lr_gamma": (0.1, "miad: unused without lr_milestones"),
    "grad_clip_norm": (None, "miad: no clipping (A.2.5 states none)"),
    "amp": (False, "miad: float32, as the MVTec AD auto-encoders A.2.5 follows (it states no mixed precision)"),
    "cache_features": (False, "miad: speed only; 10,000 decoded MIAD images at 256 px would not fit in memory"),
    "seed": (0, SEED),
    "base_width": (32, _OWN_NET),
    "depth": (5, _OWN_NET + ": 256 px -> 8 x 8 bottleneck"),
    "latent_channels": (64, _OWN_NET),
    "min_skip_stride": (16, _OWN_NET + ": no skip finer than 1/16, so the U-Net cannot copy its input"),
    "skip_channels": (16, _OWN_NET),
    "skip_dropout": (0.5, _OWN_NET),
    "loss": ("l2", "miad: the MVTec AD L2 auto-encoder variant (A.2.5 follows MVTec AD and names no loss)"),
    "map_sigma": (4.0, "miad: Gaussian smoothing of the error map, as RD and PatchCore (A.2.5 is silent)"),
})
PRESETS = {
    "paper": PAPER,
    # CPU-sized (trained from scratch, no pretrained backbone exists for it). 64 px with the paper geometry scaled
    # down: depth 3 gives the same 8 x 8 bottleneck and a 16 x 16 skip map (stride 4 here, 16 at 256 px). The
    # SSIM loss and map (the MVTec AD SSIM-AE variant) replace L2: an L2 auto-encoder this small and short reproduces
    # colour but not structure, so its error peaks on every rust or cell edge of a normal image (built-in data,
    # seed 0, image AUROC L2 -> SSIM: metal_welding 44.8 -> 73.9, photovoltaic 63.7 -> 91.5). 40 epochs at
    # batch 8 (~480 steps) and the decoded images cached across epochs fit in ~25 s per scenario on 2 cores.
    "quick": UNetAEConfig(image_size=64, base_width=8, depth=3, latent_channels=32, min_skip_stride=4,
                          skip_channels=8, loss="ssim", map_sigma=2.0, epochs=40, batch_size=8, lr=2e-3,
                          weight_decay=0.0, cache_features=True),
}


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, inplace=True),
    )


class UNetAE(nn.Module):
    """Encoder of `depth` stride-2 levels, narrow bottleneck, decoder with coarse, squeezed, dropped-out skips."""

    def __init__(self, cfg: UNetAEConfig) -> None:
        super().__init__()
        widths = [cfg.base_width * min(2**i, 8) for i in range(cfg.depth + 1)]  # level i has stride 2**i
        self.stem = _block(3, widths[0])
        self.down = nn.ModuleList(
            nn.Sequential(nn.Conv2d(widths[i], widths[i + 1], 4, stride=2, padding=1), _block(widths[i + 1],
                          widths[i + 1])) for i in range(cfg.depth)
        )
        self.to_latent = nn.Conv2d(widths[-1], cfg.latent_channels, 1)
        self.loss, self.map_sigma = cfg.loss, cfg.map_sigma
        self.from_latent = nn.Sequential(nn.Conv2d(cfg.latent_channels, widths[-1], 1), nn.LeakyReLU(0.2, True))
        self.skip_levels = [i for i in range(cfg.depth) if 2**i >= cfg.min_skip_stride]
        self.squeeze = nn.ModuleDict({str(i): nn.Conv2d(widths[i], cfg.skip_channels, 1) for i in self.skip_levels})
        self.drop = nn.Dropout2d(cfg.skip_dropout)
        self.up = nn.ModuleList(nn.ConvTranspose2d(widths[i + 1], widths[i], 4, stride=2, padding=1)
                                for i in range(cfg.depth))
        self.fuse = nn.ModuleList(
            _block(widths[i] + (cfg.skip_channels if i in self.skip_levels else 0), widths[i])
            for i in range(cfg.depth)
        )
        self.head = nn.Conv2d(widths[0], 3, 1)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:  # [B,3,S,S] in [-1,1] -> same
        feats = [self.stem(x)]
        for down in self.down:
            feats.append(down(feats[-1]))  # level i: [B,w_i,S/2^i,S/2^i]
        h = self.from_latent(self.to_latent(feats[-1]))
        for i in reversed(range(len(self.up))):
            h = self.up[i](h)
            if i in self.skip_levels:
                h = torch.cat([h, self.drop(self.squeeze[str(i)](feats[i]))], dim=1)
            h = self.fuse[i](h)
        return torch.tanh(self.head(h))

    def error_map(self, images: torch.Tensor) -> torch.Tensor:
        """Unsmoothed per-pixel reconstruction error [B,S,S]."""
        recon = self.reconstruct(images)
        if self.loss == "ssim":
            return 1 - ops.ssim_map((recon + 1) / 2, (images + 1) / 2)
        return (recon - images).pow(2).mean(1)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[B,3,S,S] -> (scores [B] = maxima of the blurred error maps, maps [B,S,S])."""
        maps = ops.gaussian_blur(self.error_map(images), self.map_sigma)
        return ops.max_score(maps), maps
