import numpy as np
import pytest
import scipy.ndimage as ndi
import torch

from miad import ops


@pytest.mark.parametrize("sigma", [1.0, 4.0])
@pytest.mark.parametrize("shape", [(20, 23), (64, 64), (6, 9)])
def test_gaussian_blur_matches_scipy(sigma, shape):
    x = torch.rand(2, *shape, dtype=torch.float64)
    got = ops.gaussian_blur(x, sigma).numpy()
    want = np.stack([ndi.gaussian_filter(m.numpy(), sigma, mode="reflect") for m in x])
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_mean_filter_and_max_score():
    x = torch.zeros(1, 9, 9)
    x[0, 4, 4] = 9.0
    y = ops.mean_filter(x, 3)
    assert y.shape == x.shape and y[0, 4, 4] == pytest.approx(1.0) and y[0, 3, 3] == pytest.approx(1.0)
    assert ops.max_score(x).tolist() == [9.0]


def test_unfold_patches_gathers_neighbourhood():
    f = torch.arange(16.0).view(1, 1, 4, 4)
    p = ops.unfold_patches(f, 3)
    assert p.shape == (1, 9, 4, 4)
    assert p[0, :, 1, 1].tolist() == [0, 1, 2, 4, 5, 6, 8, 9, 10]


def test_upsample_shapes():
    assert ops.upsample(torch.rand(2, 4, 4), 16).shape == (2, 16, 16)
    assert ops.upsample(torch.rand(2, 3, 4, 4), (8, 12)).shape == (2, 3, 8, 12)


def test_ssim_map_identity_and_range():
    x = torch.rand(2, 3, 24, 24)
    torch.testing.assert_close(ops.ssim_map(x, x), torch.ones(2, 24, 24))
    s = ops.ssim_map(x, torch.rand(2, 3, 24, 24))
    assert s.shape == (2, 24, 24) and s.mean() < 0.5 and (s <= 1).all()
