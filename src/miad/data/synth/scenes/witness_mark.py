"""Witness mark: a close-up of one nut on a bolt with a paint line across bolt end, nut, washer and plate;
defect: looseness.

Maintenance crews paint a straight line over a tightened joint; if the nut turns, the line breaks. In the
defective rendering the nut (with its painted part) has turned by 15-40 degrees while the bolt, washer and
plate keep theirs, so the stripe no longer lines up.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from miad.data.synth.painter import Painter
from miad.data.synth.scenes import hardware as hw
from miad.data.synth.scenes.base import Scene, check_defect

DEFECTS = ("looseness",)
PAINTS = ((205, 35, 30), (235, 198, 40), (240, 240, 235))  # red, yellow, white


@dataclass(frozen=True)
class Params:
    view: hw.View
    radius: float
    nut_height: float
    protrude: float
    theta: float  # nut rotation
    steel: tuple[float, float, float]
    plate_grey: float
    edge_y: float
    paint_angle: float  # direction of the witness line
    paint_width: float
    paint_reach: float  # how far the line runs on the plate beyond the washer
    paint: tuple[float, float, float]
    tex_seed: int
    turn: float = 0.0  # looseness: rotation of the nut since it was marked


def sample(rng: np.random.Generator, defect: str | None) -> Params:
    check_defect("witness_mark", DEFECTS, defect)
    r = rng.uniform(0.17, 0.21)
    grey = rng.uniform(110, 160)
    p = Params(
        view=hw.View(np.array([0.5, 0.5]) + rng.uniform(-0.04, 0.04, 2), rng.uniform(45, 65)),
        radius=r,
        nut_height=r * rng.uniform(0.7, 0.85),
        protrude=rng.uniform(0.05, 0.08),
        theta=rng.uniform(0, 60),
        steel=(grey, grey * 0.98, grey * 0.95),
        plate_grey=rng.uniform(120, 175),
        edge_y=rng.uniform(0.5, 0.8),
        paint_angle=rng.uniform(55, 125),
        paint_width=rng.uniform(0.035, 0.05),
        paint_reach=rng.uniform(0.06, 0.12),
        paint=PAINTS[rng.integers(len(PAINTS))],
        tex_seed=int(rng.integers(1 << 31)),
    )
    if defect is None:
        return p
    return replace(p, turn=float(rng.choice([-1, 1]) * rng.uniform(15, 40)))


def draw(pt: Painter, p: Params, defective: bool) -> None:
    v, r = p.view, p.radius
    turn = p.turn if defective else 0.0
    shank_r, washer_r, washer_h = r * 0.55, r * 1.3, r * 0.1
    hw.plate(pt, v, p.plate_grey, p.edge_y, 0.05, p.tex_seed)
    a, w, rgb = p.paint_angle, p.paint_width, p.paint
    hw.stripe_on_plane(pt, v, 0, 0, 0.0, a, washer_r * 0.95, washer_r + p.paint_reach, w, rgb)
    hw.shadow(pt, v, 0, 0, washer_r)
    hw.cylinder_part(pt, v, 0, 0, washer_r, 0.0, washer_h, p.steel)
    hw.stripe_on_cylinder(pt, v, 0, 0, washer_r, 0.0, washer_h, a, w, rgb)
    hw.stripe_on_plane(pt, v, 0, 0, washer_h, a, r * 0.8, washer_r, w, rgb)
    nut_top = washer_h + p.nut_height
    hw.nut(pt, v, 0, 0, r, washer_h, p.nut_height, p.theta + turn, p.steel, paint=(a + turn, w, rgb, shank_r))
    top = nut_top + p.protrude
    hw.cylinder_part(pt, v, 0, 0, shank_r, nut_top, top, p.steel, threads=True)
    hw.stripe_on_cylinder(pt, v, 0, 0, shank_r, nut_top, top, a, w, rgb)
    hw.stripe_on_plane(pt, v, 0, 0, top, a, -shank_r * 0.9, shank_r * 0.9, w, rgb)


SCENE = Scene("witness_mark", DEFECTS, ((140, 140, 140), (115, 115, 118)), sample, draw)
