"""AUPRO against a slow, obviously-correct reference (the MVTec AD algorithm written out) and by hand."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from miad.metrics import aupro


def reference_aupro(maps: np.ndarray, masks: np.ndarray, fpr_limit: float = 0.3) -> float:
    """Every distinct score is a threshold; PRO over 8-connected regions; curve cut at fpr_limit; trapezoid."""
    regions, normals = [], []
    for amap, mask in zip(maps, masks):
        labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
        regions += [amap[labels == r] for r in range(1, n + 1)]
        normals.append(amap[~mask])
    normal = np.concatenate(normals)
    fprs, pros = [0.0], [0.0]
    for t in np.unique(maps)[::-1]:
        fprs.append(np.mean(normal >= t))
        pros.append(np.mean([np.mean(r >= t) for r in regions]))
    fprs, pros = np.array(fprs), np.array(pros)
    keep = fprs <= fpr_limit
    x, y = fprs[keep], pros[keep]
    if x[-1] < fpr_limit:  # interpolate on the segment that crosses fpr_limit
        i = int(np.flatnonzero(~keep)[0])
        step = (fpr_limit - fprs[i - 1]) / (fprs[i] - fprs[i - 1])
        x, y = np.append(x, fpr_limit), np.append(y, pros[i - 1] + step * (pros[i] - pros[i - 1]))
    return float(np.trapezoid(y, x) / fpr_limit)


@st.composite
def small_cases(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, float]:
    n, h = draw(st.integers(1, 3)), draw(st.integers(2, 7))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    if draw(st.booleans()):
        maps = rng.integers(0, draw(st.integers(1, 12)) + 1, (n, h, h)) / 7  # heavy ties
    else:
        maps = rng.random((n, h, h))
    masks = rng.random((n, h, h)) < draw(st.floats(0.05, 0.5))
    masks[0, 0, 0], masks[-1, -1, -1] = True, False
    return maps.astype(np.float32), masks, draw(st.sampled_from([0.3, 0.05, 0.5, 1.0, 0.123]))


@settings(max_examples=80, deadline=None)
@given(small_cases())
def test_aupro_matches_the_slow_reference(case) -> None:
    maps, masks, limit = case
    assert aupro(maps, masks, fpr_limit=limit) == pytest.approx(reference_aupro(maps, masks, limit), abs=1e-9)


def test_good_images_count_in_the_fpr() -> None:
    rng = np.random.default_rng(1)
    maps = rng.random((3, 6, 6)).astype(np.float32)
    masks = np.zeros(maps.shape, dtype=bool)
    masks[0, 1:4, 1:4] = True
    maps[2] += 0.5  # a good image with high scores raises the FPR at every threshold
    assert aupro(maps, masks) == pytest.approx(reference_aupro(maps, masks), abs=1e-12)
    assert aupro(maps, masks) < aupro(maps[:2], masks[:2])


def test_perfect_map_scores_one() -> None:
    masks = np.zeros((2, 5, 5), dtype=bool)
    masks[0, 1:3, 1:4] = True
    maps = masks + 0.1 * np.random.default_rng(0).random(masks.shape)
    assert aupro(maps, masks) == pytest.approx(1.0, abs=1e-12)


def test_hand_computed_anomaly_below_one_normal() -> None:
    # normals 0.9, 0.5, 0.1; the region {0.2}. Curve (0,0) (1/3,0) (2/3,0) (2/3,1) (1,1).
    maps = np.array([[[0.2, 0.9, 0.5, 0.1]]])
    masks = np.array([[[1, 0, 0, 0]]])
    assert aupro(maps, masks, fpr_limit=0.3) == 0.0
    assert aupro(maps, masks, fpr_limit=1.0) == pytest.approx(1 / 3)


def test_hand_computed_tie_block_is_a_straight_segment() -> None:
    # region {0.5}; normals 0.5, 0.5, 0.0: one threshold moves FPR 0 -> 2/3 and PRO 0 -> 1 together, a straight
    # segment. At FPR 0.3 PRO is 0.45: area 0.5 * 0.3 * 0.45 = 0.0675, divided by 0.3 -> 0.225.
    maps = np.array([[[0.5, 0.5], [0.5, 0.0]]])
    masks = np.array([[[1, 0], [0, 0]]])
    assert aupro(maps, masks) == pytest.approx(0.225, abs=1e-15)


def test_hand_computed_regions_are_8_connected() -> None:
    # (0,0) touches (1,1) only diagonally: one region of 3 pixels with 8-connectivity (PRO 1/3 once 0.9 is
    # passed), two regions with 4-connectivity (PRO 1/2). The plateau over FPR [0, 0.3] is the AUPRO.
    maps = np.full((1, 3, 3), 0.5)
    masks = np.zeros((1, 3, 3), dtype=bool)
    masks[0, 0, 0] = masks[0, 1, 1] = masks[0, 1, 2] = True
    maps[0, 0, 0], maps[0, 1, 1], maps[0, 1, 2] = 0.9, 0.1, 0.1
    assert aupro(maps, masks) == pytest.approx(1 / 3, abs=1e-15)


def test_pro_is_a_mean_over_regions_not_pixels() -> None:
    # a 1-pixel region fully detected and a 4-pixel region missed: PRO 1/2 (pixel-weighted would give 1/5)
    maps = np.zeros((1, 4, 6))
    masks = np.zeros((1, 4, 6), dtype=bool)
    masks[0, 0, 0] = True
    masks[0, 2:4, 3:5] = True
    maps[0, 0, 0] = 1.0
    maps[0, 2:4, 3:5] = -1.0
    assert aupro(maps, masks) == pytest.approx(0.5, abs=1e-15)


@pytest.mark.parametrize("margin", [0.02, 0.0, -0.4])  # -0.4: a floor far too high, caught and redone
def test_aupro_floor_from_a_sample_is_exact_or_redone(monkeypatch, margin: float) -> None:
    import miad.metrics.pixel as pixel

    monkeypatch.setattr(pixel, "SAMPLE_STRIDE", 1)
    monkeypatch.setattr(pixel, "FLOOR_MARGIN", margin)
    rng = np.random.default_rng(7)
    for _ in range(5):
        maps = rng.random((3, 9, 9)).astype(np.float32) ** 3
        masks = rng.random(maps.shape) < 0.15
        maps[masks] = maps[masks] * 0.5 + 0.4  # anomalous scores spread over the normal range
        for limit in (0.05, 0.3):
            assert aupro(maps, masks, limit) == pytest.approx(reference_aupro(maps, masks, limit), abs=1e-9)
