"""UniAD: A Unified Model for Multi-class Anomaly Detection (You et al., NeurIPS 2022, arXiv 2206.03687).

Idea: a transformer reconstructs frozen multi-scale CNN features; the reconstruction error is the anomaly map.
Three devices keep the reconstruction from learning the identity ("identical shortcut"), which lets one model
serve many categories: each token may not attend to its own 7x7 neighbourhood, every decoder layer has its own
learnable query, and training adds noise to the input features (feature jitter).

Settings: MIAD appendix A.2.6 for the `paper` preset; the original code (zhiyuanyou/UniAD @ a5b9d9d,
experiments/MVTec-AD/config.yaml and models/) where it is silent; each field's source in PAPER_SOURCES.
Deviations:
- `batch_size` is the global batch (64 = 8 GPUs x 8 in the paper); distributed training splits it per GPU.
- Normal training images kept out of training (`holdout_fraction`, a core rule) and, by default, never a
  best-on-test checkpoint (the original keeps one): the last epoch's weights are used (`--protocol
  paper-selection` keeps the original's best-on-test one, marked "selected on test": miad.selection).
- The image score's 16x16 average pooling uses miad.ops.mean_filter (zero padding); for non-negative maps at
  least 16 pixels wide its maximum equals the original's unpadded pooling (every partial window lies inside a
  full one).
- `quick` is a CPU-sized stand-in, not a reproduction: Lite0 at 128 px, a 2+2-layer 64-wide transformer without
  dropout, 40 epochs (details at the preset). Per-scenario models there are under-trained; the unified model
  (7x the steps) scores higher on the built-in mini-MIAD.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from miad import ops
from miad.backbones import FeatureExtractor
from miad.config import BaseConfig, _check
from miad.methods.uniad.transformer import Reconstruction
from miad.sources import ALL_IMAGES, HOLDOUT, SEED, THRESHOLD, UNIAD, cited_preset


@dataclass(frozen=True)
class UniADConfig(BaseConfig):
    # --- input (A.2.6: 224x224, no augmentation; original: ImageNet mean/std)
    image_size: int = 224
    normalize: str = "imagenet"
    # --- optimisation (A.2.6: AdamW lr 1e-4, weight decay 1e-4, x0.1 after epoch 400, 500 epochs, batch 64)
    epochs: int = 500
    batch_size: int = 64  # global batch: 8 GPUs x 8 per GPU (original config: batch_size 8 per process)
    optimizer: str = "adamw"
    lr: float = 1e-4
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)  # original config
    lr_milestones: tuple[int, ...] = (400,)
    lr_gamma: float = 0.1
    grad_clip_norm: float | None = 0.1  # original config: trainer.clip_max_norm 0.1
    # --- frozen backbone (A.2.6: EfficientNet-b4, stages 1-4 = timm levels 0..3, 24+32+56+160 = 272 channels)
    backbone: str = "tf_efficientnet_b4"
    layers: tuple[int, ...] = (0, 1, 2, 3)
    # "imagenet": WRN50 = timm wide_resnet50_2.racm_in1k (timm 0.5.4 default, as MIAD ran; backbones.py) | "torchvision"
    # (WRN50 IMAGENET1K_V1, the earlier default) | "random" | path to a state dict
    weights: str = "imagenet"
    feature_stride: int = 16  # every level resized (bilinear, align_corners) to this stride (original MFCN neck)
    # --- reconstruction transformer (original config)
    hidden_dim: int = 256
    num_heads: int = 8
    encoder_layers: int = 4
    decoder_layers: int = 4
    ffn_dim: int = 1024
    dropout: float = 0.1
    neighbor_size: int = 7  # a token may not attend to its own 7x7 neighbourhood; 0 = no mask
    neighbor_mask: tuple[bool, bool, bool] = (True, True, True)  # mask in [encoder, decoder 1st, decoder 2nd]
    # --- feature jitter (original config; training only)
    jitter_scale: float = 20.0
    jitter_prob: float = 1.0
    # --- scoring (original "max" evaluator: max of the 16x16 average-pooled map)
    score_pool: int = 16
    # --- initialisation: True = as the original (models/reconstructions/uniad.py _get_clones deep-copies one layer,
    # then models/initializer.py re-initialises every Linear with xavier): attention in-projections and learned
    # queries start identical across layers, the rest independent. False: every layer independent.
    shared_layer_init: bool = False

    @property
    def grid(self) -> int:
        """Side of the token grid (14 for 224 input at stride 16)."""
        return self.image_size // self.feature_stride

    def validate(self) -> None:
        super().validate()
        _check(self.feature_stride in (2, 4, 8, 16, 32), "feature_stride", self.feature_stride, "2, 4, 8, 16 or 32")
        _check(
            self.image_size % self.feature_stride == 0,
            "image_size",
            self.image_size,
            f"a multiple of feature_stride={self.feature_stride}",
        )
        _check(
            len(self.layers) >= 1 and all(0 <= i <= 4 for i in self.layers),
            "layers",
            self.layers,
            "backbone levels in 0..4 (EfficientNet stages 1-4 = [0, 1, 2, 3])",
        )
        _check(
            self.hidden_dim >= 2 and self.hidden_dim % self.num_heads == 0,
            "hidden_dim",
            self.hidden_dim,
            f"an even multiple of num_heads={self.num_heads}",
        )
        _check(self.num_heads >= 1, "num_heads", self.num_heads, "an integer >= 1")
        _check(self.encoder_layers >= 1, "encoder_layers", self.encoder_layers, "an integer >= 1")
        _check(self.decoder_layers >= 1, "decoder_layers", self.decoder_layers, "an integer >= 1")
        _check(self.ffn_dim >= 1, "ffn_dim", self.ffn_dim, "an integer >= 1")
        _check(0.0 <= self.dropout < 1.0, "dropout", self.dropout, "in [0, 1)")
        _check(self.jitter_scale >= 0, "jitter_scale", self.jitter_scale, ">= 0")
        _check(0.0 <= self.jitter_prob <= 1.0, "jitter_prob", self.jitter_prob, "in [0, 1]")
        _check(
            1 <= self.score_pool <= self.image_size,
            "score_pool",
            self.score_pool,
            f"an integer in [1, image_size={self.image_size}]",
        )
        window = 2 * (self.neighbor_size // 2) + 1
        _check(
            self.neighbor_size == 0 or (self.neighbor_size > 0 and self.grid > window),
            "neighbor_size",
            self.neighbor_size,
            f"0 (no mask) or a size whose window ({window}) is smaller than the token grid "
            f"(image_size/feature_stride = {self.grid}), else some token could attend to nothing; "
            "raise image_size or lower neighbor_size",
        )


_CONFIG = f"{UNIAD} experiments/MVTec-AD/config.yaml"
# The paper preset: every field with its source (A.2.6, else the original code as A.2.6 says).
PAPER, PAPER_SOURCES = cited_preset(UniADConfig, {
    "image_size": (224, "MIAD A.2.6: training and testing images zoomed to 224x224, no data augmentation"),
    "normalize": ("imagenet", f"{_CONFIG}: pixel_mean / pixel_std (ImageNet)"),
    "resize": ("pil", f"{UNIAD} datasets/image_reader.py: cv2.imread (full decode); datasets/base_dataset.py: "
               "torchvision Resize(BILINEAR) on a PIL image (antialiased)"),
    "max_train_images": (None, ALL_IMAGES),
    "holdout_fraction": (0.1, HOLDOUT),
    "threshold_quantile": (0.99, THRESHOLD),
    "epochs": (500, "MIAD A.2.6: trained for 500 epochs; the original's best-on-test checkpoint is opt-in here: "
               "--protocol paper-selection"),
    "batch_size": (64, "MIAD A.2.6: batch size 64 on 8 GPUs (the global batch; the original config's batch_size 8 "
                   "is per process)"),
    "optimizer": ("adamw", "MIAD A.2.6: AdamW"),
    "lr": (1e-4, "MIAD A.2.6: learning rate 0.0001"),
    "weight_decay": (1e-4, "MIAD A.2.6: weight decay 0.0001"),
    "betas": ((0.9, 0.999), f"{_CONFIG}: optimizer betas [0.9, 0.999]"),
    "lr_milestones": ((400,), "MIAD A.2.6: dropped after 400 epochs"),
    "lr_gamma": (0.1, "MIAD A.2.6: dropped by 0.1"),
    "grad_clip_norm": (0.1, f"{_CONFIG}: trainer.clip_max_norm 0.1"),
    "amp": (False, f"{UNIAD} tools/train_val.py: float32 training (no autocast)"),
    "cache_features": (False, "miad: speed only; backbone features of 10,000 MIAD images would not fit in memory"),
    "seed": (0, SEED),
    "backbone": ("tf_efficientnet_b4", "MIAD A.2.6: a pretrained EfficientNet-b4"),
    "layers": ((0, 1, 2, 3), "MIAD A.2.6: feature maps of stage-1 to stage-4 (272 channels)"),
    "weights": ("imagenet", f"{UNIAD} models/backbones/efficientnet/utils.py: the ImageNet efficientnet-b4 file; "
                "miad loads timm's tf_efficientnet_b4.aa_in1k of the same lineage (miad.backbones)"),
    "feature_stride": (16, f"{_CONFIG}: neck MFCN outstrides [16] (models/necks/mfcn.py UpsamplingBilinear2d)"),
    "hidden_dim": (256, f"{_CONFIG}: reconstruction hidden_dim 256"),
    "num_heads": (8, f"{_CONFIG}: reconstruction nhead 8"),
    "encoder_layers": (4, f"{_CONFIG}: reconstruction num_encoder_layers 4"),
    "decoder_layers": (4, f"{_CONFIG}: reconstruction num_decoder_layers 4"),
    "ffn_dim": (1024, f"{_CONFIG}: reconstruction dim_feedforward 1024"),
    "dropout": (0.1, f"{_CONFIG}: reconstruction dropout 0.1"),
    "neighbor_size": (7, f"{_CONFIG}: neighbor_mask neighbor_size [7, 7]"),
    "neighbor_mask": ((True, True, True), f"{_CONFIG}: neighbor_mask mask [True, True, True]"),
    "jitter_scale": (20.0, f"{_CONFIG}: feature_jitter scale 20.0"),
    "jitter_prob": (1.0, f"{_CONFIG}: feature_jitter prob 1.0"),
    "score_pool": (16, f"{_CONFIG}: evaluator auc 'max' with avgpool_size [16, 16]"),
    "shared_layer_init": (True, f"{UNIAD} models/reconstructions/uniad.py: _get_clones deep-copies one layer, then "
                          "models/initializer.py re-initialises every Linear (xavier_uniform)"),
})
PRESETS: dict[str, UniADConfig] = {
    "paper": PAPER,
    # CPU-sized (about 15 s fit + predict per built-in scenario on 2 cores): EfficientNet-Lite0 (real ImageNet
    # weights offline; levels 0..3 = 16+24+40+112 = 192 channels) at 128 px -> 8x8 tokens, where a 5x5
    # neighbourhood masks about half the grid's width as 7x7 does at 14x14; score pooling scaled to 9 px
    # (16 * 128 / 224). A smaller transformer without dropout (attention dropout alone took ~40 % of a CPU step),
    # 40 epochs at a larger lr, dropped x0.1 at 80 % of training as the paper's 400 of 500; features cached.
    "quick": dataclasses.replace(
        UniADConfig(),
        backbone="efficientnet_lite0",
        image_size=128,
        neighbor_size=5,
        score_pool=9,
        hidden_dim=64,
        num_heads=4,
        ffn_dim=128,
        encoder_layers=2,
        decoder_layers=2,
        dropout=0.0,
        epochs=40,
        batch_size=8,
        lr=2e-3,
        lr_milestones=(32,),
        cache_features=True,
    ),
}


class UniADModel(nn.Module):
    """Frozen backbone + multi-scale feature neck + reconstruction transformer; forward gives (score, map)."""

    def __init__(self, cfg: UniADConfig, pretrained: bool) -> None:
        super().__init__()
        self.grid, self.image_size, self.score_pool = cfg.grid, cfg.image_size, cfg.score_pool
        self.backbone = FeatureExtractor(cfg.backbone, cfg.layers, cfg.weights if pretrained else "random")
        self.channels = sum(self.backbone.channels)
        self.reconstruction = Reconstruction(
            self.channels,
            cfg.grid,
            cfg.hidden_dim,
            cfg.num_heads,
            cfg.encoder_layers,
            cfg.decoder_layers,
            cfg.ffn_dim,
            cfg.dropout,
            cfg.neighbor_size,
            cfg.neighbor_mask,
            cfg.jitter_scale,
            cfg.jitter_prob,
            cfg.shared_layer_init,
        )

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        """[B,3,S,S] -> [B,C,g,g]: every level resized to the token grid and concatenated (original MFCN)."""
        levels = self.backbone(images)
        return torch.cat([ops.upsample(f, self.grid, align_corners=True) for f in levels], dim=1)

    def reconstruct(self, features: torch.Tensor) -> torch.Tensor:
        """[B,C,g,g] -> reconstructed [B,C,g,g] (feature jitter applied inside in train mode only)."""
        tokens = features.flatten(2).transpose(1, 2)  # [B,N,C], row-major tokens
        rebuilt = self.reconstruction(tokens)  # [B,N,C]
        return rebuilt.transpose(1, 2).reshape(features.shape)

    def anomaly_map(self, features: torch.Tensor, rebuilt: torch.Tensor) -> torch.Tensor:
        """Per-position L2 norm of the reconstruction error, upsampled with align_corners -> [B,S,S]."""
        error = (rebuilt - features).pow(2).sum(dim=1).sqrt()  # [B,g,g]
        return ops.upsample(error, self.image_size, align_corners=True)

    def image_score(self, maps: torch.Tensor) -> torch.Tensor:
        """Max of the score_pool x score_pool mean-filtered map -> [B]."""
        return ops.max_score(ops.mean_filter(maps, self.score_pool))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.features(images)
        maps = self.anomaly_map(features, self.reconstruct(features))
        return self.image_score(maps), maps
