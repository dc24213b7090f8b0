"""Wind turbine: a close-up of a rotor blade against the sky; defect: crack.

The blade is a long tapering band with a rounded leading edge (bright) and a thin trailing edge (shaded), a
shell seam along its span and a fine matte grain. A crack is a dark jagged line with a light rim of lifted
paint, along the span or across the chord, clipped to the blade.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from miad.data.synth import noise
from miad.data.synth.painter import Painter, cylinder, jagged_path, textured
from miad.data.synth.scenes.base import Scene, check_defect

DEFECTS = ("crack",)


@dataclass(frozen=True)
class Params:
    centre: np.ndarray  # a point on the blade's mid-chord line
    angle_deg: float  # direction of the span
    chord: float  # blade width at the centre
    taper: float  # chord change per unit of span
    bend: float  # curvature of the leading edge
    flip: bool  # leading edge on the +normal side or the -normal side
    paint: tuple[float, float, float]
    tex_seed: int
    crack: tuple[tuple[np.ndarray, ...], float] | None = None  # polylines, width


def _axes(p: Params) -> tuple[np.ndarray, np.ndarray]:
    a = np.deg2rad(p.angle_deg)
    n = np.array([-np.sin(a), np.cos(a)]) * (-1.0 if p.flip else 1.0)
    return np.array([np.cos(a), np.sin(a)]), n


def sample(rng: np.random.Generator, defect: str | None) -> Params:
    check_defect("wind_turbine", DEFECTS, defect)
    grey = rng.uniform(205, 235)
    p = Params(
        centre=np.array([0.5, 0.5]) + rng.uniform(-0.08, 0.08, 2),
        angle_deg=float(rng.uniform(-40, 40) + rng.choice([0.0, 90.0])),
        chord=rng.uniform(0.5, 0.75),
        taper=rng.uniform(0.05, 0.18),
        bend=rng.uniform(-0.06, 0.06),
        flip=bool(rng.random() < 0.5),
        paint=(grey, grey * rng.uniform(0.99, 1.01), grey * rng.uniform(0.99, 1.03)),
        tex_seed=int(rng.integers(1 << 31)),
    )
    if defect is None:
        return p
    u, n = _axes(p)
    start = p.centre + u * rng.uniform(-0.15, 0.15) + n * p.chord * rng.uniform(-0.3, 0.3)
    along = rng.random() < 0.5
    direction = np.rad2deg(np.arctan2(*(u if along else n)[::-1])) + rng.uniform(-25, 25)
    length = rng.uniform(0.15, 0.3) if along else p.chord * rng.uniform(0.25, 0.45)
    paths = [jagged_path(rng, start, direction, length, 10, 30)]
    if rng.random() < 0.5:
        k = int(rng.integers(3, 8))
        paths.append(
            jagged_path(rng, paths[0][k], direction + rng.choice([-1, 1]) * rng.uniform(30, 60), length * 0.35, 5, 30)
        )
    return replace(p, crack=(tuple(paths), rng.uniform(0.006, 0.01)))


def _outline(p: Params) -> np.ndarray:
    u, n = _axes(p)
    s = np.linspace(-1.3, 1.3, 25)[:, None]
    half = (p.chord + p.taper * s) / 2
    lead = p.centre + u * s + n * (half + p.bend * (s**2 - 0.5))
    trail = p.centre + u * s - n * half * 0.95
    return np.concatenate([lead, trail[::-1]])


@lru_cache(maxsize=4)
def _grain(seed: int, side: int) -> np.ndarray:
    return noise.grain(np.random.default_rng(seed), side)


def draw(pt: Painter, p: Params, defective: bool) -> None:
    u, n = _axes(p)
    blade = _outline(p)
    lead, trail = pt.to_px(p.centre + n * p.chord / 2), pt.to_px(p.centre - n * p.chord / 2)
    shade = cylinder(p.paint, trail, lead + (lead - trail) * 0.6, ambient=0.62, shine=0.12)
    pt.fill([blade], textured(shade, _grain(p.tex_seed, pt.side), 0.025))
    seam = p.centre + u * np.linspace(-1.3, 1.3, 9)[:, None] + n * p.chord * 0.18
    pt.line(seam, tuple(np.array(p.paint) * 0.86), 0.004, opacity=0.7)
    pt.fill([blade], tuple(np.array(p.paint) * 0.55), stroke=pt.thick(0.004), opacity=0.8)
    if defective and p.crack is not None:
        paths, width = p.crack
        clip = pt.coverage([blade])
        for i, path in enumerate(paths):
            w = width * (1.0 if i == 0 else 0.7)
            pt.line(path, (250, 250, 248), w * 2.2, clip=clip, opacity=0.6)
            pt.line(path, (55, 50, 48), w, clip=clip)


SCENE = Scene("wind_turbine", DEFECTS, ((120, 165, 215), (185, 210, 232)), sample, draw)
