"""Uncontrolled background: a cluttered procedural outdoor scene blended over the scenario's plain backdrop.

The clutter is a sky gradient with clouds, a horizon with foliage and soil, tree crowns, and man-made
structures (poles, lattice towers, buildings, overhead lines). The image's background fraction f (drawn from
[0, strength]) is the weight of the clutter: f = 0 leaves the controlled backdrop, a plain gradient.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from miad.data.synth import noise

Colour = tuple[float, float, float]


def render_background(
    rng: np.random.Generator, fraction: float, backdrop: tuple[Colour, Colour], side: int
) -> np.ndarray:
    """(side, side, 3) uint8 RGB: backdrop gradient (top colour, bottom colour) mixed with clutter by fraction
    (read-only when fraction is 0: the plain backdrop is shared)."""
    plain = _plain(tuple(map(float, backdrop[0])), tuple(map(float, backdrop[1])), side)
    if fraction <= 0.0:
        return plain
    # Rendered at half resolution: 4x cheaper, and a background is out of focus anyway.
    small = max(16, side // 2)
    clutter = cv2.resize(_clutter(rng, small), (side, side), interpolation=cv2.INTER_LINEAR)
    return cv2.addWeighted(clutter, fraction, plain, 1.0 - fraction, 0.0)


@lru_cache(maxsize=16)
def _plain(top: Colour, bottom: Colour, side: int) -> np.ndarray:
    t = np.linspace(0.0, 1.0, side, dtype=np.float32)[:, None, None]
    top_a, bottom_a = np.asarray(top, np.float32), np.asarray(bottom, np.float32)
    ramp = np.broadcast_to(top_a + (bottom_a - top_a) * t, (side, side, 3))
    plain = np.clip(ramp + 0.5, 0, 255).astype(np.uint8)
    plain.flags.writeable = False  # shared between images: callers copy
    return plain


def _clutter(rng: np.random.Generator, side: int) -> np.ndarray:
    img = _sky(rng, side)
    horizon = int(side * rng.uniform(0.35, 0.8))
    _ground(rng, img, horizon)
    for _ in range(rng.integers(1, 4)):
        _tree_crown(rng, img, horizon)
    for _ in range(rng.integers(1, 5)):
        (_pole, _tower, _building, _wires)[rng.integers(0, 4)](rng, img, horizon)
    return img


def _sky(rng: np.random.Generator, side: int) -> np.ndarray:
    overcast = rng.random() < 0.35
    top = np.array((150, 160, 170) if overcast else (70, 130, 205), np.float32) * rng.uniform(0.85, 1.1)
    low = np.array((205, 210, 215) if overcast else (190, 212, 232), np.float32)
    t = np.linspace(0.0, 1.0, side, dtype=np.float32)[:, None, None]
    sky = top + (low - top) * t
    clouds = np.clip((noise.smooth(rng, side, side / 3.0, 3) - rng.uniform(0.45, 0.6)) * 4.0, 0, 1)
    sky = sky + (np.float32(238) - sky) * clouds[..., None] * 0.85
    return np.clip(sky, 0, 255).astype(np.uint8)


def _ground(rng: np.random.Generator, img: np.ndarray, horizon: int) -> None:
    h = img.shape[0] - horizon
    if h <= 0:
        return
    side = img.shape[1]
    n = noise.smooth(rng, max(h, side), rng.uniform(6, 18), 3)[:h, :side, None]
    green = np.array((55, 85, 40), np.float32) * rng.uniform(0.7, 1.3)
    soil = np.array((120, 100, 75), np.float32)
    img[horizon:] = np.clip(soil + (green - soil) * np.clip(n * 1.6 - 0.2, 0, 1) + (n - 0.5) * 60, 0, 255)


def _tree_crown(rng: np.random.Generator, img: np.ndarray, horizon: int) -> None:
    side = img.shape[0]
    r = int(side * rng.uniform(0.08, 0.2))
    cx, cy = int(rng.uniform(0, side)), int(horizon - r * rng.uniform(0.2, 0.8))
    x0, y0, x1, y1 = max(cx - r, 0), max(cy - r, 0), min(cx + r, side), min(cy + r, side)
    if x1 <= x0 or y1 <= y0:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1]
    n = noise.smooth(rng, 2 * r, r / 3.0, 2)[: y1 - y0, : x1 - x0]
    inside = (np.hypot(xx - cx, yy - cy) / r + (n - 0.5) * 0.8) < 0.85
    leaf = np.array((35, 70, 30), np.float32) * (0.6 + 0.8 * n[..., None])
    img[y0:y1, x0:x1][inside] = np.clip(leaf[inside], 0, 255).astype(np.uint8)


def _grey(rng: np.random.Generator) -> tuple[int, int, int]:
    g = int(rng.uniform(50, 130))
    return (g, g, g + int(rng.uniform(0, 12)))


def _pole(rng: np.random.Generator, img: np.ndarray, horizon: int) -> None:
    side = img.shape[0]
    x, w = int(rng.uniform(0, side)), max(2, int(side * rng.uniform(0.015, 0.04)))
    cv2.rectangle(img, (x, int(side * rng.uniform(0.0, 0.3))), (x + w, side), _grey(rng), -1)
    arm_y = int(side * rng.uniform(0.05, 0.35))
    cv2.line(img, (x - w * 4, arm_y), (x + w * 5, arm_y), _grey(rng), max(1, w // 2))


def _tower(rng: np.random.Generator, img: np.ndarray, horizon: int) -> None:
    side = img.shape[0]
    cx, top, spread = rng.uniform(0, side), rng.uniform(0, 0.3) * side, rng.uniform(0.05, 0.15) * side
    colour, t = _grey(rng), max(1, side // 200)
    left, right = (cx - spread, float(horizon)), (cx + spread, float(horizon))
    apex_l, apex_r = (cx - spread * 0.25, top), (cx + spread * 0.25, top)
    for a, b in ((left, apex_l), (right, apex_r)):
        cv2.line(img, _ip(a), _ip(b), colour, t + 1, cv2.LINE_AA)
    for k in np.linspace(0.0, 1.0, 7):  # cross bracing
        la, ra = np.add(left, np.subtract(apex_l, left) * k), np.add(right, np.subtract(apex_r, right) * k)
        lb = np.add(left, np.subtract(apex_l, left) * min(k + 1 / 6, 1))
        cv2.line(img, _ip(la), _ip(ra), colour, t, cv2.LINE_AA)
        cv2.line(img, _ip(ra), _ip(lb), colour, t, cv2.LINE_AA)


def _building(rng: np.random.Generator, img: np.ndarray, horizon: int) -> None:
    side = img.shape[0]
    w, h = int(side * rng.uniform(0.1, 0.35)), int(side * rng.uniform(0.08, 0.3))
    x = int(rng.uniform(-0.1, 0.9) * side)
    wall = tuple(int(v) for v in rng.uniform(90, 200) * np.array([1.0, 0.95, 0.88]))
    cv2.rectangle(img, (x, horizon - h), (x + w, horizon + 2), wall, -1)
    step = max(4, w // 5)
    for wx in range(x + step // 2, x + w - step // 2, step):
        for wy in range(horizon - h + step // 2, horizon - step // 2, step):
            cv2.rectangle(img, (wx, wy), (wx + step // 3, wy + step // 3), (60, 70, 85), -1)


def _wires(rng: np.random.Generator, img: np.ndarray, horizon: int) -> None:
    side = img.shape[0]
    x = np.linspace(0, side, 24)
    for _ in range(rng.integers(1, 4)):
        y0, sag = rng.uniform(0.05, 0.6) * side, rng.uniform(0.0, 0.08) * side
        y = y0 + sag * (1 - ((x - side / 2) / (side / 2)) ** 2) + rng.uniform(-0.1, 0.1) * x
        cv2.polylines(img, [np.stack([x, y], 1).astype(np.int32)], False, (40, 40, 45), 1, cv2.LINE_AA)


def _ip(p) -> tuple[int, int]:
    return int(round(p[0])), int(round(p[1]))
