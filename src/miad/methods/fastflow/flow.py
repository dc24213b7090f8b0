"""Invertible 2-D flow blocks for FastFlow, written for miad (the computation of FrEIA's `AllInOneBlock`).

Why our own blocks and not FrEIA: FrEIA is not installed here and is lightly maintained (the reference code pins a
2021 git commit); the block FastFlow needs is ~60 lines of plain torch; owning it gives an exact `inverse` that
the tests check, a log-determinant the tests compare with autograd's Jacobian, and a forward pass made of
ONNX-friendly ops only (conv, split/cat, gather, tanh/atan, exp), with no extra dependency.

One `CouplingStep` maps x [B,C,H,W] -> y and returns log|det dy/dx| per sample, as AllInOneBlock with
`permute_soft=False`, no GIN, no householder, SOFTPLUS global affine:
  1. split channels: x1 = the first C - C//2, x2 = the last C//2;
  2. a = 0.1 * subnet(x1), subnet = Conv(k) -> ReLU -> Conv(k) ("same" padding), hidden = int(c1 * hidden_ratio);
     s = soft_clamp(a[:, :c2]), t = a[:, c2:];  x2' = x2 * exp(s) + t;  log det += sum(s);
  3. global affine (learned per-channel scale and offset, "ActNorm" without data-dependent init):
     u = cat(x1, x2') * g + b, g = 0.1 * softplus_{beta=0.5}(gamma) (= 1 at init);  log det += H*W*sum(log g);
  4. fixed hard channel permutation (random, seeded, stored as a buffer): y = u[:, perm].

soft_clamp: "tanh" = clamp * tanh(a), AllInOneBlock's (the reference's FrEIA block); "atan" = clamp * 0.636 *
atan(a / clamp), FrEIA's GLOW/RNVP coupling soft clamp. Both keep |s| < clamp so exp(s) cannot overflow.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from miad.errors import ConfigError

CLAMP_ACTIVATIONS = ("tanh", "atan")
# Pre-activation of the global scale such that 0.1 * softplus_{beta=0.5}(x) = 1 (AllInOneBlock's SOFTPLUS init).
_GLOBAL_SCALE_INIT = 2.0 * math.log(math.exp(0.5 * 10.0) - 1.0)


def soft_clamp(a: torch.Tensor, clamp: float, activation: str) -> torch.Tensor:
    """Log-scale coefficients bounded to (-clamp, clamp), smooth and ~identity near zero."""
    if activation == "tanh":
        return clamp * torch.tanh(a)
    return clamp * 0.636 * torch.atan(a / clamp)


def conv_subnet(in_channels: int, out_channels: int, kernel_size: int, hidden_ratio: float) -> nn.Sequential:
    """Conv(k) -> ReLU -> Conv(k) with "same" padding; hidden = int(in_channels * hidden_ratio) (reference)."""
    hidden = int(in_channels * hidden_ratio)
    if hidden < 1:
        raise ConfigError(
            f"FastFlow subnet hidden width int({in_channels} * hidden_ratio={hidden_ratio}) is {hidden}: "
            "expected >= 1; raise hidden_ratio"
        )
    pad = kernel_size // 2
    return nn.Sequential(
        nn.Conv2d(in_channels, hidden, kernel_size, padding=pad),
        nn.ReLU(),
        nn.Conv2d(hidden, out_channels, kernel_size, padding=pad),
    )


class CouplingStep(nn.Module):
    """Affine coupling + global affine + fixed channel permutation; exactly invertible (see module docstring)."""

    def __init__(
        self,
        channels: int,
        kernel_size: int,
        hidden_ratio: float,
        clamp: float,
        clamp_activation: str,
        global_affine: bool,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if channels < 2:
            raise ConfigError(f"a FastFlow coupling step needs >= 2 feature channels, got {channels}")
        if clamp_activation not in CLAMP_ACTIVATIONS:
            raise ConfigError(f"clamp_activation={clamp_activation!r} is invalid: expected one of {CLAMP_ACTIVATIONS}")
        self.c1, self.c2 = channels - channels // 2, channels // 2
        self.clamp, self.clamp_activation = clamp, clamp_activation
        self.subnet = conv_subnet(self.c1, 2 * self.c2, kernel_size, hidden_ratio)
        self.global_scale = nn.Parameter(torch.full((1, channels, 1, 1), _GLOBAL_SCALE_INIT)) if global_affine else None
        self.global_offset = nn.Parameter(torch.zeros(1, channels, 1, 1)) if global_affine else None
        self.register_buffer("perm", torch.randperm(channels, generator=generator))

    def _coefficients(self, x1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = 0.1 * self.subnet(x1)  # [B,2*c2,H,W]; AllInOneBlock scales the subnet output by 0.1 for stability
        return soft_clamp(a[:, : self.c2], self.clamp, self.clamp_activation), a[:, self.c2 :]

    def _global_scale(self) -> torch.Tensor:
        return 0.1 * F.softplus(self.global_scale, beta=0.5)  # [1,C,1,1] > 0

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B,C,H,W] -> (y [B,C,H,W], log|det J| [B])."""
        x1, x2 = x[:, : self.c1], x[:, self.c1 :]
        s, t = self._coefficients(x1)  # [B,c2,H,W] each
        u = torch.cat([x1, x2 * torch.exp(s) + t], dim=1)
        log_det = s.sum(dim=(1, 2, 3))
        if self.global_scale is not None:
            scale = self._global_scale()
            u = u * scale + self.global_offset
            log_det = log_det + x.shape[2] * x.shape[3] * torch.log(scale).sum()
        return u[:, self.perm], log_det

    def inverse(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """y [B,C,H,W] -> (x, log|det dx/dy| [B]) with forward(x) == y."""
        u = y[:, torch.argsort(self.perm)]
        log_det = y.new_zeros(y.shape[0])
        if self.global_scale is not None:
            scale = self._global_scale()
            u = (u - self.global_offset) / scale
            log_det = log_det - y.shape[2] * y.shape[3] * torch.log(scale).sum()
        x1, y2 = u[:, : self.c1], u[:, self.c1 :]
        s, t = self._coefficients(x1)
        return torch.cat([x1, (y2 - t) * torch.exp(-s)], dim=1), log_det - s.sum(dim=(1, 2, 3))


class Flow2d(nn.Module):
    """A chain of coupling steps on one feature scale; kernels alternate 3x3 (even steps) / 1x1 (odd steps)
    unless `conv3x3_only` (reference `nf_fast_flow`)."""

    def __init__(
        self,
        channels: int,
        steps: int,
        hidden_ratio: float,
        conv3x3_only: bool,
        clamp: float,
        clamp_activation: str = "tanh",
        global_affine: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.steps = nn.ModuleList(
            CouplingStep(
                channels,
                3 if conv3x3_only or i % 2 == 0 else 1,
                hidden_ratio,
                clamp,
                clamp_activation,
                global_affine,
                generator,
            )
            for i in range(steps)
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B,C,H,W] -> (z [B,C,H,W], log|det dz/dx| [B])."""
        log_det = x.new_zeros(x.shape[0])
        for step in self.steps:
            x, step_log_det = step(x)
            log_det = log_det + step_log_det
        return x, log_det

    def inverse(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z -> (x, log|det dx/dz| [B]) with forward(x) == z."""
        log_det = z.new_zeros(z.shape[0])
        for step in reversed(self.steps):
            z, step_log_det = step.inverse(z)
            log_det = log_det + step_log_det
        return z, log_det
