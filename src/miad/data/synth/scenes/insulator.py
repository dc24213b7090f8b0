"""Electrical insulator: a suspension string of porcelain or glass discs on a metal rod; defect: crack.

Each disc is seen obliquely: a darker skirt ellipse under a shaded top ellipse with a shed ring and a metal cap.
A crack is a dark jagged line from the rim of one disc toward its cap, sometimes with a branch and a chipped
edge showing the unglazed body; it is clipped to that disc, and discs drawn after it cover it as they would.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from miad.data.synth.painter import Painter, cylinder, ellipse, jagged_path, rect
from miad.data.synth.scenes.base import Scene, check_defect

DEFECTS = ("crack",)
GLAZES = ((118, 58, 36), (222, 220, 210), (72, 142, 128), (96, 150, 96))  # brown, white porcelain; glass
METAL = (150, 152, 156)


@dataclass(frozen=True)
class Crack:
    disc: int
    paths: tuple[np.ndarray, ...]  # polylines in frame units
    width: float
    chip: np.ndarray | None  # polygon of a broken-off rim piece, or None


@dataclass(frozen=True)
class Params:
    centre: np.ndarray
    angle_deg: float  # direction of the string axis
    spacing: float
    radius: float
    squash: float  # minor / major axis of a disc's ellipse (viewing angle)
    glaze: tuple[float, float, float]
    n_discs: int
    crack: Crack | None = None


def _axes(p: Params) -> tuple[np.ndarray, np.ndarray]:
    a = np.deg2rad(p.angle_deg)
    return np.array([np.cos(a), np.sin(a)]), np.array([-np.sin(a), np.cos(a)])


def disc_centre(p: Params, i: int) -> np.ndarray:
    u, _ = _axes(p)
    return p.centre + u * (i - (p.n_discs - 1) / 2) * p.spacing


def sample(rng: np.random.Generator, defect: str | None) -> Params:
    check_defect("electrical_insulator", DEFECTS, defect)
    spacing = rng.uniform(0.15, 0.19)
    p = Params(
        centre=np.array([0.5, 0.5]) + rng.uniform(-0.05, 0.05, 2),
        angle_deg=float(rng.choice([0.0, 90.0]) + rng.uniform(-25, 25)),
        spacing=spacing,
        radius=rng.uniform(0.17, 0.22),
        squash=rng.uniform(0.24, 0.34),
        glaze=tuple(np.clip(np.array(GLAZES[rng.integers(len(GLAZES))]) * rng.uniform(0.9, 1.08), 0, 255)),
        n_discs=int(np.ceil(1.6 / spacing)) | 1,
    )
    if defect is None:
        return p
    return replace(p, crack=_sample_crack(rng, p))


def _sample_crack(rng: np.random.Generator, p: Params) -> Crack:
    dists = [np.abs(disc_centre(p, i) - 0.5).max() for i in range(p.n_discs)]
    disc = int(np.argsort(dists)[rng.integers(0, 2)])  # one of the two discs nearest the image centre
    u, n = _axes(p)
    c = disc_centre(p, disc)
    # Start on the front half of the rim (-u side): the next disc, drawn later, covers the back half.
    phi = rng.uniform(np.pi + 0.3, 2 * np.pi - 0.3)
    start = c + n * np.cos(phi) * p.radius * 0.97 + u * np.sin(phi) * p.radius * p.squash * 0.97
    to_centre = np.rad2deg(np.arctan2(*(c - start)[::-1]))
    length = p.radius * rng.uniform(0.45, 0.8)
    main = jagged_path(rng, start, to_centre + rng.uniform(-20, 20), length, 9)
    paths = [main]
    if rng.random() < 0.6:
        k = int(rng.integers(3, 7))
        paths.append(jagged_path(rng, main[k], to_centre + rng.choice([-1, 1]) * rng.uniform(35, 70), length * 0.4, 5))
    chip = None
    if rng.random() < 0.6:
        r = p.radius * rng.uniform(0.14, 0.22)
        chip = ellipse(*start, r, r * 0.6, np.rad2deg(np.arctan2(u[1], u[0])) + rng.uniform(-30, 30), 9)
        chip = chip + rng.uniform(-0.25, 0.25, chip.shape) * r
    return Crack(disc, tuple(paths), rng.uniform(0.009, 0.014), chip)


def draw(pt: Painter, p: Params, defective: bool) -> None:
    u, n = _axes(p)
    ends = [p.centre - u * 0.9, p.centre + u * 0.9]
    rod = np.array([ends[0] + n * 0.02, ends[1] + n * 0.02, ends[1] - n * 0.02, ends[0] - n * 0.02])
    pt.fill([rod], cylinder(METAL, pt.to_px(p.centre - n * 0.02), pt.to_px(p.centre + n * 0.02)))
    ang = float(np.rad2deg(np.arctan2(n[1], n[0])))
    glaze = np.array(p.glaze)
    for i in range(p.n_discs):
        c = disc_centre(p, i)
        lo, hi = pt.to_px(c - n * p.radius), pt.to_px(c + n * p.radius)
        skirt = ellipse(*(c + u * 0.035), p.radius, p.radius * p.squash, ang)
        top = ellipse(*c, p.radius * 0.985, p.radius * p.squash * 0.95, ang)
        pt.fill([skirt], cylinder(tuple(glaze * 0.55), lo, hi, shine=0.1))
        pt.fill([top], cylinder(tuple(glaze), lo, hi, ambient=0.55, shine=0.3))
        ring = ellipse(*c, p.radius * 0.62, p.radius * p.squash * 0.58, ang)
        pt.fill([ring], tuple(glaze * 1.12), stroke=pt.thick(0.008))
        cap = rect(*(c - u * 0.012), 0.075, 0.05, ang)
        pt.fill([cap], cylinder(METAL, pt.to_px(c - n * 0.0375), pt.to_px(c + n * 0.0375)))
        if defective and p.crack is not None and p.crack.disc == i:
            _draw_crack(pt, p, p.crack, [skirt, top], glaze)


def _draw_crack(pt: Painter, p: Params, crack: Crack, disc: list[np.ndarray], glaze: np.ndarray) -> None:
    clip = pt.coverage(disc)
    if crack.chip is not None:
        body = (200, 188, 170) if glaze.mean() < 150 else (150, 140, 128)
        pt.fill([crack.chip], body, clip=clip)
    for i, path in enumerate(crack.paths):
        pt.line(path, (38, 30, 26), crack.width * (1.0 if i == 0 else 0.7), clip=clip)


SCENE = Scene("electrical_insulator", DEFECTS, ((175, 190, 205), (200, 205, 210)), sample, draw)
