"""Reverse Distillation: configuration, presets and the pure torch modules.

Paper: Deng & Li, "Anomaly Detection via Reverse Distillation from One-Class Embedding", CVPR 2022,
arXiv 2201.10703; original code `hq-deng/RD4AD`. A frozen ImageNet teacher gives features at three scales; a
trainable one-class bottleneck (OCBE) fuses them into one compact embedding, from which a student decoder has
to reconstruct the teacher's features. Trained on normal images only, the student fails where an image is
unusual, so 1 - cosine similarity between teacher and student features is the anomaly map.

Architecture, built from the teacher's channel list c_1..c_n (strides 4, 8, 16 for levels (1, 2, 3)):
- OCBE: level i goes through n-i stride-2 3x3 conv+BN+ReLU steps c_i -> c_i+1 -> ... -> c_n, the n maps are
  concatenated (n*c_n channels) and one residual stage of `bottleneck_blocks` bottleneck blocks (the first with
  stride 2 and a 1x1 stride-2 shortcut) gives the embedding of `embed_ratio * c_n` channels at stride 2*s_n.
- Student decoder: one stage per level, deepest first; the first block of each stage up-samples with a 2x2
  transposed convolution (also in its shortcut) and outputs c_i channels at the teacher's resolution.
- Block inner width = `width_ratio` x the block's output channels (0.5 = Wide-ResNet's doubled width).
With WideResNet50-2 (c = 256, 512, 1024) and the defaults this is exactly the original network: fusion
256->512->1024 and 512->1024, a 3072-channel concat, 3 blocks of width 1024 -> 2048x8x8 for a 256 input, and
decoder stages of [3, 4, 6] blocks (widths 512, 256, 128) giving 1024x16x16, 512x32x32, 256x64x64.
EfficientNet-Lite0 (c = 24, 40, 112) gets the same design at its own, much smaller widths.

Where the original code and anomalib (which the MIAD appendix A.2.1 says it used, release v0.3.7) differ; the
`paper` preset follows anomalib v0.3.7, the original is one `--set` away:
- Loss. anomalib v0.3.7 (anomalib/models/reverse_distillation/loss.py) computes the cosine per pixel (along
  channels) and averages over pixels: `loss_mode="per_pixel"`. The original (`main.py`) flattens each whole
  feature map of an image into one C*H*W vector: `--set loss_mode=flattened`.
- Anomaly map. anomalib v0.3.7 (config.yaml `anomaly_map_mode: multiply`, anomaly_map.py) MULTIPLIES the three
  up-sampled (bilinear, align_corners=True) per-pixel 1 - cosine maps: `map_mode="multiply"`. The original
  evaluation (`test.py`, `amap_mode='a'`) sums them: `--set map_mode=add`. Both then blur with a Gaussian of
  sigma 4 (miad.ops.gaussian_blur pads as scipy's gaussian_filter, the original's; anomalib's kornia blur pads
  as torch's 'reflect', so maps differ near the borders only); image score = map max.
- Input. anomalib v0.3.7 decodes with OpenCV and resizes with albumentations' Resize (cv2 INTER_LINEAR, no
  antialias): `resize="opencv"`.
- Epochs. anomalib stops early on the test set's pixel AUROC (patience 3, validation = test split); by default we
  never use test data for training decisions and run the full 200 epochs of anomalib's max_epochs
  (`--protocol paper-selection` reproduces anomalib's selection, marked "selected on test": miad.selection).
- beta2. anomalib's 2022 config has beta2 = 0.99; appendix A.2.1 says 0.999, which we follow (as the original).

Our own deviations:
- `quick` (EfficientNet-Lite0, 128 px, one block per stage, 20 epochs) drops the ReLU at the end of each
  decoder stage (`student_output_relu=False`): Lite0's stage outputs are linear projections, half negative, which
  a ReLU output cannot match (the loss stalled at ~1.3 instead of ~0.4); its blur sigma is 2, i.e. sigma 4 at 256 px.
- Held-out normals: `holdout_fraction` of the training images is kept out of training for thresholds (project
  convention); neither anomalib nor the original does this.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from miad import ops
from miad.backbones import FeatureExtractor
from miad.config import BaseConfig, _check
from miad.methods.reverse_distillation.blocks import conv_bn_relu_down, init_like_resnet, stage
from miad.sources import (
    ALL_IMAGES,
    ANOMALIB,
    ANOMALIB_NORMALIZE,
    ANOMALIB_RESIZE,
    HOLDOUT,
    RD4AD,
    SEED,
    THRESHOLD,
    cited_preset,
)

LOSS_MODES = ("flattened", "per_pixel")
MAP_MODES = ("add", "multiply")


@dataclass(frozen=True)
class ReverseDistillationConfig(BaseConfig):
    # --- input
    image_size: int = 256  # must be a multiple of 2x the deepest level's stride (32 for levels 1..3)
    # --- teacher (frozen)
    backbone: str = "wide_resnet50_2"
    layers: tuple[int, ...] = (1, 2, 3)  # consecutive timm feature levels, shallowest first
    # "imagenet": WRN50 = timm wide_resnet50_2.racm_in1k (timm 0.5.4 default, as MIAD ran; backbones.py) | "torchvision"
    # (WRN50 IMAGENET1K_V1, the earlier default) | "random" | path to a state dict
    weights: str = "imagenet"
    # --- student: widths derived from the teacher's channels
    bottleneck_blocks: int = 3  # blocks in the OCBE residual stage
    decoder_blocks: tuple[int, ...] = (3, 4, 6)  # blocks per decoder stage, deepest stage first
    embed_ratio: float = 2.0  # OCBE embedding channels / deepest teacher channels (2048 / 1024)
    width_ratio: float = 0.5  # bottleneck-block inner width / its output channels (Wide-ResNet: 0.5)
    # ReLU after each decoder stage, as the original (ResNet teacher features are post-ReLU, so >= 0). Set False
    # for teachers whose features can be negative (EfficientNet stage outputs are linear projections).
    student_output_relu: bool = True
    # --- loss and anomaly map
    # class defaults keep the earlier behaviour (older checkpoints load unchanged); `paper` sets anomalib v0.3.7's
    loss_mode: str = "flattened"  # "per_pixel" (anomalib v0.3.7 loss.py) | "flattened" (original RD4AD main.py)
    map_mode: str = "add"  # "multiply" (anomalib v0.3.7 config.yaml) | "add" (original RD4AD test.py)
    blur_sigma: float = 4.0  # Gaussian smoothing of the summed map (0 = none)

    def validate(self) -> None:
        super().validate()
        levels = self.layers
        _check(
            len(levels) >= 2 and all(b == a + 1 for a, b in zip(levels, levels[1:])),
            "layers",
            levels,
            "at least two consecutive feature levels, shallowest first, e.g. (1, 2, 3)",
        )
        _check(
            len(self.decoder_blocks) == len(levels) and min(self.decoder_blocks) >= 1,
            "decoder_blocks",
            self.decoder_blocks,
            f"{len(levels)} integers >= 1 (one decoder stage per teacher level)",
        )
        _check(self.bottleneck_blocks >= 1, "bottleneck_blocks", self.bottleneck_blocks, "an integer >= 1")
        _check(self.embed_ratio > 0, "embed_ratio", self.embed_ratio, "> 0")
        _check(self.width_ratio > 0, "width_ratio", self.width_ratio, "> 0")
        multiple = 2 ** (max(levels) + 2)  # stride of the embedding: one more halving than the deepest level
        _check(
            self.image_size % multiple == 0,
            "image_size",
            self.image_size,
            f"a multiple of {multiple} for layers {levels} (so the decoder retraces the teacher's sizes)",
        )
        _check(self.loss_mode in LOSS_MODES, "loss_mode", self.loss_mode, f"one of {list(LOSS_MODES)}")
        _check(self.map_mode in MAP_MODES, "map_mode", self.map_mode, f"one of {list(MAP_MODES)}")
        _check(self.blur_sigma >= 0, "blur_sigma", self.blur_sigma, ">= 0")


_RD_CONFIG = f"{ANOMALIB} anomalib/models/reverse_distillation/config.yaml"
_RD_ORIGINAL = f"{RD4AD} main.py"
# The paper preset: every field with its source (A.2.1, else anomalib v0.3.7's defaults as A.2.1 says).
PAPER, PAPER_SOURCES = cited_preset(ReverseDistillationConfig, {
    "image_size": (256, "MIAD A.2.1: training and testing images zoomed to 256x256, no data augmentation"),
    "normalize": ("imagenet", ANOMALIB_NORMALIZE),
    "resize": ("opencv", ANOMALIB_RESIZE),
    "max_train_images": (None, ALL_IMAGES),
    "holdout_fraction": (0.1, HOLDOUT),
    "threshold_quantile": (0.99, THRESHOLD),
    "epochs": (200, f"{_RD_CONFIG}: trainer.max_epochs 200 (A.2.1: the rest as anomalib's defaults); its early "
               "stopping on the test set is opt-in here: --protocol paper-selection"),
    "batch_size": (32, "MIAD A.2.1: batch size 32 on 1 GPU"),
    "optimizer": ("adam", "MIAD A.2.1: Adam"),
    "lr": (0.005, "MIAD A.2.1: learning rate 0.005"),
    "weight_decay": (0.0, f"{ANOMALIB} anomalib/models/reverse_distillation/lightning_model.py: "
                     "configure_optimizers, Adam without weight decay"),
    "betas": ((0.5, 0.999), "MIAD A.2.1: beta1 0.5, beta2 0.999 (anomalib's config.yaml has beta2 0.99)"),
    "lr_milestones": ((), f"{ANOMALIB} anomalib/models/reverse_distillation/lightning_model.py: no scheduler"),
    "lr_gamma": (0.1, "miad: unused without lr_milestones"),
    "grad_clip_norm": (None, f"{_RD_CONFIG}: trainer.gradient_clip_val 0"),
    "amp": (False, f"{_RD_CONFIG}: trainer.precision 32"),
    "cache_features": (False, "miad: speed only; the teacher features of 10,000 MIAD images at 256 px would not fit "
                       "in memory"),
    "seed": (0, SEED),
    "backbone": ("wide_resnet50_2", "MIAD A.2.1: WideResNet50 in the teacher-student model"),
    "layers": ((1, 2, 3), f"{_RD_CONFIG}: model.layers layer1, layer2, layer3"),
    "weights": ("imagenet", f"{ANOMALIB} requirements/base.txt: timm==0.5.4, whose wide_resnet50_2 loads the racm "
                "weights (timm wide_resnet50_2.racm_in1k; miad.backbones)"),
    "bottleneck_blocks": (3, f"{ANOMALIB} anomalib/models/reverse_distillation/components/bottleneck.py: OCBE "
                          f"with 3 bottleneck blocks -> 2048 x 8 x 8, as {RD4AD} models/resnet.py BN_layer"),
    "decoder_blocks": ((3, 4, 6), f"{ANOMALIB} anomalib/models/reverse_distillation/components/de_resnet.py: "
                       "de_wide_resnet50_2 stages [3, 4, 6]"),
    "embed_ratio": (2.0, f"{ANOMALIB} anomalib/models/reverse_distillation/components/bottleneck.py: 2048-channel "
                    "embedding from 1024-channel layer3"),
    "width_ratio": (0.5, f"{ANOMALIB} anomalib/models/reverse_distillation/components/de_resnet.py: "
                    "width_per_group 128 (Wide-ResNet's doubled inner width)"),
    "student_output_relu": (True, f"{ANOMALIB} anomalib/models/reverse_distillation/components/de_resnet.py: "
                            "each decoder block ends in a ReLU"),
    "loss_mode": ("per_pixel", f"{ANOMALIB} anomalib/models/reverse_distillation/loss.py: cosine per pixel, "
                  f"averaged (the original {_RD_ORIGINAL} flattens each map: --set loss_mode=flattened)"),
    "map_mode": ("multiply", f"{_RD_CONFIG}: anomaly_map_mode multiply (the original {RD4AD} test.py adds)"),
    "blur_sigma": (4.0, f"{ANOMALIB} anomalib/models/reverse_distillation/anomaly_map.py: Gaussian sigma 4"),
})
PRESETS: dict[str, ReverseDistillationConfig] = {
    "paper": PAPER,
    "quick": ReverseDistillationConfig(
        image_size=128,  # CPU-sized; a multiple of 32
        backbone="efficientnet_lite0",  # real ImageNet weights available offline
        layers=(1, 2, 3),  # 24/40/112 channels at strides 4/8/16, as WRN50's layer1..3
        weights="imagenet",
        bottleneck_blocks=1,  # one block per stage: deeper stages trained no better in 20 epochs, and cost more
        decoder_blocks=(1, 1, 1),
        student_output_relu=False,  # about half of Lite0's feature values are negative
        blur_sigma=2.0,  # sigma 4 at 256 px, scaled to 128 px
        lr=0.005,  # as paper
        betas=(0.5, 0.999),  # as paper
        batch_size=16,
        epochs=20,
        cache_features=True,  # no augmentation: the frozen teacher runs once
        loss_mode="flattened",  # as before (the original's loss and map)
        map_mode="add",
    ),
}


class OneClassBottleneck(nn.Module):
    """OCBE: multi-scale fusion to the deepest level, concatenation, one down-sampling residual stage."""

    def __init__(self, channels: list[int], embed_channels: int, width_ratio: float, blocks: int) -> None:
        super().__init__()
        n = len(channels)
        self.fuse = nn.ModuleList(
            nn.Sequential(*[conv_bn_relu_down(channels[j], channels[j + 1]) for j in range(i, n - 1)])
            for i in range(n)  # the deepest level passes unchanged (an empty Sequential)
        )
        width = _width(embed_channels, width_ratio)
        self.stage = stage(n * channels[-1], width, embed_channels, blocks, "down")
        init_like_resnet(self)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        fused = [fuse(f) for fuse, f in zip(self.fuse, features)]  # n x [B,c_n,H_n,W_n]
        return self.stage(torch.cat(fused, dim=1))  # [B,embed,H_n/2,W_n/2]


class StudentDecoder(nn.Module):
    """Mirror of the teacher: one up-sampling stage per level, deepest first; outputs shallowest first."""

    def __init__(
        self,
        channels: list[int],
        embed_channels: int,
        width_ratio: float,
        blocks: tuple[int, ...],
        output_relu: bool = True,
    ) -> None:
        super().__init__()
        stages, in_channels = [], embed_channels
        for out_channels, count in zip(reversed(channels), blocks):
            width = _width(out_channels, width_ratio)
            stages.append(stage(in_channels, width, out_channels, count, "up", output_relu))
            in_channels = out_channels
        self.stages = nn.ModuleList(stages)
        init_like_resnet(self)

    def forward(self, embedding: torch.Tensor) -> list[torch.Tensor]:
        outputs, x = [], embedding
        for block in self.stages:
            x = block(x)
            outputs.append(x)  # deepest level first
        return outputs[::-1]  # [B,c_i,H_i,W_i], same order as the teacher


class ReverseDistillationModel(nn.Module):
    """Frozen teacher + trainable OCBE and student decoder."""

    def __init__(self, config: ReverseDistillationConfig, pretrained: bool) -> None:
        super().__init__()
        weights = config.weights if pretrained else "random"
        self.teacher = FeatureExtractor(config.backbone, config.layers, weights)
        channels = self.teacher.channels
        embed = max(1, round(config.embed_ratio * channels[-1]))
        self.bottleneck = OneClassBottleneck(channels, embed, config.width_ratio, config.bottleneck_blocks)
        self.decoder = StudentDecoder(
            channels, embed, config.width_ratio, config.decoder_blocks, config.student_output_relu
        )
        self.image_size, self.map_mode, self.blur_sigma = config.image_size, config.map_mode, config.blur_sigma

    def student(self, teacher_features: list[torch.Tensor]) -> list[torch.Tensor]:
        return self.decoder(self.bottleneck(teacher_features))

    def teacher_and_student(self, images: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        teacher = self.teacher(images)
        return teacher, self.student(teacher)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Preprocessed images [B,3,S,S] -> (image scores [B] = maxima of the blurred maps, maps [B,S,S])."""
        teacher, student = self.teacher_and_student(images)
        maps = anomaly_map(teacher, student, self.image_size, self.map_mode)  # [B,S,S]
        maps = ops.gaussian_blur(maps, self.blur_sigma)
        return ops.max_score(maps), maps


