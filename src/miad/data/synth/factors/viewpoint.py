"""Uncontrolled viewpoint: rotation, zoom, perspective (keystone) and translation as one homography.

The image's viewpoint fraction f is drawn from [0, strength]; each component is f times its maximum times a
random signed weight in [-1, 1], so f = 0 is the canonical view and f = 1 allows the full ranges below. The
homography maps the canvas (scene frame plus margin) to the output image.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

MAX_ROTATION_DEG = 30.0
MAX_LOG_SCALE = float(np.log(1.3))  # zoom in or out by up to 30 %
MAX_TILT = 0.3  # keystone: one edge up to 30 % shorter than the opposite one
MAX_SHIFT = 0.1  # fraction of the image side


@dataclass(frozen=True)
class Viewpoint:
    fraction: float
    rotation_deg: float = 0.0
    scale: float = 1.0
    tilt_x: float = 0.0
    tilt_y: float = 0.0
    shift_x: float = 0.0
    shift_y: float = 0.0

    def homography(self, size: int, margin: int) -> np.ndarray:
        """3x3 matrix from canvas pixels to output pixels."""
        half = size / 2.0
        src = np.array([[0, 0], [size, 0], [size, size], [0, size]], np.float64) + margin
        q = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64)
        # Keystone: tilt_x narrows the left or right edge, tilt_y the top or bottom edge.
        q[:, 1] *= 1.0 + 0.5 * self.tilt_x * q[:, 0]
        q[:, 0] *= 1.0 + 0.5 * self.tilt_y * q[:, 1]
        a = np.deg2rad(self.rotation_deg)
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        dst = (q @ rot.T) * half * self.scale + half + np.array([self.shift_x, self.shift_y]) * size
        return cv2.getPerspectiveTransform(src.astype(np.float32), dst.astype(np.float32))

    def as_row(self) -> dict[str, float]:
        names = ("rotation_deg", "scale", "tilt_x", "tilt_y", "shift_x", "shift_y")
        return {n: round(getattr(self, n), 4) + 0.0 for n in names}  # + 0.0: no "-0.0" in the manifest


def sample_viewpoint(rng: np.random.Generator, strength: float) -> Viewpoint:
    f = float(rng.uniform(0.0, strength)) if strength > 0 else 0.0
    w = rng.uniform(-1.0, 1.0, size=6)
    return Viewpoint(
        fraction=f,
        rotation_deg=f * MAX_ROTATION_DEG * w[0],
        scale=float(np.exp(f * MAX_LOG_SCALE * w[1])),
        tilt_x=f * MAX_TILT * w[2],
        tilt_y=f * MAX_TILT * w[3],
        shift_x=f * MAX_SHIFT * w[4],
        shift_y=f * MAX_SHIFT * w[5],
    )


def warp(image: np.ndarray, h: np.ndarray, size: int, nearest: bool = False) -> np.ndarray:
    """Warp a canvas to the output; masks use nearest neighbour so they stay binary and never blur."""
    flags = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    return cv2.warpPerspective(image, h, (size, size), flags=flags, borderMode=cv2.BORDER_REFLECT_101)
