"""Metal welding: two brushed steel plates joined by a rippled weld bead; defects: weld beading, weld pit.

The bead is a shaded band with "stacked dimes" ripples, toe lines and a heat tint beside it. Weld beading is a
cluster of solidified globules and a bulge of overflowing metal at the bead; a weld pit is a dark crater with a
bright rim in the bead (porosity).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from miad.data.synth import noise
from miad.data.synth.painter import Painter, cylinder, ellipse, radial, textured
from miad.data.synth.scenes.base import Scene, check_defect

DEFECTS = ("weld_beading", "weld_pit")
HEAT_TINTS = ((176, 140, 80), (120, 90, 120), (90, 110, 150))  # straw, purple, blue oxide


@dataclass(frozen=True)
class Blob:
    centre: np.ndarray
    radius: float
    squash: float
    angle: float


@dataclass(frozen=True)
class Params:
    centre: np.ndarray
    angle_deg: float
    width: float
    ripple: float  # spacing of the ripples along the seam
    steel: tuple[float, float]  # grey levels of the two plates
    wobble: np.ndarray  # bead edge offsets at 17 stations along the seam
    tex_seed: int
    beads: tuple[Blob, ...] = ()
    pits: tuple[Blob, ...] = ()


def _axes(p: Params) -> tuple[np.ndarray, np.ndarray]:
    a = np.deg2rad(p.angle_deg)
    return np.array([np.cos(a), np.sin(a)]), np.array([-np.sin(a), np.cos(a)])


def sample(rng: np.random.Generator, defect: str | None) -> Params:
    check_defect("metal_welding", DEFECTS, defect)
    p = Params(
        centre=np.array([0.5, 0.5]) + rng.uniform(-0.08, 0.08, 2),
        angle_deg=float(rng.uniform(-25, 25) + rng.choice([0.0, 90.0])),
        width=rng.uniform(0.12, 0.17),
        ripple=rng.uniform(0.022, 0.03),
        steel=(rng.uniform(120, 165), rng.uniform(120, 165)),
        wobble=rng.uniform(-0.006, 0.006, (17, 2)),
        tex_seed=int(rng.integers(1 << 31)),
    )
    if defect == "weld_beading":
        return replace(p, beads=_sample_beading(rng, p))
    if defect == "weld_pit":
        return replace(p, pits=_sample_pits(rng, p))
    return p


def _on_bead(p: Params, along: float, across: float) -> np.ndarray:
    u, n = _axes(p)
    return p.centre + u * along + n * across * p.width / 2


def _sample_beading(rng: np.random.Generator, p: Params) -> tuple[Blob, ...]:
    along, side = rng.uniform(-0.15, 0.15), rng.choice([-1.0, 1.0])
    blobs = [
        Blob(
            _on_bead(p, along, side * 0.9),
            p.width * rng.uniform(0.35, 0.5),
            rng.uniform(0.6, 0.85),
            p.angle_deg + rng.uniform(-20, 20),
        )
    ]
    for _ in range(rng.integers(4, 10)):
        c = _on_bead(p, along + rng.uniform(-0.09, 0.09), side * rng.uniform(0.6, 2.6))
        blobs.append(Blob(c, rng.uniform(0.009, 0.022), rng.uniform(0.8, 1.0), rng.uniform(0, 180)))
    return tuple(blobs)


def _sample_pits(rng: np.random.Generator, p: Params) -> tuple[Blob, ...]:
    along = rng.uniform(-0.15, 0.15)
    pits = []
    for _ in range(rng.integers(1, 4)):
        c = _on_bead(p, along + rng.uniform(-0.06, 0.06), rng.uniform(-0.5, 0.5))
        pits.append(Blob(c, rng.uniform(0.012, 0.026), rng.uniform(0.65, 1.0), rng.uniform(0, 180)))
    return tuple(pits)


@lru_cache(maxsize=4)
def _brushing(seed: int, side: int, angle: float) -> np.ndarray:
    return noise.streaks(np.random.default_rng(seed), side, angle, side / 8)


def draw(pt: Painter, p: Params, defective: bool) -> None:
    tex = _brushing(p.tex_seed, pt.side, round(p.angle_deg, 3))
    far = 1.5
    canvas = np.array([[-far, -far], [far + 1, -far], [far + 1, far + 1], [-far, far + 1]])
    pt.fill([canvas], textured(_two_plates(pt, p), tex, 0.12))
    for sign in (1.0, -1.0):
        _heat_tint(pt, p, sign)
    _bead(pt, p)
    if defective:
        for b in p.pits:
            _pit(pt, b)
        for b in p.beads:
            _globule(pt, b)


def _two_plates(pt: Painter, p: Params):
    """Each plate its own grey: one pass over the canvas instead of one per plate."""
    _, n = _axes(p)
    c = pt.to_px(p.centre).astype(np.float32)
    grey = np.array([[g, g, g * 1.03] for g in p.steel], np.float32)

    def shade(xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
        side = ((xx - c[0]) * n[0] + (yy - c[1]) * n[1]) < 0  # (h, w): True on the second plate
        return np.where(side[..., None], grey[1], grey[0])

    return shade


def _band(p: Params, inner: float, outer: float) -> np.ndarray:
    s = np.linspace(-1.2, 1.2, 17)
    u, n = _axes(p)
    a = p.centre + s[:, None] * u + n * (inner * p.width / 2) + p.wobble
    b = p.centre + s[:, None] * u + n * (outer * p.width / 2) + p.wobble
    return np.concatenate([a, b[::-1]])


def _heat_tint(pt: Painter, p: Params, sign: float) -> None:
    for k, tint in enumerate(HEAT_TINTS):
        band = _band(p, sign * (1.0 + 0.5 * k), sign * (1.6 + 0.5 * k))
        pt.fill([band], tint, opacity=0.22 - 0.05 * k)


def _bead(pt: Painter, p: Params) -> None:
    u, n = _axes(p)
    band = _band(p, -1.0, 1.0)
    edge0, edge1 = pt.to_px(p.centre - n * p.width / 2), pt.to_px(p.centre + n * p.width / 2)
    pt.fill([band], cylinder((150, 145, 140), edge0, edge1, ambient=0.5, shine=0.25))
    half = np.linspace(-np.pi / 2, np.pi / 2, 15)
    arc = u * (p.width * 0.3 * np.cos(half))[:, None] + n * (p.width * 0.46 * np.sin(half))[:, None]
    arcs = np.array([p.centre + u * s + arc for s in np.arange(-1.2, 1.2, p.ripple)])  # (N, 15, 2)
    pt.fill(arcs, (225, 222, 215), stroke=pt.thick(0.004), closed=False, opacity=0.45)
    pt.fill(arcs + u * p.ripple * 0.35, (70, 66, 62), stroke=pt.thick(0.004), closed=False, opacity=0.35)
    for sign in (-1.0, 1.0):  # toes: where the bead meets the plate
        toe = _band(p, sign, sign)[:17]
        pt.line(toe, (60, 58, 55), 0.005, opacity=0.6)


def _globule(pt: Painter, b: Blob) -> None:
    shape = ellipse(*b.centre, b.radius, b.radius * b.squash, b.angle, 24)
    c = pt.to_px(b.centre)
    hi = c - pt.px(b.radius) * 0.35
    pt.fill([shape], radial((235, 232, 225), (70, 66, 62), hi, pt.px(b.radius) * 1.4))
    pt.fill([shape], (45, 42, 40), stroke=pt.thick(0.004), opacity=0.7)


def _pit(pt: Painter, b: Blob) -> None:
    rim = ellipse(*b.centre, b.radius * 1.25, b.radius * b.squash * 1.25, b.angle, 24)
    hole = ellipse(*b.centre, b.radius, b.radius * b.squash, b.angle, 24)
    pt.fill([rim], (200, 196, 188), opacity=0.8)
    pt.fill([hole], radial((15, 14, 14), (80, 75, 70), pt.to_px(b.centre), pt.px(b.radius)))


SCENE = Scene("metal_welding", DEFECTS, ((120, 120, 125), (100, 100, 105)), sample, draw)
