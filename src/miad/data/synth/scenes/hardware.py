"""Bolted-joint parts seen obliquely from above: steel plate, hole, washer, hex nut, threaded bolt, paint stripes.

World coordinates: the plate is z = 0, x points right, y toward the viewer, z up. The camera looks down at
elevation `elev`, so a world point projects to frame units as (cx + x, cy + y sin(elev) - z cos(elev)).
Parts are convex and drawn back to front (painter's algorithm): a hex nut shows only the side faces whose
outward normal points toward the viewer, then its top.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from miad.data.synth import noise
from miad.data.synth.painter import Painter, cylinder, ellipse, linear, textured

LIGHT_DEG = 225.0  # world direction the light comes from: the upper left of the view
THREAD_PITCH = 0.012


@dataclass(frozen=True)
class View:
    centre: np.ndarray  # frame position of the world origin
    elev_deg: float

    def __call__(self, x, y, z) -> np.ndarray:
        """World -> frame units; broadcasts over arrays, returns (..., 2)."""
        e = np.deg2rad(self.elev_deg)
        x, y, z = np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float), np.asarray(z, float))
        return np.stack([self.centre[0] + x, self.centre[1] + y * np.sin(e) - z * np.cos(e)], -1)


@lru_cache(maxsize=4)
def _speckle(seed: int, side: int) -> np.ndarray:
    return noise.smooth(np.random.default_rng(seed), side, 5.0, 2) * 2 - 1


def plate(pt: Painter, v: View, grey: float, edge_y: float, thickness: float, tex_seed: int) -> None:
    """A galvanised plate covering the view up to a front edge at world y = edge_y (with its edge face)."""
    top = v(np.array([-3, 3, 3, -3]), np.array([-3, -3, edge_y, edge_y]), 0)
    face = v(np.array([-3, 3, 3, -3]), np.full(4, edge_y), np.array([0, 0, -thickness, -thickness]))
    tex = _speckle(tex_seed, pt.side)
    colour = (grey, grey * 1.01, grey * 1.04)
    pt.fill(
        [top],
        textured(linear(colour, tuple(np.array(colour) * 0.8), pt.to_px(v(0, -1, 0)), pt.to_px(v(0, 1, 0))), tex, 0.08),
    )
    pt.fill([face], tuple(np.array(colour) * 0.55))


def hole(pt: Painter, v: View, x: float, y: float, r: float) -> None:
    """An empty bolt hole: dark bore with its lit far wall."""
    t = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    rim = v(x + r * np.cos(t), y + r * np.sin(t), 0)
    pt.fill([rim], (28, 27, 26))
    back = t[(t > np.pi)]
    wall = np.concatenate(
        [
            v(x + r * np.cos(back), y + r * np.sin(back), 0),
            v(x + r * np.cos(back[::-1]), y + r * np.sin(back[::-1]), -0.6 * r),
        ]
    )
    pt.fill([wall], (95, 93, 90))


def shadow(pt: Painter, v: View, x: float, y: float, r: float, opacity: float = 0.35) -> None:
    c = v(x + r * 0.35, y + r * 0.35, 0)
    pt.fill(
        [ellipse(*c, r * 1.1, r * 1.1 * np.sin(np.deg2rad(v.elev_deg)), 0, 32)],
        (20, 20, 22),
        obj=False,
        opacity=opacity,
    )


def cylinder_part(
    pt: Painter, v: View, x: float, y: float, r: float, z0: float, z1: float, colour, threads: bool = False
) -> None:
    """A vertical cylinder from z0 to z1 (bolt shank, washer): shaded side, optional threads, lit top."""
    if z1 <= z0:
        return
    t = np.linspace(0, np.pi, 24)
    front = v(x + r * np.cos(t), y + r * np.sin(t), z0)
    back = v(x + r * np.cos(t[::-1]), y - r * np.sin(t[::-1]), z1)
    left, right = pt.to_px(v(x - r, y, z0)), pt.to_px(v(x + r, y, z0))
    pt.fill([np.concatenate([front, back])], cylinder(colour, left, right, ambient=0.4, shine=0.3))
    if threads:
        lines = [
            v(x + r * np.cos(t), y + r * np.sin(t), z + 0.35 * THREAD_PITCH * np.cos(t))
            # At fixed heights: the thread belongs to the bolt, whatever part of it a nut leaves visible.
            for z in np.arange(np.ceil(z0 / THREAD_PITCH + 0.3) * THREAD_PITCH, z1 - THREAD_PITCH * 0.3, THREAD_PITCH)
        ]
        if lines:
            pt.fill(np.array(lines), tuple(np.array(colour) * 0.45), stroke=pt.thick(0.004), closed=False)
    top = ellipse(*v(x, y, z1), r, r * np.sin(np.deg2rad(v.elev_deg)), 0, 32)
    pt.fill([top], tuple(np.minimum(np.array(colour) * 1.12, 255)))


def hex_vertices(x: float, y: float, r: float, theta_deg: float) -> np.ndarray:
    a = np.deg2rad(theta_deg + 60.0 * np.arange(6))
    return np.stack([x + r * np.cos(a), y + r * np.sin(a)], 1)


def nut(
    pt: Painter,
    v: View,
    x: float,
    y: float,
    r: float,
    z0: float,
    height: float,
    theta_deg: float,
    colour,
    paint: tuple | None = None,
) -> None:
    """A hex nut (circumradius r, rotated theta_deg) from z0 to z0 + height; `paint` is (angle_deg, width,
    rgb, from_radius) of a witness-mark stripe over its visible side and its top."""
    corners = hex_vertices(x, y, r, theta_deg)
    col = np.array(colour, float)
    for i in range(6):
        normal = np.deg2rad(theta_deg + 60.0 * i + 30.0)
        if np.sin(normal) <= 0.02:  # faces turned away from the viewer
            continue
        a, b = corners[i], corners[(i + 1) % 6]
        face = np.array([v(*a, z0), v(*b, z0), v(*b, z0 + height), v(*a, z0 + height)])
        lit = 0.6 + 0.35 * np.cos(normal - np.deg2rad(LIGHT_DEG))
        pt.fill([face], tuple(col * lit))
    if paint is not None:
        _paint_side(pt, v, x, y, r, z0, height, theta_deg, paint)
    top = v(corners[:, 0], corners[:, 1], z0 + height)
    pt.fill([top], tuple(np.minimum(col * 1.1, 255)))
    chamfer = ellipse(*v(x, y, z0 + height), r * 0.86, r * 0.86 * np.sin(np.deg2rad(v.elev_deg)), 0, 36)
    pt.fill([chamfer], tuple(np.minimum(col * 1.22, 255)), stroke=pt.thick(0.004), opacity=0.7)
    if paint is not None:
        angle, width, rgb, inner = paint
        stripe_on_plane(pt, v, x, y, z0 + height, angle, inner, _hex_radius(r, theta_deg, angle), width, rgb)


def _hex_radius(r: float, theta_deg: float, angle_deg: float) -> float:
    """Distance from the nut's centre to its outline in direction angle_deg."""
    rel = (angle_deg - theta_deg - 30.0) % 60.0 - 30.0  # angle from the nearest face normal
    return r * np.cos(np.deg2rad(30.0)) / np.cos(np.deg2rad(rel))


