"""Shared anomaly-map operations (one copy for every method): upsampling, blurring, pooling, patch unfolding.

All functions are pure torch so that `predict` stays exportable to ONNX.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def upsample(
    maps: torch.Tensor, size: int | tuple[int, int], align_corners: bool = False, mode: str = "bilinear"
) -> torch.Tensor:
    """Resize [B,H,W] or [B,C,H,W] maps to `size`: "bilinear", or "nearest" (torch's default, as anomalib's
    F.interpolate calls without a mode; align_corners does not apply to it)."""
    squeeze = maps.ndim == 3
    x = maps.unsqueeze(1) if squeeze else maps
    size = (size, size) if isinstance(size, int) else tuple(size)
    if mode == "nearest":
        x = F.interpolate(x, size=size, mode="nearest")
    else:
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


def mean_filter(maps: torch.Tensor, kernel: int, count_include_pad: bool = True) -> torch.Tensor:
    """k x k mean filter with stride 1 and zero padding; count_include_pad=True divides by k*k everywhere (as
    DRAEM's and UniAD's pooling), False by the in-image count near borders (anomalib v0.3.7's PatchCore)."""
    pad = kernel // 2
    x = F.avg_pool2d(maps.unsqueeze(1), kernel, stride=1, padding=pad, count_include_pad=count_include_pad)
    return x.squeeze(1)[..., : maps.shape[-2], : maps.shape[-1]]


def max_score(maps: torch.Tensor) -> torch.Tensor:
    """[B,H,W] -> [B] maximum per map (the image score of most methods)."""
    return maps.flatten(1).amax(dim=1)


def unfold_patches(features: torch.Tensor, patch_size: int = 3) -> torch.Tensor:
    """[B,C,H,W] -> [B,C*p*p,H,W]: each location's p x p neighbourhood (stride 1, zero padding p//2)."""
    b, c, h, w = features.shape
    cols = F.unfold(features, kernel_size=patch_size, padding=patch_size // 2, stride=1)  # [B,C*p*p,H*W]
    return cols.view(b, c * patch_size * patch_size, h, w)


def layer_norm(x: torch.Tensor, norm: torch.nn.LayerNorm) -> torch.Tensor:
    """`norm(x)` with every mean taken one axis at a time. Exported graphs otherwise reduce all normalised values
    at once (FastFlow's [C,H,W] norm: a million values on WRN50's first stage), and onnxruntime's float32
    accumulation of that is 3e-3 off a float64 reference (torch's own kernel 1e-6); per-axis means stay ~1e-6."""
    dims = list(range(-len(norm.normalized_shape), 0))

    def mean(t: torch.Tensor) -> torch.Tensor:
        for d in dims:
            t = t.mean(d, keepdim=True)
        return t

    centred = x - mean(x)
    scaled = centred * torch.rsqrt(mean(centred * centred) + norm.eps)
    return scaled * norm.weight + norm.bias if norm.elementwise_affine else scaled


def ssim_map(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5,
             data_range: float = 1.0, stable: bool = True) -> torch.Tensor:
    """Per-pixel SSIM of [B,C,H,W] images, averaged over channels -> [B,H,W] (Wang et al. 2004; Gaussian
    window `window` x `window`, std `sigma`, zero padding as pytorch-ssim used by DRAEM and the SSIM-AE).

    stable=True (anomaly maps): local variances from deviations, not from E[x^2] - E[x]^2, which in float32
    cancels where the variance is small beside the mean (7e-4 off a float64 reference on built-in images, so
    torch and ONNX disagreed by 2e-4 of the map). With zero padding the window is a weighted sample of the padded
    image whose weights sum to 1, so its variance splits exactly, one axis at a time, into the mean of the row
    variances plus the variance of the row means (law of total variance): two passes of `window` slices.
    stable=False (training losses, which need no such precision): the moment form, one grouped convolution,
    about 4x faster on CPU (benchmarks/ssim_bench.py).
    """
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my, vx, vy, cxy = (_local_stats if stable else _local_moments)(x, y, window, sigma)
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.mean(1)


def _gaussian_weights(window: int, sigma: float) -> list[float]:
    g = [math.exp(-0.5 * ((i - window // 2) / sigma) ** 2) for i in range(window)]
    return [v / sum(g) for v in g]


def _local_moments(x: torch.Tensor, y: torch.Tensor, window: int, sigma: float) -> list[torch.Tensor]:
    """Means, variances, covariance as E[.] products: one grouped convolution over the five stacked moments."""
    r, c = window // 2, int(x.shape[1])  # c: a constant when traced (ONNX needs the kernel shape)
    k1 = torch.exp(-0.5 * ((torch.arange(window, dtype=x.dtype, device=x.device) - r) / sigma) ** 2)
    k1 = k1 / k1.sum()
    kernel = (k1[:, None] * k1[None, :]).expand(5 * c, 1, window, window).contiguous()
    blurred = F.conv2d(torch.cat([x, y, x * x, y * y, x * y], dim=1), kernel, padding=r, groups=5 * c)
    mx, my, exx, eyy, exy = blurred.split(c, dim=1)
    return [mx, my, exx - mx * mx, eyy - my * my, exy - mx * my]


def _local_stats(x: torch.Tensor, y: torch.Tensor, window: int, sigma: float) -> list[torch.Tensor]:
    """The same five statistics from deviations: a horizontal then a vertical pass over the zero-padded images."""
    g, r = _gaussian_weights(window, sigma), window // 2
    h, w = x.shape[-2:]
    pad = (r, r, r, r)
    rows = _combine([F.pad(x, pad), F.pad(y, pad)], g, dim=-1, n=w)
    return _combine(rows, g, dim=-2, n=h)


def _combine(stats: list[torch.Tensor], g: list[float], dim: int, n: int) -> list[torch.Tensor]:
    """Weighted pooling of groups along `dim` (valid positions: n = length - len(g) + 1).

    stats = [mean_x, mean_y] of single pixels, or [mean_x, mean_y, var_x, var_y, cov_xy] of groups ->
    the same five statistics of the pooled groups: mean = sum g m, var = sum g (v + (m - mean)^2), likewise cov.
    """
    def taps(t: torch.Tensor) -> list[torch.Tensor]:
        return [t.narrow(dim, i, n) for i in range(len(g))]

    mx_taps, my_taps = taps(stats[0]), taps(stats[1])
    mx = sum(gi * t for gi, t in zip(g, mx_taps))
    my = sum(gi * t for gi, t in zip(g, my_taps))
    dx = [t - mx for t in mx_taps]
    dy = [t - my for t in my_taps]
    vx = sum(gi * d * d for gi, d in zip(g, dx))
    vy = sum(gi * d * d for gi, d in zip(g, dy))
    cxy = sum(gi * a * b for gi, a, b in zip(g, dx, dy))
    if len(stats) == 5:  # groups carry their own spread
        vx, vy, cxy = (v + sum(gi * t for gi, t in zip(g, taps(s))) for v, s in zip((vx, vy, cxy), stats[2:]))
    return [mx, my, vx, vy, cxy]
