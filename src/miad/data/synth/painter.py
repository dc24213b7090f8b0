"""Anti-aliased shape drawing on the scene canvas, with shaders and an object-coverage layer.

Scenes are designed in *frame units*: (0, 0) is the top-left and (1, 1) the bottom-right corner of the visible
image before the viewpoint warp. The canvas is larger than the frame by a margin on every side so that the warp
(rotation, zoom-out, shift) finds picture content instead of empty corners. Every shape is a float polygon (or
polyline) drawn with OpenCV at 1/16 pixel precision and blended by its anti-aliased coverage only inside its
bounding box, which keeps a scene of dozens of parts to a few milliseconds. `obj` records where object parts are
(surface effects such as rust apply there, never on the background).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np

Colour = tuple[float, float, float]
# A shader returns an (h, w, 3) float32 RGB texture for canvas pixel coordinates xx (1, w) and yy (h, 1).
Shader = Callable[[np.ndarray, np.ndarray], np.ndarray]
_SHIFT = 4  # OpenCV sub-pixel bits: coordinates are drawn at 1/16 pixel


def canvas_margin(size: int) -> int:
    """Pixels of canvas around the visible frame on each side."""
    return size // 4


class Painter:
    """Draws parts of one scene onto an RGB canvas (uint8) and its object-coverage layer."""

    def __init__(self, size: int, base: np.ndarray) -> None:
        self.size = size
        self.margin = canvas_margin(size)
        side = size + 2 * self.margin
        if base.shape != (side, side, 3):
            raise ValueError(f"base canvas must be {(side, side, 3)}, got {base.shape}")
        self.rgb = base.copy()
        self.obj = np.zeros((side, side), np.uint8)

    @property
    def side(self) -> int:
        return self.rgb.shape[0]

    def to_px(self, pts: np.ndarray | Sequence) -> np.ndarray:
        """Frame units -> canvas pixels; accepts (2,) or (N, 2)."""
        return np.asarray(pts, np.float64) * self.size + self.margin

    def px(self, length: float) -> float:
        """A length in frame units, in pixels."""
        return length * self.size

    def thick(self, length: float) -> int:
        """A stroke width in frame units as an OpenCV thickness (at least one pixel)."""
        return max(1, int(round(length * self.size)))

    def everywhere(self) -> np.ndarray:
        """A clip that lets everything through (forces the blending path, see catenary's wire)."""
        return np.full(self.obj.shape, 255, np.uint8)

    def coverage(self, polys: Sequence[np.ndarray], stroke: int = 0, closed: bool = True) -> np.ndarray:
        """Full-canvas uint8 coverage (0..255) of frame-unit polygons (stroke 0 = filled)."""
        cov = np.zeros(self.obj.shape, np.uint8)
        pts = [np.round(self.to_px(p) * (1 << _SHIFT)).astype(np.int32) for p in polys]
        _rasterise(cov, pts, stroke, closed)
        return cov

    def fill(
        self,
        polys: Sequence[np.ndarray],
        shade: Colour | Shader,
        *,
        stroke: int = 0,
        closed: bool = True,
        obj: bool = True,
        clip: np.ndarray | None = None,
        opacity: float = 1.0,
    ) -> None:
        """Blend a shader (or flat colour) into the canvas where the polygons cover it.

        stroke > 0 draws the outlines with that pixel width instead of filling; `clip` (full-canvas uint8)
        restricts the paint to where another part is (a crack stays on its disc); obj=False paints
        non-object detail (shadows on the ground) that surface effects must not treat as a part.
        """
        if isinstance(polys, np.ndarray):  # (N, k, 2): many same-sized shapes converted in one go
            px = list(self.to_px(polys))
        else:
            px = [self.to_px(p) for p in polys if len(p)]
        if not px:
            return
        if not callable(shade) and opacity >= 1.0 and clip is None:
            # Opaque flat colour: OpenCV blends the anti-aliased edge itself, no float pass needed.
            pts = _fixed_point(px)
            _rasterise(self.rgb, pts, stroke, closed, tuple(float(c) for c in shade))
            if obj:
                _rasterise(self.obj, pts, stroke, closed)
            return
        roi = _roi(px, stroke, self.side)
        if roi is None:
            return
        x0, y0, x1, y1 = roi
        cov = np.zeros((y1 - y0, x1 - x0), np.uint8)
        _rasterise(cov, _fixed_point([p - (x0, y0) for p in px]), stroke, closed)
        alpha = cov.astype(np.float32) * np.float32(opacity / 255.0)
        if clip is not None:
            alpha *= clip[y0:y1, x0:x1].astype(np.float32) * np.float32(1 / 255.0)
            if not alpha.any():
                return
        if callable(shade):
            xx = np.arange(x0, x1, dtype=np.float32)[None, :]
            yy = np.arange(y0, y1, dtype=np.float32)[:, None]
            tex = np.clip(shade(xx, yy) + 0.5, 0, 255).astype(np.uint8)
        else:
            tex = np.empty((y1 - y0, x1 - x0, 3), np.uint8)
            tex[:] = np.clip(np.round(np.asarray(shade, np.float32)), 0, 255).astype(np.uint8)
        region = self.rgb[y0:y1, x0:x1]
        # blendLinear: (tex * alpha + region * (1 - alpha)), one SIMD pass instead of several numpy ones.
        self.rgb[y0:y1, x0:x1] = cv2.blendLinear(tex, np.ascontiguousarray(region), alpha, 1.0 - alpha)
        if obj:
            full = np.full(alpha.shape, 255, np.uint8)
            part = np.ascontiguousarray(self.obj[y0:y1, x0:x1])
            self.obj[y0:y1, x0:x1] = cv2.blendLinear(full, part, alpha, 1.0 - alpha)

    def line(self, pts: np.ndarray, shade: Colour | Shader, width: float, **kw) -> None:
        """An open polyline of `width` frame units."""
        self.fill([np.asarray(pts, np.float64)], shade, stroke=self.thick(width), closed=False, **kw)


def _roi(px: list[np.ndarray], stroke: int, side: int) -> tuple[int, int, int, int] | None:
    allp = np.concatenate(px)
    pad = stroke // 2 + 2
    x0 = max(int(np.floor(allp[:, 0].min())) - pad, 0)
    y0 = max(int(np.floor(allp[:, 1].min())) - pad, 0)
    x1 = min(int(np.ceil(allp[:, 0].max())) + pad + 1, side)
    y1 = min(int(np.ceil(allp[:, 1].max())) + pad + 1, side)
    return None if x1 <= x0 or y1 <= y0 else (x0, y0, x1, y1)


def _fixed_point(px: list[np.ndarray]) -> list[np.ndarray]:
    if len(px) > 1 and all(p.shape == px[0].shape for p in px):
        return list(np.round(np.stack(px) * (1 << _SHIFT)).astype(np.int32))
    return [np.round(p * (1 << _SHIFT)).astype(np.int32) for p in px]


def _rasterise(img: np.ndarray, pts: list[np.ndarray], stroke: int, closed: bool, colour=255) -> None:
    if stroke > 0:
        cv2.polylines(img, pts, closed, colour, stroke, cv2.LINE_AA, _SHIFT)
    else:
        cv2.fillPoly(img, pts, colour, cv2.LINE_AA, shift=_SHIFT)


# ---------------------------------------------------------------- shapes (frame units)


def ellipse(cx: float, cy: float, rx: float, ry: float, angle_deg: float = 0.0, n: int = 48) -> np.ndarray:
    """Polygon of an ellipse rotated by angle_deg."""
    t = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    a = np.deg2rad(angle_deg)
    x, y = rx * np.cos(t), ry * np.sin(t)
    return np.stack([cx + x * np.cos(a) - y * np.sin(a), cy + x * np.sin(a) + y * np.cos(a)], axis=1)


def rect(cx: float, cy: float, w: float, h: float, angle_deg: float = 0.0) -> np.ndarray:
    """Polygon of a w x h rectangle centred at (cx, cy), rotated by angle_deg."""
    a = np.deg2rad(angle_deg)
    c, s = np.cos(a), np.sin(a)
    corners = np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) / 2
    return np.stack([cx + corners[:, 0] * c - corners[:, 1] * s, cy + corners[:, 0] * s + corners[:, 1] * c], 1)


