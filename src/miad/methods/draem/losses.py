"""DRAEM's training loss: L2 + (1 - SSIM) on the reconstruction, focal loss on the segmentation (MIAD A.2.4;
VitjanZ/DRAEM @ 2dbf673 loss.py and train_DRAEM.py)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from miad import ops


def original_data_range(recon: torch.Tensor) -> torch.Tensor:
    """The original's SSIM range (VitjanZ/DRAEM loss.py, val_range=None), from the reconstruction's values:
    max 255 if it exceeds 128 else 1, minus min -1 if it goes below -0.5 else 0 -> a scalar tensor (no host sync)."""
    top = torch.where(recon.max() > 128, 255.0, 1.0)
    bottom = torch.where(recon.min() < -0.5, -1.0, 0.0)
    return top - bottom


def ssim_loss(recon: torch.Tensor, clean: torch.Tensor, window: int = 11, sigma: float = 1.5,
              data_range: float | None = 1.0) -> torch.Tensor:
    """1 - mean SSIM of [B,3,S,S] images in [0, 1] (Gaussian window, zero padding); data_range None: the
    original's rule (original_data_range), else fixed."""
    rng = original_data_range(recon.detach()) if data_range is None else data_range
    return 1.0 - ops.ssim_map(recon, clean, window, sigma, data_range=rng, stable=False).mean()


def focal_loss(probs: torch.Tensor, target: torch.Tensor, gamma: float = 2.0, smooth: float = 1e-5) -> torch.Tensor:
    """Focal loss on softmax probabilities [B,K,H,W] against integer targets [B,H,W], as the original code:
    one-hot targets clamped to [smooth/(K-1), 1-smooth], pt = sum(target * probs) + smooth, mean over pixels."""
    k = probs.shape[1]
    one_hot = F.one_hot(target.long(), k).permute(0, 3, 1, 2).to(probs.dtype)  # [B,K,H,W]
    one_hot = one_hot.clamp(smooth / (k - 1), 1.0 - smooth)
    pt = (one_hot * probs).sum(1) + smooth  # [B,H,W]
    return (-((1 - pt) ** gamma) * pt.log()).mean()


def draem_loss(
    recon: torch.Tensor,
    logits: torch.Tensor,
    clean: torch.Tensor,
    mask: torch.Tensor,
    ssim_window: int = 11,
    ssim_sigma: float = 1.5,
    focal_gamma: float = 2.0,
    ssim_data_range: float | None = 1.0,
) -> torch.Tensor:
    """L2(recon, clean) + (1 - SSIM(recon, clean)) + focal(softmax(logits), mask), in float32 even under AMP
    (SSIM's variance terms cancel catastrophically in bfloat16)."""
    with torch.autocast(recon.device.type, enabled=False):
        recon, logits = recon.float(), logits.float()
        l2 = F.mse_loss(recon, clean)
        ssim = ssim_loss(recon, clean, ssim_window, ssim_sigma, ssim_data_range)
        focal = focal_loss(torch.softmax(logits, dim=1), mask, focal_gamma)
    return l2 + ssim + focal
