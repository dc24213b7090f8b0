"""U-Net auto-encoder: no identity shortcut, map and score conventions."""

from __future__ import annotations

import pytest
import torch

from miad.errors import ConfigError
from miad.methods.unet_ae.model import PRESETS, UNetAE
from miad.registry import create


def _normals(n: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """Smooth shaded images with random phase: the 'normal' appearance, in [-1, 1]."""
    ys, xs = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    out = []
    for _ in range(n):
        a, b = torch.rand(2, generator=gen) * 6.28
        img = torch.stack([torch.sin(3 * xs + a), torch.cos(3 * ys + b), torch.sin(2 * (xs + ys) + a)]) * 0.5
        out.append(img + 0.02 * torch.randn(3, size, size, generator=gen))
    return torch.stack(out)


@pytest.mark.parametrize("loss", ["ssim", "l2"])
def test_pasted_unseen_defect_is_not_reproduced(loss):
    """The quick preset's geometry (64 px, 16 x 16 skip map, 8 x 8 bottleneck), trained briefly on normals."""
    gen = torch.Generator().manual_seed(0)
    train = _normals(16, 64, gen)
    det = create("unet_ae", "quick", loss=loss, base_width=4, epochs=20, batch_size=8, lr=5e-3,
                 holdout_fraction=0.0)
    assert det.model.skip_levels == [2]  # stride 4 at 64 px: one skip map of 16 x 16, like stride 16 at 256 px
    det.fit(train, device="cpu", progress=False)
    test = _normals(4, 64, gen)
    test[:, :, 20:36, 20:36] = (torch.rand(4, 3, 16, 16, generator=gen) > 0.5).float() * 2 - 1  # checkerboard-ish
    with torch.no_grad():
        err = det.model.error_map(test)
    inside = err[:, 20:36, 20:36].mean()
    outside = torch.cat([err[:, :16].flatten(), err[:, 44:].flatten()]).mean()
    # An identity model gives ~0 everywhere. 1 - SSIM saturates near 1 (it measures lost structure, not its
    # amount), so its contrast against the briefly trained normals' ~0.3 is smaller than L2's.
    assert inside > {"l2": 4, "ssim": 2}[loss] * outside  # measured 7.4-10.8 (l2), 3.2-4.1 (ssim) over seeds, threads
    assert err[:, 20:36, 20:36].mean((1, 2)).min() > torch.quantile(err[:, 44:].flatten(), 0.95)


def test_no_skip_at_fine_levels_by_default():
    paper = PRESETS["paper"]
    net = UNetAE(paper)
    assert net.skip_levels == [4]  # stride 16 only (stride 32 is the bottleneck itself)
    assert all(2**i >= 16 for i in net.skip_levels)
    with pytest.raises(ConfigError, match="min_skip_stride"):
        create("unet_ae", "paper", min_skip_stride=1)


def test_paper_preset_matches_appendix():
    p = PRESETS["paper"]
    assert (p.image_size, p.normalize, p.epochs, p.batch_size, p.optimizer, p.lr, p.weight_decay) == (
        256, "half", 100, 16, "adam", 1e-4, 5e-4)
    assert UNetAE(p).reconstruct(torch.zeros(1, 3, 256, 256)).shape == (1, 3, 256, 256)


def test_ssim_variant_map_is_zero_for_perfect_reconstruction():
    det = create("unet_ae", "quick", pretrained=False, loss="ssim", image_size=32, depth=3)
    det.model.reconstruct = lambda x: x  # a perfect reconstruction
    det.fitted = True
    pred = det.predict(torch.rand(2, 3, 32, 32) * 2 - 1)
    assert pred.anomaly_map.abs().max() < 1e-4
