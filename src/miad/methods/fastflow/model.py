"""FastFlow: config, presets and the torch model (no I/O).

Paper: Yu et al., "FastFlow: Unsupervised Anomaly Detection and Localization via 2D Normalizing Flows",
arXiv 2111.07677; MIAD settings from appendix A.2.3 of arXiv 2211.13968. Idea: a frozen ImageNet CNN gives
features at three scales; per scale a trainable LayerNorm and a fully convolutional normalising flow map them to a
standard normal, trained by maximum likelihood. At test time locations with a low likelihood are anomalous.

Facts the appendix leaves open follow the reference code (gathierry/FastFlow @ 2cf1f2f fastflow.py and
configs/wide_resnet50_2.yaml, with FrEIA's AllInOneBlock; each field's source in PAPER_SOURCES): LayerNorm over
[C,H,W] with elementwise affine, hidden ratio 1.0, alternating 3x3 / 1x1 subnets for WRN50 (`conv3x3_only=False`),
clamp 2.0, hard random permutations, loss = per scale batch-mean of 0.5*sum(z^2) - log|det J| (no per-dimension
normalisation), summed over scales; map = mean over scales of -exp(-0.5 * mean_c z^2) upsampled bilinearly; image
score = max of the map (anomalib).

Deviations: `amp=False` (the reference trains in float32; a likelihood summed over ~10^6 dimensions per image is
not safe in bfloat16). The permutations are drawn from a torch generator seeded by `seed` (FrEIA draws them from
numpy's global state), and stored in the state dict. Flow blocks are our own (see `flow.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from miad import ops
from miad.backbones import FeatureExtractor
from miad.config import BaseConfig, _check
from miad.methods.fastflow.flow import CLAMP_ACTIVATIONS, Flow2d
from miad.sources import ALL_IMAGES, FASTFLOW, HOLDOUT, SEED, THRESHOLD, cited_preset


@dataclass(frozen=True)
class FastFlowConfig(BaseConfig):
    # --- input and optimisation: defaults are the `paper` preset (appendix A.2.3)
    image_size: int = 256  # A.2.3: resized to 256x256, no augmentation
    epochs: int = 500  # A.2.3: 500 epochs
    batch_size: int = 32  # A.2.3: batch 32
    optimizer: str = "adam"  # A.2.3: Adam
    lr: float = 1e-3  # A.2.3: lr 1e-3
    weight_decay: float = 1e-5  # A.2.3: weight decay 1e-5
    amp: bool = False  # deviation from the base default: the reference trains in float32 (see module docstring)
    # --- frozen backbone: A.2.3 WRN50, last layer of each of the first three blocks = timm levels 1, 2, 3
    backbone: str = "wide_resnet50_2"
    layers: tuple[int, ...] = (1, 2, 3)
    # "imagenet": WRN50 = timm wide_resnet50_2.racm_in1k (timm 0.5.4 default, as MIAD ran; backbones.py) | "torchvision"
    # (WRN50 IMAGENET1K_V1, the earlier default) | "random" | path to a state dict
    weights: str = "imagenet"
    # --- flows (A.2.3: 8 steps for WRN50; the rest from gathierry/FastFlow configs/wide_resnet50_2.yaml)
    flow_steps: int = 8
    hidden_ratio: float = 1.0  # subnet hidden channels = int(in_channels * hidden_ratio)
    conv3x3_only: bool = False  # False: 3x3 subnets on even steps, 1x1 on odd steps (reference for WRN50)
    clamp: float = 2.0  # soft clamp bound of the coupling log-scales (reference affine_clamping)
    clamp_activation: str = "tanh"  # "tanh": FrEIA AllInOneBlock (reference); "atan": FrEIA GLOW-style soft clamp
    global_affine: bool = True  # AllInOneBlock's learned per-channel scale/offset after each coupling

    def validate(self) -> None:
        super().validate()
        _check(len(self.layers) >= 1, "layers", self.layers, "at least one backbone level, e.g. [1, 2, 3]")
        _check(self.flow_steps >= 1, "flow_steps", self.flow_steps, "an integer >= 1")
        _check(self.hidden_ratio > 0, "hidden_ratio", self.hidden_ratio, "> 0")
        _check(self.clamp > 0, "clamp", self.clamp, "> 0")
        _check(
            self.clamp_activation in CLAMP_ACTIVATIONS,
            "clamp_activation",
            self.clamp_activation,
            f"one of {list(CLAMP_ACTIVATIONS)}",
        )


_FF_CONFIG = f"{FASTFLOW} configs/wide_resnet50_2.yaml"
_FF_CODE = f"{FASTFLOW} fastflow.py"
# The paper preset: every field with its source (A.2.3, else the reference code A.2.3's setting follows).
PAPER, PAPER_SOURCES = cited_preset(FastFlowConfig, {
    "image_size": (256, "MIAD A.2.3: training and testing images resized to 256x256, no data augmentation"),
    "normalize": ("imagenet", f"{FASTFLOW} dataset.py: transforms.Normalize (ImageNet mean/std)"),
    "resize": ("pil", f"{FASTFLOW} dataset.py: PIL Image.open (full decode) + torchvision Resize (antialiased PIL "
               "bilinear)"),
    "max_train_images": (None, ALL_IMAGES),
    "holdout_fraction": (0.1, HOLDOUT),
    "threshold_quantile": (0.99, THRESHOLD),
    "epochs": (500, "MIAD A.2.3: final results evaluated after 500 epochs (no model selection)"),
    "batch_size": (32, "MIAD A.2.3: batch size 32 on 1 GPU"),
    "optimizer": ("adam", "MIAD A.2.3: Adam"),
    "lr": (1e-3, "MIAD A.2.3: learning rate 1e-3"),
    "weight_decay": (1e-5, "MIAD A.2.3: weight decay 1e-5"),
    "betas": ((0.9, 0.999), f"{FASTFLOW} main.py: torch.optim.Adam with default betas"),
    "lr_milestones": ((), f"{FASTFLOW} main.py: no learning-rate scheduler"),
    "lr_gamma": (0.1, "miad: unused without lr_milestones"),
    "grad_clip_norm": (None, f"{FASTFLOW} main.py: no gradient clipping"),
    "amp": (False, f"{FASTFLOW} main.py: float32 training (a likelihood summed over ~10^6 dimensions per image is "
            "not safe in bfloat16)"),
    "cache_features": (False, "miad: speed only; backbone features of 10,000 MIAD images would not fit in memory"),
    "seed": (0, SEED),
    "backbone": ("wide_resnet50_2", "MIAD A.2.3: Wide-ResNet50-2, ImageNet pretrained"),
    "layers": ((1, 2, 3), "MIAD A.2.3: the last layer of each of the first three blocks"),
    "weights": ("imagenet", f"{FASTFLOW} requirements.txt: timm==0.5.4, whose wide_resnet50_2 (fastflow.py "
                "timm.create_model pretrained=True) loads the racm weights (wide_resnet50_2.racm_in1k; "
                "miad.backbones)"),
    "flow_steps": (8, "MIAD A.2.3: 8-step flows for Wide-ResNet50-2"),
    "hidden_ratio": (1.0, f"{_FF_CONFIG}: hidden_ratio 1.0"),
    "conv3x3_only": (False, f"{_FF_CONFIG}: conv3x3_only False (3x3 subnets on even steps, 1x1 on odd)"),
    "clamp": (2.0, f"{_FF_CODE}: nf_fast_flow clamp=2.0 (AllInOneBlock affine_clamping)"),
    "clamp_activation": ("tanh", f"{_FF_CODE}: FrEIA AllInOneBlock (its default tanh soft clamp)"),
    "global_affine": (True, f"{_FF_CODE}: FrEIA AllInOneBlock (its learned global affine after each coupling)"),
})
PRESETS: dict[str, FastFlowConfig] = {
    "paper": PAPER,
    # CPU-sized (~19 CPU-seconds on one core for 90 images): ImageNet Lite0 (offline weights), levels 1-3 = strides
    # 4/8/16 (24/40/112 channels) like WRN50's, 128 px, frozen features cached once (no augmentation). Small batches
    # and a higher rate: on mini-MIAD, batch 4 x 10 epochs beat batch 16 x 12 epochs at the same cost.
    "quick": FastFlowConfig(
        image_size=128,
        backbone="efficientnet_lite0",
        layers=(1, 2, 3),
        epochs=10,
        batch_size=4,
        lr=2e-3,
        cache_features=True,
    ),
}


def feature_shapes(backbone: FeatureExtractor, image_size: int) -> list[tuple[int, int, int]]:
    """(C, H, W) of each feature level for a square input (one dummy forward: exact for any timm backbone)."""
    with torch.no_grad():
        feats = backbone(torch.zeros(1, 3, image_size, image_size))
    return [tuple(f.shape[1:]) for f in feats]  # type: ignore[misc]


class FastFlowModel(nn.Module):
    """Frozen backbone + per-scale trainable LayerNorm [C,H,W] and 2-D flow."""

    def __init__(self, cfg: FastFlowConfig, pretrained: bool) -> None:
        super().__init__()
        self.image_size = cfg.image_size
        self.backbone = FeatureExtractor(cfg.backbone, cfg.layers, cfg.weights if pretrained else "random")
        shapes = feature_shapes(self.backbone, cfg.image_size)
        self.norms = nn.ModuleList(nn.LayerNorm(list(chw), elementwise_affine=True) for chw in shapes)
        generator = torch.Generator().manual_seed(cfg.seed)  # the fixed channel permutations
        self.flows = nn.ModuleList(
            Flow2d(
                c,
                cfg.flow_steps,
                cfg.hidden_ratio,
                cfg.conv3x3_only,
                cfg.clamp,
                cfg.clamp_activation,
                cfg.global_affine,
                generator,
            )
            for c, _, _ in shapes
        )

    def latents(self, features: list[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Backbone features per scale -> (z [B,C,h,w], log|det J| [B]) per scale."""
        return [flow(ops.layer_norm(f, norm)) for f, norm, flow in zip(features, self.norms, self.flows)]

    def nll(self, features: list[torch.Tensor]) -> torch.Tensor:
        """Training loss: sum over scales of the batch mean of 0.5 * sum z^2 - log|det J| (reference)."""
        total = features[0].new_zeros(())
        for z, log_det in self.latents(features):
            total = total + (0.5 * z.pow(2).sum(dim=(1, 2, 3)) - log_det).mean()
        return total

    def anomaly_map(self, features: list[torch.Tensor]) -> torch.Tensor:
        """[B,S,S]: mean over scales of -exp(-0.5 * mean_c z^2), each bilinearly upsampled to the input size."""
        maps = [
            ops.upsample(-torch.exp(-0.5 * z.pow(2).mean(dim=1)), self.image_size)  # [B,S,S]
            for z, _ in self.latents(features)
        ]
        return torch.stack(maps).mean(dim=0)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Preprocessed images [B,3,S,S] -> (image scores [B] = map maxima, maps [B,S,S]): the inference graph."""
        maps = self.anomaly_map(self.backbone(images))  # [B,S,S]
        return ops.max_score(maps), maps
