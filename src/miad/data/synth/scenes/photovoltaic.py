"""Photovoltaic module: a grid of solar cells with busbars and fingers under glass; defects: broken, miss,
foreign body.

Cells are mono-crystalline (dark, cut corners) or poly-crystalline (blue, speckled) on a white backsheet. Broken
is shattered glass around an impact point (radial and ring cracks); miss is one cell absent, showing the
backsheet where it should be; a foreign body is a leaf, a bird dropping or a stone lying on the glass.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from miad.data.synth import noise
from miad.data.synth.painter import Painter, ellipse, jagged_path, linear, radial, textured
from miad.data.synth.scenes.base import Scene, check_defect

DEFECTS = ("broken", "miss", "foreign_body")
BACKSHEET = (226, 229, 233)
GRID = range(-1, 7)  # cell indices covering the canvas whatever the origin


@dataclass(frozen=True)
class Params:
    origin: np.ndarray  # top-left corner of cell (0, 0) in frame units
    cell: float
    gap: float
    angle_deg: float
    mono: bool
    colour: tuple[float, float, float]
    busbars: int
    glare: tuple[float, float]  # position and width of the glass reflection band
    tex_seed: int
    missing: tuple[int, int] | None = None
    cracks: tuple[np.ndarray, ...] = ()
    impact: tuple[np.ndarray, float] | None = None
    body: tuple[str, np.ndarray, float, float, int] | None = None  # kind, centre, size, angle, seed


def sample(rng: np.random.Generator, defect: str | None) -> Params:
    check_defect("photovoltaic_module", DEFECTS, defect)
    mono = bool(rng.random() < 0.5)
    base = np.array((28, 36, 62) if mono else (42, 72, 140)) * rng.uniform(0.85, 1.15)
    p = Params(
        origin=rng.uniform(-0.2, 0.0, 2),
        cell=rng.uniform(0.2, 0.26),
        gap=rng.uniform(0.012, 0.022),
        angle_deg=float(rng.uniform(-6, 6)),
        mono=mono,
        colour=tuple(base),
        busbars=int(rng.integers(3, 6)),
        glare=(rng.uniform(-0.3, 1.3), rng.uniform(0.1, 0.35)),
        tex_seed=int(rng.integers(1 << 31)),
    )
    if defect == "miss":
        return replace(p, missing=_central_cell(rng, p))
    if defect == "broken":
        return _sample_broken(rng, p)
    if defect == "foreign_body":
        kind = ("leaf", "dropping", "stone")[rng.integers(3)]
        at = np.array([0.5, 0.5]) + rng.uniform(-0.18, 0.18, 2)
        return replace(p, body=(kind, at, rng.uniform(0.05, 0.1), rng.uniform(0, 180), int(rng.integers(1 << 31))))
    return p


def _cell_axes(p: Params) -> tuple[np.ndarray, np.ndarray]:
    a = np.deg2rad(p.angle_deg)
    return np.array([np.cos(a), np.sin(a)]), np.array([-np.sin(a), np.cos(a)])


def _cell_corner(p: Params, i: int, j: int) -> np.ndarray:
    u, v = _cell_axes(p)
    return p.origin + (u * i + v * j) * (p.cell + p.gap)


def _cell_poly(p: Params, i: int, j: int) -> np.ndarray:
    u, v = _cell_axes(p)
    c, s = _cell_corner(p, i, j), p.cell
    if not p.mono:
        return np.array([c, c + u * s, c + (u + v) * s, c + v * s])
    k = s * 0.14  # mono cells are pseudo-squares with cut corners
    local = [(k, 0), (s - k, 0), (s, k), (s, s - k), (s - k, s), (k, s), (0, s - k), (0, k)]
    return np.array([c + u * x + v * y for x, y in local])


def _central_cell(rng: np.random.Generator, p: Params) -> tuple[int, int]:
    centres = {(i, j): _cell_corner(p, i, j) + p.cell / 2 for i in GRID for j in GRID}
    near = sorted(centres, key=lambda ij: np.abs(centres[ij] - 0.5).max())
    return near[int(rng.integers(0, 3))]


def _sample_broken(rng: np.random.Generator, p: Params) -> Params:
    i, j = _central_cell(rng, p)
    at = _cell_corner(p, i, j) + p.cell * rng.uniform(0.25, 0.75, 2)
    reach = rng.uniform(0.12, 0.2)
    cracks = []
    angles = np.sort(rng.uniform(0, 360, rng.integers(6, 11)))
    ends = []
    for a in angles:
        path = jagged_path(rng, at, a, reach * rng.uniform(0.6, 1.0), 6, 20)
        cracks.append(path)
        ends.append(path[3])
    cracks.append(np.array(ends + [ends[0]]))
    cracks.append(np.array([pth[5] for pth in cracks[: len(angles)]] + [cracks[0][5]]))
    return replace(p, cracks=tuple(cracks), impact=(at, reach * 0.12))


@lru_cache(maxsize=4)
def _speckle(seed: int, side: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return noise.smooth(rng, side, 6.0, 2) * 2 - 1


def draw(pt: Painter, p: Params, defective: bool) -> None:
    pt.fill([np.array([[-0.5, -0.5], [1.5, -0.5], [1.5, 1.5], [-0.5, 1.5]])], BACKSHEET)
    cells = [(i, j) for i in GRID for j in GRID if not (defective and p.missing == (i, j))]
    # All cells in one pass each for the wafers, the fingers and the busbars (a scene has ~60 cells).
    pt.fill(
        [_cell_poly(p, i, j) for i, j in cells],
        textured(_wafer_shader(pt, p), _speckle(p.tex_seed, pt.side), 0.0 if p.mono else 0.25),
    )
    u, v = _cell_axes(p)
    fingers, busbars = [], []
    finger_at = np.linspace(0.04, 0.96, 14)[:, None] * p.cell
    busbar_at = (np.arange(p.busbars) + 0.5)[:, None] / p.busbars * p.cell
    for i, j in cells:
        c = _cell_corner(p, i, j)
        fingers.append(np.stack([c + v * finger_at, c + v * finger_at + u * p.cell], 1))
        busbars.append(np.stack([c + u * busbar_at, c + u * busbar_at + v * p.cell], 1))
    fingers, busbars = np.concatenate(fingers), np.concatenate(busbars)
    pt.fill(fingers, (150, 160, 175), stroke=1, closed=False, opacity=0.25)
    pt.fill(busbars, (205, 208, 212), stroke=pt.thick(0.007), closed=False)
    g0, gw = p.glare
    band = np.array([[g0 - 0.6, -0.5], [g0 - 0.6 + gw, -0.5], [g0 + 0.6 + gw, 1.5], [g0 + 0.6, 1.5]])
    pt.fill([band], (255, 255, 255), opacity=0.1)
    if defective:
        _defect(pt, p)


def _wafer_shader(pt: Painter, p: Params):
    """A light-to-dark ramp across every cell (position within the cell pitch along its diagonal)."""
    u, v = _cell_axes(p)
    col = np.array(p.colour, np.float32)
    o = pt.to_px(p.origin).astype(np.float32)
    pitch = np.float32(pt.px(p.cell + p.gap))

    def shade(xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
        a = ((xx - o[0]) * u[0] + (yy - o[1]) * u[1]) % pitch
        b = ((xx - o[0]) * v[0] + (yy - o[1]) * v[1]) % pitch
        t = ((a + b) / (2 * pitch)).astype(np.float32)[..., None]
        return col * (1.15 - 0.3 * t)

    return shade


def _defect(pt: Painter, p: Params) -> None:
    if p.impact is not None:
        at, r = p.impact
        pt.fill([ellipse(*at, r, r)], radial((230, 235, 240), (120, 140, 170), pt.to_px(at), pt.px(r)))
        for path in p.cracks:
            pt.line(path, (200, 212, 228), 0.0045, opacity=0.9)
    if p.body is not None:
        _foreign_body(pt, *p.body)


def _foreign_body(pt: Painter, kind: str, at: np.ndarray, size: float, angle: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    if kind == "leaf":
        t = np.linspace(0, np.pi, 20)
        half = np.stack([np.cos(t) * size, np.sin(t) ** 1.5 * size * 0.38], 1)
        local = np.concatenate([half, half[::-1] * [1, -1]])
        a = np.deg2rad(angle)
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        leaf = at + local @ rot.T
        tone = np.array((70, 120, 40)) if rng.random() < 0.5 else np.array((150, 105, 45))
        pt.fill([leaf], linear(tuple(tone * 1.2), tuple(tone * 0.75), pt.to_px(leaf[0]), pt.to_px(leaf[19])))
        pt.line(np.array([at - rot[:, 0] * size, at + rot[:, 0] * size * 1.15]), tuple(tone * 0.6), 0.005)
    elif kind == "dropping":
        blob = ellipse(*at, size * 0.7, size * 0.55, angle, 20)
        blob = at + (blob - at) * rng.uniform(0.75, 1.2, (20, 1))
        pt.fill([blob], (236, 236, 230))
        core = ellipse(*(at + rng.uniform(-0.2, 0.2, 2) * size), size * 0.2, size * 0.15, angle, 12)
        pt.fill([core], (95, 90, 80))
    else:
        stone = ellipse(*at, size * 0.55, size * 0.42, angle, 10)
        stone = at + (stone - at) * rng.uniform(0.8, 1.15, (10, 1))
        c = pt.to_px(at)
        pt.fill([stone], radial((165, 150, 130), (85, 75, 62), c - pt.px(size) * 0.2, pt.px(size) * 0.7))


SCENE = Scene("photovoltaic_module", DEFECTS, ((150, 155, 160), (135, 140, 145)), sample, draw)
