"""ResNet bottleneck blocks that keep, halve or double the resolution (the OCBE stage and the student decoder).

One block class serves both sides of RD4AD: the one-class bottleneck stage down-samples with a stride-2 3x3
convolution (as torchvision's ResNet v1.5), the student decoder up-samples with a 2x2 stride-2 transposed
convolution in the block and in its shortcut (as the original `de_resnet.py`).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

Resample = Literal["none", "down", "up"]


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False)


def deconv2x2(in_channels: int, out_channels: int) -> nn.ConvTranspose2d:
    """Exact 2x up-sampling: every input pixel becomes a 2x2 output patch."""
    return nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2, bias=False)


def conv_bn_relu_down(in_channels: int, out_channels: int) -> nn.Sequential:
    """3x3 stride-2 conv + BN + ReLU: the OCBE's multi-scale fusion step."""
    return nn.Sequential(conv3x3(in_channels, out_channels, 2), nn.BatchNorm2d(out_channels), nn.ReLU())


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (stride 2 when 'down') or 2x2 transposed (when 'up') -> 1x1 expand, plus a shortcut;
    a final ReLU unless `out_relu` is False (for matching teacher features that can be negative)."""

    def __init__(
        self, in_channels: int, width: int, out_channels: int, resample: Resample = "none", out_relu: bool = True
    ) -> None:
        super().__init__()
        self.conv1, self.bn1 = conv1x1(in_channels, width), nn.BatchNorm2d(width)
        if resample == "up":
            self.conv2: nn.Module = deconv2x2(width, width)
        else:
            self.conv2 = conv3x3(width, width, 2 if resample == "down" else 1)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3, self.bn3 = conv1x1(width, out_channels), nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.out_act = nn.ReLU() if out_relu else nn.Identity()
        self.shortcut = _shortcut(in_channels, out_channels, resample)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.out_act(out + self.shortcut(x))


def _shortcut(in_channels: int, out_channels: int, resample: Resample) -> nn.Module:
    if resample == "up":
        return nn.Sequential(deconv2x2(in_channels, out_channels), nn.BatchNorm2d(out_channels))
    if resample == "down":
        return nn.Sequential(conv1x1(in_channels, out_channels, 2), nn.BatchNorm2d(out_channels))
    if in_channels != out_channels:
        return nn.Sequential(conv1x1(in_channels, out_channels), nn.BatchNorm2d(out_channels))
    return nn.Identity()


def stage(
    in_channels: int, width: int, out_channels: int, blocks: int, resample: Resample, out_relu: bool = True
) -> nn.Sequential:
    """A residual stage: the first block resamples and changes channels, the others keep both; `out_relu`
    applies to the stage's last block only (its output is what gets compared with the teacher)."""
    layers = []
    for i in range(blocks):
        last = i == blocks - 1
        cin, mode = (in_channels, resample) if i == 0 else (out_channels, "none")
        layers.append(Bottleneck(cin, width, out_channels, mode, out_relu=out_relu or not last))
    return nn.Sequential(*layers)


def init_like_resnet(module: nn.Module) -> None:
    """Kaiming-normal (fan_out) for nn.Conv2d, BN weight 1 / bias 0, as the original code. Transposed
    convolutions keep PyTorch's default init there too (they are not nn.Conv2d instances)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
