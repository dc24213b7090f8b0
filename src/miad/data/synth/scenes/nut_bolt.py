"""Nut and bolt: two bolts through a galvanised plate, each with washer, hex nut and threaded end; defects:
looseness, bolt miss, nut miss.

Looseness: one nut has backed off up the thread (a gap shows the thread under it) and turned; nut miss: its nut
is absent and the threaded shank stands on the washer; bolt miss: bolt, nut and washer are absent and the empty
hole shows where they should be.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from miad.data.synth.painter import Painter
from miad.data.synth.scenes import hardware as hw
from miad.data.synth.scenes.base import Scene, check_defect

DEFECTS = ("looseness", "bolt_miss", "nut_miss")


@dataclass(frozen=True)
class Bolt:
    x: float
    y: float
    theta: float  # nut rotation (degrees)
    lift: float = 0.0  # looseness: how far the nut has backed off
    has_nut: bool = True
    has_bolt: bool = True


@dataclass(frozen=True)
class Params:
    view: hw.View
    radius: float  # nut circumradius
    nut_height: float
    protrude: float  # bolt end above the nut
    steel: tuple[float, float, float]
    plate_grey: float
    edge_y: float
    tex_seed: int
    bolts: tuple[Bolt, ...]
    faulty: int | None = None
    fault: Bolt | None = None


def sample(rng: np.random.Generator, defect: str | None) -> Params:
    check_defect("nut_and_bolt", DEFECTS, defect)
    r = rng.uniform(0.11, 0.145)
    spacing, tilt = rng.uniform(0.4, 0.48), np.deg2rad(rng.uniform(-20, 20))
    offsets = (
        np.array([[-0.5, 0.0], [0.5, 0.0]])
        * spacing
        @ np.array([[np.cos(tilt), np.sin(tilt)], [-np.sin(tilt), np.cos(tilt)]])
    )
    grey = rng.uniform(125, 170)
    p = Params(
        view=hw.View(np.array([0.5, 0.55]) + rng.uniform(-0.04, 0.04, 2), rng.uniform(45, 65)),
        radius=r,
        nut_height=r * rng.uniform(0.75, 0.9),
        protrude=rng.uniform(0.05, 0.09),
        steel=(grey, grey, grey * 1.04),
        plate_grey=rng.uniform(140, 185),
        edge_y=rng.uniform(0.45, 0.9),
        tex_seed=int(rng.integers(1 << 31)),
        bolts=tuple(Bolt(x, y, rng.uniform(0, 60)) for x, y in offsets),
    )
    if defect is None:
        return p
    faulty = int(rng.integers(0, 2))
    b = p.bolts[faulty]
    if defect == "looseness":
        turn = rng.choice([-1, 1]) * rng.uniform(12, 30)
        fault = replace(b, theta=b.theta + turn, lift=rng.uniform(0.035, 0.06))
    elif defect == "nut_miss":
        fault = replace(b, has_nut=False)
    else:
        fault = replace(b, has_nut=False, has_bolt=False)
    return replace(p, faulty=faulty, fault=fault)


def draw(pt: Painter, p: Params, defective: bool) -> None:
    v = p.view
    hw.plate(pt, v, p.plate_grey, p.edge_y, 0.04, p.tex_seed)
    bolts = [p.fault if defective and i == p.faulty else b for i, b in enumerate(p.bolts)]
    for b in sorted(bolts, key=lambda b: b.y):  # farther bolts first
        draw_bolt(pt, p, b)


def draw_bolt(pt: Painter, p: Params, b: Bolt) -> None:
    v, r = p.view, p.radius
    shank_r, washer_r, washer_h = r * 0.55, r * 1.3, r * 0.12
    if not b.has_bolt:
        hw.hole(pt, v, b.x, b.y, shank_r * 1.1)
        return
    hw.shadow(pt, v, b.x, b.y, washer_r)
    hw.cylinder_part(pt, v, b.x, b.y, washer_r, 0.0, washer_h, p.steel)
    nut_z0 = washer_h + b.lift
    top = washer_h + p.nut_height + p.protrude
    if not b.has_nut:
        hw.cylinder_part(pt, v, b.x, b.y, shank_r, washer_h, top, p.steel, threads=True)
        return
    hw.cylinder_part(pt, v, b.x, b.y, shank_r, washer_h, nut_z0, p.steel, threads=True)
    hw.nut(pt, v, b.x, b.y, r, nut_z0, p.nut_height, b.theta, p.steel)
    hw.cylinder_part(pt, v, b.x, b.y, shank_r, nut_z0 + p.nut_height, top, p.steel, threads=True)


SCENE = Scene("nut_and_bolt", DEFECTS, ((150, 150, 150), (125, 125, 128)), sample, draw)