def jagged_path(
    rng: np.random.Generator, start, direction_deg: float, length: float, steps: int, wiggle_deg: float = 35.0
) -> np.ndarray:
    """A random-walk polyline (cracks): each step turns by up to +-wiggle_deg around the main direction."""
    pts = [np.asarray(start, np.float64)]
    step = length / steps
    for _ in range(steps):
        a = np.deg2rad(direction_deg + rng.uniform(-wiggle_deg, wiggle_deg))
        pts.append(pts[-1] + step * np.array([np.cos(a), np.sin(a)]))
    return np.array(pts)


# ---------------------------------------------------------------- shaders


def linear(c0: Colour, c1: Colour, p0, p1) -> Shader:
    """Colour ramp from c0 at canvas point p0 to c1 at p1 (clamped beyond)."""
    c0a, c1a = np.asarray(c0, np.float32), np.asarray(c1, np.float32)
    p0 = np.asarray(p0, np.float32)
    d = np.asarray(p1, np.float32) - p0
    norm = float(d @ d) or 1.0

    def shade(xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
        t = np.clip(((xx - p0[0]) * d[0] + (yy - p0[1]) * d[1]) / norm, 0, 1)[..., None]
        return c0a + (c1a - c0a) * t

    return shade


def cylinder(base: Colour, p0, p1, ambient: float = 0.45, shine: float = 0.35) -> Shader:
    """Shading across a cylinder whose silhouette runs from canvas point p0 to p1 (one side to the other)."""
    b = np.asarray(base, np.float32)
    p0 = np.asarray(p0, np.float32)
    d = np.asarray(p1, np.float32) - p0
    norm = float(d @ d) or 1.0

    def shade(xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
        t = np.clip(((xx - p0[0]) * d[0] + (yy - p0[1]) * d[1]) / norm, 0, 1)
        s = np.clip(np.sin(np.pi * t), 0, 1)
        lit = ambient + (1 - ambient) * s * (2.0 - s)  # rounder than a plain sine, like a lit cylinder
        spec = shine * np.exp(-(((t - 0.32) / 0.09) ** 2))
        return b * lit[..., None] + 255.0 * spec[..., None]

    return shade


def radial(inner: Colour, outer: Colour, centre, radius: float) -> Shader:
    """Colour from `inner` at the canvas point centre to `outer` at `radius` pixels."""
    ci, co = np.asarray(inner, np.float32), np.asarray(outer, np.float32)
    centre = np.asarray(centre, np.float32)

    def shade(xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
        t = np.clip(np.hypot(xx - centre[0], yy - centre[1]) / max(radius, 1e-6), 0, 1)[..., None]
        return ci + (co - ci) * t

    return shade


def textured(shader: Shader | Colour, texture: np.ndarray, amount: float) -> Shader:
    """Modulate a shader by a full-canvas texture in [-1, 1] (grain, brushing) of relative `amount`."""

    def shade(xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
        h, w = yy.shape[0], xx.shape[1]
        base = shader(xx, yy) if callable(shader) else np.asarray(shader, np.float32)
        y0, x0 = int(yy[0, 0]), int(xx[0, 0])
        t = texture[y0 : y0 + h, x0 : x0 + w]
        return base * (1.0 + np.float32(amount) * t[..., None])

    return shade
