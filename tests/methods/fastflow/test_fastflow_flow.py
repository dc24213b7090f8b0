"""FastFlow's own flow blocks: exact inverse, log-determinant equal to autograd's Jacobian, clamping, layout."""

from __future__ import annotations

import pytest
import torch

from miad.errors import ConfigError
from miad.methods.fastflow.flow import CouplingStep, Flow2d, soft_clamp


def _randomise(module: torch.nn.Module, seed: int, gain: float = 3.0) -> torch.nn.Module:
    """Non-trivial parameters: the default init gives log-scales ~0, so subnet weights are redrawn `gain` times
    larger than PyTorch's default (pushing s into the clamp's non-linear range) and the global affine moves away
    from the identity (scales ~0.3-3, offsets ~N(0,1))."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            noise = torch.randn(p.shape, generator=gen, dtype=p.dtype)
            if name.endswith("global_scale"):
                p.add_(noise * 2.0)  # pre-activation around the init value; 0.1*softplus_0.5 keeps it > 0
            elif name.endswith("global_offset"):
                p.copy_(noise)
            else:
                fan_in = p[0].numel() if p.ndim > 1 else p.numel()
                p.copy_(noise * gain / fan_in**0.5)
    return module


def _step(channels: int, kernel: int, activation: str = "tanh", global_affine: bool = True, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return CouplingStep(channels, kernel, 1.0, 2.0, activation, global_affine, gen)


@pytest.mark.parametrize("channels", [2, 3, 5])
@pytest.mark.parametrize("kernel", [1, 3])
@pytest.mark.parametrize("activation", ["tanh", "atan"])
def test_step_is_exactly_invertible(channels, kernel, activation):
    step = _randomise(_step(channels, kernel, activation), seed=channels + kernel)
    x = torch.randn(2, channels, 5, 6, generator=torch.Generator().manual_seed(1))
    y, log_det = step(x)
    x_back, inv_log_det = step.inverse(y)
    assert (x_back - x).abs().max() < 1e-4
    torch.testing.assert_close(inv_log_det, -log_det, rtol=1e-5, atol=1e-4)
    assert not torch.allclose(y, x)  # the step does transform its input


def test_flow_chain_is_exactly_invertible():
    """8 steps in float64 (float32 rounding compounds over a chain of strong random steps; each step's float32
    error is checked above): the inverse is exact up to rounding."""
    flow = Flow2d(6, 8, 1.0, False, 2.0, generator=torch.Generator().manual_seed(0))
    flow = _randomise(flow, seed=3, gain=3.0).double()
    x = torch.randn(3, 6, 7, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    z, log_det = flow(x)
    x_back, inv_log_det = flow.inverse(z)
    assert (x_back - x).abs().max() < 1e-9
    torch.testing.assert_close(inv_log_det, -log_det)


def _autograd_log_det(module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """log|det| of the full Jacobian of module(x) w.r.t. x for one sample, via autograd and slogdet."""
    shape = x.shape

    def f(flat: torch.Tensor) -> torch.Tensor:
        return module(flat.view(shape))[0].flatten()

    jac = torch.autograd.functional.jacobian(f, x.flatten())  # [D, D]
    sign, logabsdet = torch.linalg.slogdet(jac)
    assert sign != 0
    return logabsdet


@pytest.mark.parametrize(
    "channels,kernel,activation,global_affine",
    [
        (2, 3, "tanh", True),
        (2, 1, "atan", True),
        (3, 3, "atan", True),
        (3, 1, "tanh", False),
    ],
)
def test_step_log_det_matches_autograd_jacobian(channels, kernel, activation, global_affine):
    step = _randomise(_step(channels, kernel, activation, global_affine), seed=7, gain=3.0).double()
    x = torch.randn(1, channels, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    _, log_det = step(x)
    expected = _autograd_log_det(step, x)
    assert abs(float(expected)) > 0.1  # a non-trivial Jacobian
    torch.testing.assert_close(log_det[0], expected, rtol=1e-9, atol=1e-9)


def test_flow_log_det_matches_autograd_jacobian():
    flow = Flow2d(3, 4, 1.0, False, 2.0, "tanh", True, torch.Generator().manual_seed(5))
    flow = _randomise(flow, seed=11, gain=2.0).double()
    x = torch.randn(1, 3, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    torch.testing.assert_close(flow(x)[1][0], _autograd_log_det(flow, x), rtol=1e-9, atol=1e-9)


def test_soft_clamp_bounds_log_scales_and_is_near_identity_at_zero():
    a = torch.tensor([-1e6, -1.0, 0.0, 1.0, 1e6])
    for activation in ("tanh", "atan"):
        s = soft_clamp(a, 2.0, activation)
        assert s.abs().max() <= 2.0 and s[1:4].abs().max() < 2.0 and s[2] == 0 and torch.all(s.diff() >= 0)
    small = torch.tensor([1e-4])
    torch.testing.assert_close(soft_clamp(small, 2.0, "tanh"), 2.0 * small)  # AllInOneBlock: clamp * tanh(a)
    torch.testing.assert_close(soft_clamp(small, 2.0, "atan"), 0.636 * small)  # clamp * 0.636 * atan(a / clamp)


def test_huge_subnet_outputs_stay_finite():
    step = _step(4, 3)
    with torch.no_grad():
        for p in step.subnet.parameters():
            p.mul_(1e4)
    y, log_det = step(torch.randn(2, 4, 4, 4))
    assert torch.isfinite(y).all() and torch.isfinite(log_det).all()


def test_layout_kernels_hidden_width_and_seeded_permutations():
    flow = Flow2d(5, 4, 2.0, False, 2.0, generator=torch.Generator().manual_seed(0))
    kernels = [step.subnet[0].kernel_size for step in flow.steps]
    assert kernels == [(3, 3), (1, 1), (3, 3), (1, 1)]  # even steps 3x3, odd steps 1x1
    first = flow.steps[0].subnet
    assert (first[0].in_channels, first[0].out_channels, first[2].out_channels) == (3, 6, 4)  # c1=3, 2*c2=4
    only3 = Flow2d(5, 4, 1.0, True, 2.0, generator=torch.Generator().manual_seed(0))
    assert all(step.subnet[0].kernel_size == (3, 3) for step in only3.steps)

    perms = [step.perm for step in flow.steps]
    assert all(sorted(p.tolist()) == list(range(5)) for p in perms)
    assert len({tuple(p.tolist()) for p in perms}) > 1  # a fresh permutation per step
    again = Flow2d(5, 4, 2.0, False, 2.0, generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(a.perm, b.perm) for a, b in zip(flow.steps, again.steps))
    assert "steps.0.perm" in flow.state_dict()  # saved with the checkpoint


def test_invalid_block_settings_fail_clearly():
    with pytest.raises(ConfigError, match=">= 2 feature channels"):
        CouplingStep(1, 3, 1.0, 2.0, "tanh", True)
    with pytest.raises(ConfigError, match="clamp_activation"):
        CouplingStep(4, 3, 1.0, 2.0, "relu", True)
    with pytest.raises(ConfigError, match="hidden_ratio"):
        CouplingStep(4, 3, 0.1, 2.0, "tanh", True)
