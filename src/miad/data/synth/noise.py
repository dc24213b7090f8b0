"""Cheap procedural noise: value noise by upsampling small random grids (a few octaves), plus grain.

Everything is drawn from the generator passed in, so a texture is a pure function of the random state.
"""

from __future__ import annotations

import cv2
import numpy as np


def smooth(rng: np.random.Generator, side: int, cell: float, octaves: int = 3) -> np.ndarray:
    """(side, side) float32 value noise in [0, 1]; `cell` is the feature size in pixels of the first octave."""
    out = np.zeros((side, side), np.float32)
    weight, total = 1.0, 0.0
    for _ in range(octaves):
        n = max(2, int(np.ceil(side / max(cell, 1.0))) + 2)
        grid = rng.random((n, n), dtype=np.float32)
        out += weight * cv2.resize(grid, (side, side), interpolation=cv2.INTER_CUBIC)
        total += weight
        weight *= 0.5
        cell /= 2.0
    return np.clip(out / total, 0.0, 1.0)


def streaks(rng: np.random.Generator, side: int, angle_deg: float, length: float = 40.0) -> np.ndarray:
    """(side, side) float32 in [-1, 1]: fine noise smeared along angle_deg (brushed or rolled metal)."""
    grain = rng.standard_normal((side, side)).astype(np.float32)
    smeared = cv2.blur(grain, (max(3, int(length)), 1), borderType=cv2.BORDER_REFLECT)
    rot = cv2.getRotationMatrix2D((side / 2, side / 2), -angle_deg, 1.0)
    # Corners rotated in from outside are filled by reflection: invisible in noise.
    out = cv2.warpAffine(smeared, rot, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return np.clip(out / (3.0 * out.std() + 1e-6), -1.0, 1.0)


def grain(rng: np.random.Generator, side: int) -> np.ndarray:
    """(side, side) float32 in [-1, 1]: per-pixel grain, slightly blurred."""
    g = cv2.GaussianBlur(rng.standard_normal((side, side)).astype(np.float32), (3, 3), 0.7)
    return np.clip(g / (3.0 * g.std() + 1e-6), -1.0, 1.0)