def _paint_side(pt, v, x, y, r, z0, height, theta_deg, paint) -> None:
    angle, width, rgb, _ = paint
    half = np.rad2deg(width / (2 * r * 0.87))
    angles = np.linspace(angle - half, angle + half, 5)
    normals = theta_deg + 30.0 + 60.0 * np.round((angles - theta_deg - 30.0) / 60.0)
    if np.any(np.sin(np.deg2rad(normals)) <= 0.02):
        return  # the stripe is (partly) on a face the viewer cannot see
    d = np.array([_hex_radius(r, theta_deg, a) for a in angles])
    px, py = x + d * np.cos(np.deg2rad(angles)), y + d * np.sin(np.deg2rad(angles))
    pt.fill([np.concatenate([v(px, py, z0), v(px[::-1], py[::-1], z0 + height)])], rgb)


def stripe_on_plane(
    pt: Painter, v: View, x: float, y: float, z: float, angle_deg: float, r0: float, r1: float, width: float, rgb
) -> None:
    """A paint stripe on a horizontal surface at height z, from radius r0 to r1 along angle_deg."""
    a = np.deg2rad(angle_deg)
    u, n = np.array([np.cos(a), np.sin(a)]), np.array([-np.sin(a), np.cos(a)]) * width / 2
    quad = np.array([u * r0 - n, u * r1 - n, u * r1 + n, u * r0 + n]) + [x, y]
    pt.fill([v(quad[:, 0], quad[:, 1], z)], rgb)


def stripe_on_cylinder(
    pt: Painter, v: View, x: float, y: float, r: float, z0: float, z1: float, angle_deg: float, width: float, rgb
) -> None:
    """A vertical paint stripe on a cylinder's side (drawn only where it faces the viewer)."""
    half = np.rad2deg(width / (2 * r))
    a = np.deg2rad(np.linspace(angle_deg - half, angle_deg + half, 5))
    if np.any(np.sin(a) <= 0.02):
        return
    px, py = x + r * np.cos(a), y + r * np.sin(a)
    pt.fill([np.concatenate([v(px, py, z0), v(px[::-1], py[::-1], z1)])], rgb)
