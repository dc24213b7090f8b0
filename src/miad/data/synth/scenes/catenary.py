"""Catenary dropper: a messenger wire above a contact wire, joined by droppers with clamps; defects: looseness,
broken, miss.

Each dropper is a thin stranded wire with crimp sleeves, hung from a small clamp on the messenger wire and
holding a bolted clamp on the contact wire. Looseness: the lower clamp has slid along the contact wire and
tilted, and the wire hangs slack; broken: the wire is snapped, with frayed ends and the lower piece swung
aside; miss: one dropper, wire and clamps, is absent.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from miad.data.synth.painter import Painter, cylinder, ellipse, rect
from miad.data.synth.scenes.base import Scene, check_defect

DEFECTS = ("looseness", "broken", "miss")
BRONZE = (150, 112, 70)
COPPER = (168, 100, 58)
CLAMP = (160, 162, 165)


@dataclass(frozen=True)
class Dropper:
    x: float  # position along the wires (frame units)
    slide: float = 0.0  # looseness: shift of the lower clamp along the contact wire
    tilt: float = 0.0  # looseness: rotation of the lower clamp (degrees)
    slack: float = 0.0  # looseness: sideways bow of the wire
    break_at: float | None = None  # broken: fraction of the wire length where it snapped
    swing: float = 0.0  # broken: angle of the lower piece (degrees)
    present: bool = True


@dataclass(frozen=True)
class Params:
    messenger_y: float
    contact_y: float
    sag: float
    slope: float
    droppers: tuple[Dropper, ...]
    faulty: int | None = None  # index of the dropper with the defect
    fault: Dropper | None = None  # its defective state


def sample(rng: np.random.Generator, defect: str | None) -> Params:
    check_defect("catenary_dropper", DEFECTS, defect)
    gap = rng.uniform(0.38, 0.5)
    first = rng.uniform(0.2, 0.32)
    p = Params(
        messenger_y=rng.uniform(0.12, 0.22),
        contact_y=rng.uniform(0.74, 0.84),
        sag=rng.uniform(0.0, 0.05),
        slope=rng.uniform(-0.12, 0.12),
        droppers=tuple(Dropper(x) for x in (first - gap, first, first + gap)),
    )
    if defect is None:
        return p
    faulty = int(rng.integers(1, 3))
    d = p.droppers[faulty]
    if defect == "miss":
        fault = replace(d, present=False)
    elif defect == "looseness":
        fault = replace(
            d,
            slide=rng.choice([-1, 1]) * rng.uniform(0.05, 0.1),
            tilt=rng.uniform(-25, 25),
            slack=rng.choice([-1, 1]) * rng.uniform(0.04, 0.08),
        )
    else:
        fault = replace(d, break_at=rng.uniform(0.35, 0.65), swing=rng.choice([-1, 1]) * rng.uniform(12, 30))
    return replace(p, faulty=faulty, fault=fault)


def _messenger(p: Params, x: np.ndarray) -> np.ndarray:
    return p.messenger_y + p.slope * (x - 0.5) + p.sag * (1 - ((x - 0.5) / 0.9) ** 2)


def _contact(p: Params, x: np.ndarray) -> np.ndarray:
    return p.contact_y + p.slope * 0.8 * (x - 0.5)


def draw(pt: Painter, p: Params, defective: bool) -> None:
    x = np.linspace(-0.4, 1.4, 31)
    _wire(pt, np.stack([x, _messenger(p, x)], 1), 0.016, BRONZE)
    _wire(pt, np.stack([x, _contact(p, x)], 1), 0.024, COPPER)
    for i, d in enumerate(p.droppers):
        if defective and i == p.faulty and p.fault is not None:
            d = p.fault
        if d.present:
            _dropper(pt, p, d)


def _wire(pt: Painter, pts: np.ndarray, width: float, colour) -> None:
    pt.line(pts, tuple(np.array(colour) * 0.55), width)
    pt.line(pts - [0, width * 0.18], tuple(np.minimum(np.array(colour) * 1.25, 255)), width * 0.35)


def _dropper(pt: Painter, p: Params, d: Dropper) -> None:
    top = np.array([d.x, _messenger(p, d.x) + 0.035])
    lx = d.x + d.slide
    bottom = np.array([lx, _contact(p, lx) - 0.045])
    t = np.linspace(0, 1, 17)[:, None]
    wire = top + (bottom - top) * t + np.array([1.0, 0.0]) * d.slack * np.sin(np.pi * t)
    if d.break_at is None:
        _strand(pt, wire, pt.everywhere())
    else:
        _broken_wire(pt, wire, d)
    _crimp(pt, top + [0, 0.012])
    _crimp(pt, bottom - [0, 0.012])
    _upper_clamp(pt, np.array([d.x, _messenger(p, d.x)]))
    _lower_clamp(pt, np.array([lx, _contact(p, lx)]), d.tilt)


def _strand(pt: Painter, wire: np.ndarray, clip: np.ndarray) -> None:
    # Always drawn through a clip, so that the intact and the snapped wire rasterise identically where
    # they coincide (the snapped one is the intact one clipped above the break).
    pt.line(wire, (95, 80, 60), 0.011, clip=clip)
    pt.line(wire - [0.002, 0], (200, 170, 120), 0.004, clip=clip)


def _broken_wire(pt: Painter, wire: np.ndarray, d: Dropper) -> None:
    top, bottom = wire[0], wire[-1]
    cut = top + (bottom - top) * d.break_at
    gap = 0.025
    above = np.array([[-0.5, -0.5], [1.5, -0.5], [1.5, cut[1] - gap], [-0.5, cut[1] - gap]])
    _strand(pt, wire, pt.coverage([above]))
    a = np.deg2rad(d.swing)
    length = np.linalg.norm(bottom - cut) - gap
    lower_end = bottom + np.array([-np.sin(a), -np.cos(a)]) * length
    _strand(pt, np.array([bottom, lower_end]), pt.everywhere())
    for end, direction in ((cut - [0, gap], np.array([0.0, 1.0])), (lower_end, (lower_end - bottom) / length)):
        for k in (-1, 0, 1):  # frayed strands
            spread = np.array([[np.cos(0.5 * k), -np.sin(0.5 * k)], [np.sin(0.5 * k), np.cos(0.5 * k)]])
            pt.line(np.array([end, end + spread @ direction * 0.022]), (180, 150, 105), 0.004)


def _crimp(pt: Painter, at: np.ndarray) -> None:
    pt.fill([rect(*at, 0.02, 0.03)], cylinder(CLAMP, pt.to_px(at - [0.01, 0]), pt.to_px(at + [0.01, 0])))


def _upper_clamp(pt: Painter, at: np.ndarray) -> None:
    body = rect(*(at + [0, 0.01]), 0.04, 0.045)
    pt.fill([body], cylinder(CLAMP, pt.to_px(at - [0.02, 0]), pt.to_px(at + [0.02, 0])))
    pt.fill([ellipse(*(at + [0, 0.012]), 0.007, 0.007)], (70, 70, 72))


def _lower_clamp(pt: Painter, at: np.ndarray, tilt: float) -> None:
    body = rect(*(at - [0, 0.012]), 0.07, 0.06, tilt)
    pt.fill([body], cylinder(CLAMP, pt.to_px(at - [0.035, 0]), pt.to_px(at + [0.035, 0]), shine=0.2))
    pt.fill([body], (80, 80, 84), stroke=pt.thick(0.004))
    a = np.deg2rad(tilt)
    for k in (-1, 1):
        bolt = at - [0, 0.012] + np.array([np.cos(a), np.sin(a)]) * 0.016 * k
        pt.fill([ellipse(*bolt, 0.008, 0.008)], (110, 112, 116))
        pt.fill([ellipse(*bolt, 0.008, 0.008)], (50, 50, 52), stroke=1)


SCENE = Scene("catenary_dropper", DEFECTS, ((168, 195, 226), (205, 216, 228)), sample, draw)
