"""Input normalisation, defined once (datasets, `predict` on raw images and ONNX metadata all use it), and the
shaping of tensors handed to `predict` or `fit`."""

from __future__ import annotations

import torch

from miad.errors import ConfigError, DataError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# name -> (mean, std) applied to RGB values scaled to [0, 1].
NORMALIZATIONS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "imagenet": (IMAGENET_MEAN, IMAGENET_STD),  # pretrained backbones
    "half": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),  # MIAD A.2.5 auto-encoder: mean 0.5, std 0.5
    "none": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),  # DRAEM: plain [0, 1] images
}


def mean_std(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    if name not in NORMALIZATIONS:
        raise ConfigError(f"unknown normalisation {name!r}; valid: {', '.join(NORMALIZATIONS)}")
    return NORMALIZATIONS[name]


def normalize(images01: torch.Tensor, name: str) -> torch.Tensor:
    """images01: [B,3,H,W] or [3,H,W] in [0, 1] -> normalised copy."""
    mean, std = mean_std(name)
    shape = (3, 1, 1) if images01.ndim == 3 else (1, 3, 1, 1)
    m = torch.tensor(mean, dtype=images01.dtype, device=images01.device).view(shape)
    s = torch.tensor(std, dtype=images01.dtype, device=images01.device).view(shape)
    return (images01 - m) / s


def denormalize(images: torch.Tensor, name: str) -> torch.Tensor:
    """Inverse of `normalize`: back to [0, 1] RGB (used by DRAEM synthesis and figures)."""
    mean, std = mean_std(name)
    shape = (3, 1, 1) if images.ndim == 3 else (1, 3, 1, 1)
    m = torch.tensor(mean, dtype=images.dtype, device=images.device).view(shape)
    s = torch.tensor(std, dtype=images.dtype, device=images.device).view(shape)
    return images * s + m


def conform_images(images: torch.Tensor, size: int, who: str = "predict") -> torch.Tensor:
    """[B,C,H,W] or [C,H,W] float images -> [B,3,size,size] float32: grayscale -> 3 channels, RGBA -> RGB, other
    sizes -> antialiased bilinear resize. `who` names the caller in errors."""
    if images.ndim == 3:
        images = images.unsqueeze(0)
    if images.ndim != 4:
        raise DataError(f"{who} expects images [B,3,H,W], got shape {tuple(images.shape)}")
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    elif images.shape[1] == 4:
        images = images[:, :3]
    elif images.shape[1] != 3:
        raise DataError(f"{who} expects 1, 3 or 4 channels, got {images.shape[1]}")
    if images.shape[-2:] != (size, size):
        images = torch.nn.functional.interpolate(images.float(), size=(size, size), mode="bilinear",
                                                 align_corners=False, antialias=True)
    return images.float()
