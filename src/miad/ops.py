"""Shared anomaly-map operations (one copy for every method): upsampling, blurring, pooling, patch unfolding.

All functions are pure torch so that `predict` stays exportable to ONNX.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def upsample(maps: torch.Tensor, size: int | tuple[int, int], align_corners: bool = False) -> torch.Tensor:
    """Bilinear resize of [B,H,W] or [B,C,H,W] maps to `size`."""
    squeeze = maps.ndim == 3
    x = maps.unsqueeze(1) if squeeze else maps
    size = (size, size) if isinstance(size, int) else tuple(size)
    x = F.interpolate(x, size=size, mode="bilinear", align_corners=align_corners)
    return x.squeeze(1) if squeeze else x


def gaussian_kernel1d(sigma: float, truncate: float = 4.0) -> torch.Tensor:
    """Normalised 1-D Gaussian with radius int(truncate*sigma + 0.5), as scipy.ndimage.gaussian_filter."""
    radius = int(truncate * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).float()


def gaussian_blur(maps: torch.Tensor, sigma: float, truncate: float = 4.0) -> torch.Tensor:
    """Separable Gaussian blur of [B,H,W] maps; 'reflect' borders as scipy.ndimage's default (mode='reflect'
    there is torch's 'symmetric'; torch has no symmetric pad, so the half-sample mirror is built by flipping)."""
    if sigma <= 0:
        return maps
    k = gaussian_kernel1d(sigma, truncate).to(maps.device, maps.dtype)
    r = k.numel() // 2
    x = maps.unsqueeze(1)  # [B,1,H,W]
    x = _symmetric_pad(x, r)
    x = F.conv2d(x, k.view(1, 1, 1, -1))
    x = F.conv2d(x, k.view(1, 1, -1, 1))
    return x.squeeze(1)


def _symmetric_pad(x: torch.Tensor, r: int) -> torch.Tensor:
    """Pad [B,C,H,W] by r on every side with scipy's 'reflect' mirror (d c b a | a b c d), any r."""
    if r == 0:
        return x
    h, w = x.shape[-2:]
    return x.index_select(-2, _reflect_index(h, r, x.device)).index_select(-1, _reflect_index(w, r, x.device))


def _reflect_index(n: int, r: int, device: torch.device) -> torch.Tensor:
    i = torch.arange(-r, n + r, device=device) % (2 * n)
    return torch.where(i >= n, 2 * n - 1 - i, i)


def mean_filter(maps: torch.Tensor, kernel: int) -> torch.Tensor:
    """k x k mean filter with stride 1 and zero padding (count_include_pad, as DRAEM's and UniAD's pooling)."""
    pad = kernel // 2
    x = F.avg_pool2d(maps.unsqueeze(1), kernel, stride=1, padding=pad, count_include_pad=True)
    return x.squeeze(1)[..., : maps.shape[-2], : maps.shape[-1]]


def max_score(maps: torch.Tensor) -> torch.Tensor:
    """[B,H,W] -> [B] maximum per map (the image score of most methods)."""
    return maps.flatten(1).amax(dim=1)


def unfold_patches(features: torch.Tensor, patch_size: int = 3) -> torch.Tensor:
    """[B,C,H,W] -> [B,C*p*p,H,W]: each location's p x p neighbourhood (stride 1, zero padding p//2)."""
    b, c, h, w = features.shape
    cols = F.unfold(features, kernel_size=patch_size, padding=patch_size // 2, stride=1)  # [B,C*p*p,H*W]
    return cols.view(b, c * patch_size * patch_size, h, w)


def ssim_map(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5,
             data_range: float = 1.0) -> torch.Tensor:
    """Per-pixel SSIM of [B,C,H,W] images, averaged over channels -> [B,H,W] (Wang et al. 2004; Gaussian
    window `window` x `window`, std `sigma`, zero padding as pytorch-ssim used by DRAEM and the SSIM-AE)."""
    r = window // 2
    k1 = torch.exp(-0.5 * ((torch.arange(window, dtype=x.dtype, device=x.device) - r) / sigma) ** 2)
    k1 = k1 / k1.sum()
    c = int(x.shape[1])  # a constant when traced: ONNX needs the kernel shape
    # One grouped convolution over the five moments stacked on the channel axis (on CPU the 2-D grouped kernel
    # is faster than two separable 1-D passes).
    moments = torch.cat([x, y, x * x, y * y, x * y], dim=1)
    kernel = (k1[:, None] * k1[None, :]).expand(5 * c, 1, window, window).contiguous()
    blurred = F.conv2d(moments, kernel, padding=r, groups=5 * c)
    mx, my, exx, eyy, exy = blurred.split(c, dim=1)
    vx, vy, cxy = exx - mx * mx, eyy - my * my, exy - mx * my
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.mean(1)