def distillation_loss(
    teacher: list[torch.Tensor], student: list[torch.Tensor], mode: str = "flattened"
) -> torch.Tensor:
    """Sum over scales of the batch-mean cosine distance; "flattened" compares each image's whole C*H*W map
    (original code), "per_pixel" compares channel vectors and averages over pixels too (anomalib)."""
    total = teacher[0].new_zeros(())
    for t, s in zip(teacher, student):
        if mode == "flattened":
            cos = F.cosine_similarity(t.flatten(1), s.flatten(1), dim=1)  # [B]
        else:
            cos = F.cosine_similarity(t, s, dim=1)  # [B,H,W]
        total = total + (1 - cos).mean()
    return total


def anomaly_map(teacher: list[torch.Tensor], student: list[torch.Tensor], size: int, mode: str = "add") -> torch.Tensor:
    """Per-pixel 1 - cosine per scale, bilinearly up-sampled (align_corners=True, as the original) to
    size x size and summed ("add") or multiplied ("multiply") over scales -> [B,size,size] (before blurring)."""
    combined = None
    for t, s in zip(teacher, student):
        distance = 1 - F.cosine_similarity(t, s, dim=1)  # [B,H,W]
        distance = ops.upsample(distance, size, align_corners=True)  # [B,size,size]
        if combined is None:
            combined = distance
        else:
            combined = combined + distance if mode == "add" else combined * distance
    assert combined is not None, "anomaly_map needs at least one scale"
    return combined


def _width(out_channels: int, ratio: float) -> int:
    return max(1, round(out_channels * ratio))
