"""One image: scene on background, viewpoint warp, surface effects; for a defect also its normal twin and mask.

A defect image is rendered twice from the same random state, once normal and once defective, through the same
background, homography and surface fields (in this order: scene on background, warp, surface). The mask is the
union of (a) the canvas pixels where the two scene renderings differ, warped with nearest neighbour (this keeps
the footprint of a missing part whole even where its colour happens to match what replaces it) and (b) the
output pixels where the two final images differ (this catches the one-pixel fringe that bilinear warping
spreads around (a)). So every pixel outside the mask is identical to the normal rendering, by construction,
and the mask holds no pixel unrelated to the defect.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from miad.data.defects import MIAD_DEFECTS
from miad.data.synth.factors.background import render_background
from miad.data.synth.factors.surface import apply_surface, sample_surface
from miad.data.synth.factors.viewpoint import sample_viewpoint, warp
from miad.data.synth.painter import Painter, canvas_margin
from miad.data.synth.scenes import SCENES
from miad.data.synth.spec import DEFAULT_STRENGTHS, Strengths, image_rng

MAX_ATTEMPTS = 8  # a defect warped out of view is redrawn at another place (rarely needed)


@dataclass(frozen=True)
class Example:
    """image: (S, S, 3) uint8 RGB; normal: the same scene without the defect (equal to image for good ones);
    mask: (S, S) uint8, 255 on the defect, all 0 for good images; factors: manifest values of the factors."""

    image: np.ndarray
    normal: np.ndarray
    mask: np.ndarray
    factors: dict[str, float]


def min_mask_pixels(size: int) -> int:
    return max(4, int(0.0008 * size * size))


def render_example(
    scenario: str,
    defect: str | None = None,
    *,
    size: int = 256,
    seed: int = 0,
    split: str = "test_defect",
    index: int = 0,
    strengths: Strengths | None = None,
) -> Example:
    """Render image `index` of `split` ("train", "test_good", "test_defect") for a scenario, with `defect`
    (one of the scenario's defect types) or None for a normal image."""
    if scenario not in SCENES:
        raise ValueError(f"unknown scenario {scenario!r}; valid: {', '.join(MIAD_DEFECTS)}")
    scene = SCENES[scenario]
    s = strengths or DEFAULT_STRENGTHS[scenario]
    margin = canvas_margin(size)
    side = size + 2 * margin

    def rng(stream: str, attempt: int = 0) -> np.random.Generator:
        return image_rng(seed, scenario, split, index, stream, attempt)

    view = sample_viewpoint(rng("viewpoint"), s.viewpoint)
    bg_rng = rng("background")
    bg_fraction = float(bg_rng.uniform(0.0, s.background)) if s.background > 0 else 0.0
    base = render_background(bg_rng, bg_fraction, scene.backdrop, side)
    surface = sample_surface(rng("surface"), s.surface, size)
    h = view.homography(size, margin)
    factors = {
        "viewpoint": round(view.fraction, 4),
        "background": round(bg_fraction, 4),
        "surface": round(surface.fraction, 4),
        **view.as_row(),
        "brightness": round(surface.brightness, 4),
    }

    def finish(pt: Painter) -> np.ndarray:
        return apply_surface(warp(pt.rgb, h, size), warp(pt.obj, h, size), surface)

    for attempt in range(MAX_ATTEMPTS):
        params = scene.sample(rng("scene", attempt), defect)
        normal_pt = Painter(size, base)
        scene.draw(normal_pt, params, False)
        normal = finish(normal_pt)
        if defect is None:
            return Example(normal, normal, np.zeros((size, size), np.uint8), factors)
        defect_pt = Painter(size, base)
        scene.draw(defect_pt, params, True)
        image = finish(defect_pt)
        region = (normal_pt.rgb != defect_pt.rgb).any(axis=2) | (normal_pt.obj != defect_pt.obj)
        mask = warp(region.astype(np.uint8), h, size, nearest=True).astype(bool) | (image != normal).any(axis=2)
        if mask.sum() >= min_mask_pixels(size):
            return Example(image, normal, mask.astype(np.uint8) * 255, factors)
    raise RuntimeError(f"{scenario}/{defect}: the defect left the view in {MAX_ATTEMPTS} attempts (seed {seed})")
