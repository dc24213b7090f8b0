"""Procedural anomaly-source textures: DRAEM's stand-in for DTD when no texture folder is given.

DRAEM pastes patches of Describable Textures Dataset images; without a download we generate varied textures on
the fly: fractal noise (several octaves), stripes, checkerboards, blobs, speckled colour fields and scratched
lines, each with random colours, frequencies and orientations. Only a few dozen random numbers per texture are
drawn (on the CPU, from the caller's torch.Generator, so a seed reproduces them on any device); the pixels are
computed on `device`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

Generator = torch.Generator | None


def _uniform(gen: Generator, low: float = 0.0, high: float = 1.0, size: tuple[int, ...] = ()) -> torch.Tensor:
    return low + (high - low) * torch.rand(size, generator=gen)


def _randint(gen: Generator, low: int, high: int) -> int:
    """Uniform integer in [low, high]."""
    return int(torch.randint(low, high + 1, (1,), generator=gen))


def _grid(size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates in [0, 1): (y, x), each [S,S]."""
    t = (torch.arange(size, device=device, dtype=torch.float32) + 0.5) / size
    return torch.meshgrid(t, t, indexing="ij")


def _rotated_coordinate(size: int, gen: Generator, device: torch.device) -> torch.Tensor:
    """[S,S] coordinate along a random direction (for stripes and gradients)."""
    y, x = _grid(size, device)
    angle = float(_uniform(gen, 0.0, math.pi))
    return math.cos(angle) * x + math.sin(angle) * y


def fractal_noise(size: int, gen: Generator, device: torch.device, octaves: int | None = None) -> torch.Tensor:
    """[S,S] sum of bilinearly upsampled random lattices (coarse to fine, halving amplitude), scaled to [0, 1]."""
    octaves = octaves or _randint(gen, 1, 5)
    start = _randint(gen, 1, 3)  # coarsest lattice 2**start cells
    total = torch.zeros(size, size, device=device)
    for o in range(octaves):
        cells = min(2 ** (start + o), size)
        lattice = torch.randn((1, 1, cells + 1, cells + 1), generator=gen).to(device)
        total += 0.5**o * F.interpolate(lattice, size=(size, size), mode="bilinear", align_corners=True)[0, 0]
    return _rescale(total)


def _rescale(x: torch.Tensor) -> torch.Tensor:
    return (x - x.min()) / (x.max() - x.min()).clamp_min(1e-6)


def _colours(gen: Generator, n: int, device: torch.device) -> torch.Tensor:
    """[n,3] random RGB colours in [0, 1]."""
    return torch.rand((n, 3), generator=gen).to(device)


def _two_tone(pattern: torch.Tensor, gen: Generator) -> torch.Tensor:
    """[S,S] pattern in [0,1] -> [3,S,S] blend between two random colours."""
    c = _colours(gen, 2, pattern.device)
    return c[0].view(3, 1, 1) * (1 - pattern) + c[1].view(3, 1, 1) * pattern


def noise_texture(size: int, gen: Generator, device: torch.device) -> torch.Tensor:
    return _two_tone(fractal_noise(size, gen, device), gen)


def stripe_texture(size: int, gen: Generator, device: torch.device) -> torch.Tensor:
    """Parallel bands, soft or hard, slightly wobbly."""
    coord = _rotated_coordinate(size, gen, device)
    frequency, phase = float(_uniform(gen, 2, 24)), float(_uniform(gen, 0, 2 * math.pi))
    wobble = float(_uniform(gen, 0.0, 0.6)) * (fractal_noise(size, gen, device, 2) - 0.5)
    wave = torch.sin(2 * math.pi * frequency * coord + phase + 2 * math.pi * wobble)
    sharpness = float(_uniform(gen, 1.0, 12.0))
    return _two_tone(torch.sigmoid(sharpness * wave), gen)


def checker_texture(size: int, gen: Generator, device: torch.device) -> torch.Tensor:
    """Rotated checkerboard."""
    y, x = _grid(size, device)
    angle = float(_uniform(gen, 0.0, math.pi / 2))
    u, v = math.cos(angle) * x - math.sin(angle) * y, math.sin(angle) * x + math.cos(angle) * y
    frequency = float(_uniform(gen, 2, 16))
    board = torch.sin(2 * math.pi * frequency * u) * torch.sin(2 * math.pi * frequency * v)
    return _two_tone((board > 0).float(), gen)


def blob_texture(size: int, gen: Generator, device: torch.device) -> torch.Tensor:
    """Thresholded smooth noise: patches of up to three colours."""
    n = _randint(gen, 2, 3)
    colours = _colours(gen, n, device)  # [n,3]
    field = fractal_noise(size, gen, device, _randint(gen, 1, 3))
    levels = torch.sort(torch.rand((n - 1,), generator=gen)).values.to(device)
    index = torch.bucketize(field, levels)  # [S,S] in 0..n-1
    return colours[index].permute(2, 0, 1)


def speckle_texture(size: int, gen: Generator, device: torch.device) -> torch.Tensor:
    """Independent noise per channel over a colour gradient: grainy, colourful surfaces."""
    gradient = _two_tone(_rescale(_rotated_coordinate(size, gen, device)), gen)
    grain = torch.stack([fractal_noise(size, gen, device) for _ in range(3)])
    amount = float(_uniform(gen, 0.3, 0.9))
    return (1 - amount) * gradient + amount * grain


def line_texture(size: int, gen: Generator, device: torch.device) -> torch.Tensor:
    """Random thin straight lines (scratches, cracks) over a noisy background."""
    y, x = _grid(size, device)
    ink = torch.zeros(size, size, device=device)
    for _ in range(_randint(gen, 3, 12)):
        angle, offset = float(_uniform(gen, 0, math.pi)), float(_uniform(gen, -0.7, 0.7))
        width = float(_uniform(gen, 0.003, 0.03))
        distance = (math.cos(angle) * (x - 0.5) + math.sin(angle) * (y - 0.5) - offset).abs()
        ink = torch.maximum(ink, (distance < width).float())
    background = noise_texture(size, gen, device)
    line_colour = _colours(gen, 1, device).view(3, 1, 1)
    return background * (1 - ink) + line_colour * ink


TEXTURES: dict[str, Callable[[int, Generator, torch.device], torch.Tensor]] = {
    "noise": noise_texture,
    "stripes": stripe_texture,
    "checker": checker_texture,
    "blobs": blob_texture,
    "speckle": speckle_texture,
    "lines": line_texture,
}


def procedural_texture(size: int, gen: Generator = None, device: torch.device | str = "cpu") -> torch.Tensor:
    """One random texture: uint8 [3,S,S] (the type the texture augmentations expect)."""
    device = torch.device(device)
    kinds = list(TEXTURES)
    kind = kinds[_randint(gen, 0, len(kinds) - 1)]
    rgb = TEXTURES[kind](size, gen, device)
    if bool(torch.rand((), generator=gen) < 0.5):  # fine grain on half of them, as photographs have
        rgb = rgb + float(_uniform(gen, 0.0, 0.15)) * (torch.stack([fractal_noise(size, gen, device, 1)] * 3) - 0.5)
    return (rgb.clamp(0, 1) * 255).round().to(torch.uint8)
