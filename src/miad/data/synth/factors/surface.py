"""Uncontrolled surface: rust, dirt, specks and weathering on the parts, plus uneven lighting on the whole view.

The image's surface fraction f (drawn from [0, strength]) scales every effect: f = 0 is a clean part under even
light. The random fields are drawn once per image and applied identically to its normal and defective
renderings, so they change both the same way and never create a difference outside the defect. They are
applied in output space, after the viewpoint warp (to the warped part coverage): the fields are random per
image anyway, and the output has 2.25 times fewer pixels than the canvas.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from miad.data.synth import noise

RUST = np.array((138, 68, 28), np.float32)
DIRT = np.array((72, 62, 48), np.float32)


@dataclass(frozen=True)
class SurfaceFields:
    """Per-pixel weights on the canvas (all zero when the fraction is 0)."""

    fraction: float
    rust: np.ndarray  # (size, size) weight of rust colour on parts, 0..0.85
    rust_tone: np.ndarray  # (size, size, 3) rust colour with grain
    dirt: np.ndarray  # (size, size) darkening weight on parts
    fade: float  # desaturation of the parts
    light: np.ndarray  # (size, size, 3) multiplicative lighting on the whole view
    brightness: float  # mean lighting gain, for the manifest


def sample_surface(rng: np.random.Generator, strength: float, side: int) -> SurfaceFields:
    """The fields of one image at output size `side`."""
    f = float(rng.uniform(0.0, strength)) if strength > 0 else 0.0
    if f == 0.0:
        zeros = np.zeros((side, side), np.float32)
        return SurfaceFields(
            0.0, zeros, np.zeros((side, side, 3), np.float32), zeros, 0.0, np.ones((side, side, 3), np.float32), 1.0
        )
    n_rust = noise.smooth(rng, side, side / rng.uniform(4, 10), 4)
    rust = np.clip((n_rust - (1.0 - 0.45 * f)) / 0.18, 0.0, 1.0) * 0.8  # soft-edged stains
    rust_tone = RUST * (0.65 + 0.7 * noise.smooth(rng, side, 2.5, 1))[..., None]
    n_dirt = noise.smooth(rng, side, side / rng.uniform(3, 8), 3)
    specks = (noise.smooth(rng, side, 3.0, 1) > 1.0 - 0.04 * f).astype(np.float32)
    dirt = np.clip(0.75 * f * n_dirt**2 + 0.6 * specks, 0.0, 0.9)
    gain = 1.0 + f * rng.uniform(-0.35, 0.2)
    light = _lighting(rng, f, side) * gain
    return SurfaceFields(f, rust, rust_tone, dirt, 0.5 * f * rng.random(), light, float(light.mean()))


def _lighting(rng: np.random.Generator, f: float, side: int) -> np.ndarray:
    """A directional gradient (sun from one side, shade on the other) and a warm or cool tint."""
    a = rng.uniform(0.0, 2 * np.pi)
    t = np.linspace(-1.0, 1.0, side, dtype=np.float32)
    ramp = np.cos(a) * t[None, :] + np.sin(a) * t[:, None]
    shade = 1.0 + 0.3 * f * ramp
    tint = 0.1 * f * rng.uniform(-1.0, 1.0)
    colour = np.array([1.0 + tint, 1.0, 1.0 - tint], np.float32)
    return shade[..., None] * colour  # (side, side, 3)


def apply_surface(rgb: np.ndarray, obj: np.ndarray, fields: SurfaceFields) -> np.ndarray:
    """The warped image with the surface effects applied (uint8 RGB); a pure function of its inputs."""
    if fields.fraction == 0.0:
        return rgb
    img = rgb.astype(np.float32)
    part = obj.astype(np.float32)[..., None] * np.float32(1 / 255.0)
    if fields.fade > 0.0:
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)[..., None]
        img += (grey - img) * (np.float32(fields.fade) * part)
    rust = fields.rust[..., None] * part
    img += (fields.rust_tone - img) * rust
    img += (DIRT - img) * (fields.dirt[..., None] * part * 0.7)
    img *= fields.light
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)
