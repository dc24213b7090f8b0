"""Pixel AUROC / AP / F1-max against scikit-learn, rank invariance, dtypes and input errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

from miad.errors import ConfigError, DataError
from miad.metrics import (
    UndefinedMetricWarning,
    aupro,
    pixel_ap,
    pixel_auroc,
    pixel_f1_max,
    pixel_metrics,
)


def sklearn_f1_max(labels: np.ndarray, scores: np.ndarray) -> float:
    precision, recall, _ = precision_recall_curve(labels, scores)
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.nan_to_num(2 * precision * recall / (precision + recall)).max())


@st.composite
def tied_maps(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n, h, w = draw(st.integers(1, 4)), draw(st.integers(1, 6)), draw(st.integers(2, 6))
    levels = draw(st.integers(1, 12))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    maps = rng.integers(0, levels + 1, (n, h, w)) / levels - draw(st.sampled_from([0.0, 0.5]))
    masks = rng.random((n, h, w)) < draw(st.floats(0.05, 0.6))
    masks.flat[0], masks.flat[1] = True, False
    return maps.astype(np.float32), masks


@settings(max_examples=50, deadline=None)
@given(tied_maps())
def test_pixel_metrics_match_sklearn_with_ties(data) -> None:
    maps, masks = data
    labels, scores = masks.ravel(), maps.ravel()
    got = pixel_metrics(maps, masks)
    assert got["pixel_auroc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert got["pixel_ap"] == pytest.approx(average_precision_score(labels, scores), abs=1e-12)
    assert got["pixel_f1_max"] == pytest.approx(sklearn_f1_max(labels, scores), abs=1e-12)
    assert pixel_auroc(maps, masks) == got["pixel_auroc"]
    assert pixel_ap(maps, masks) == got["pixel_ap"]
    assert pixel_f1_max(maps, masks) == got["pixel_f1_max"]
    assert aupro(maps, masks) == got["aupro"]


def test_invariant_under_strictly_increasing_transforms() -> None:
    # float64 scores on a grid k/1000 (heavy ties) stay distinct under x**5 in float64, so every rank is kept.
    # (In float32, x**5 would merge small distinct values: float64 input is ranked as float64 for that reason.)
    rng = np.random.default_rng(3)
    grid = rng.integers(0, 1001, (4, 12, 12))
    masks = np.zeros(grid.shape, dtype=bool)
    masks[0, 2:6, 3:8] = masks[1, 7:10, 1:4] = True
    grid[masks] = np.minimum(grid[masks] + 300, 1000)
    maps = grid / 1000.0
    base = pixel_metrics(maps, masks)
    for transformed in (maps**5, np.sqrt(maps), 3 * maps - 7, np.exp(20 * maps)):
        assert np.unique(transformed).size == np.unique(maps).size  # no two values merged by rounding
        assert pixel_metrics(transformed, masks) == base


def test_float16_float32_torch_inputs_rank_identically() -> None:
    rng = np.random.default_rng(4)
    maps16 = rng.random((3, 8, 8)).astype(np.float16)
    masks = rng.random((3, 8, 8)) < 0.2
    expected = pixel_metrics(maps16.astype(np.float64), masks)  # widening is exact
    assert pixel_metrics(maps16, masks) == expected
    assert pixel_metrics(torch.from_numpy(maps16), torch.from_numpy(masks).float()) == expected
    assert pixel_metrics(torch.from_numpy(maps16).to(torch.bfloat16), masks)["pixel_auroc"] >= 0


def test_single_map_and_mask_shapes() -> None:
    amap = np.array([[0.1, 0.9], [0.2, 0.3]])
    mask = np.array([[0, 1], [0, 0]])
    assert pixel_auroc(amap, mask) == 1.0
    with pytest.raises(DataError, match="nearest neighbour"):
        pixel_auroc(amap[None], np.zeros((1, 3, 3)))
    with pytest.raises(DataError, match=r"\[N,H,W\]"):
        pixel_auroc(np.zeros(4), np.zeros(4))


def test_non_finite_map_is_an_error_naming_the_map() -> None:
    maps = np.zeros((3, 4, 4), dtype=np.float32)
    maps[2, 1, 1] = np.inf
    with pytest.raises(DataError, match="anomaly map 2"):
        pixel_auroc(maps, np.ones(maps.shape))


@pytest.mark.parametrize("fill", [0, 1])
def test_one_pixel_class_gives_nan_with_warning(fill: int) -> None:
    maps = np.random.default_rng(0).random((2, 4, 4))
    with pytest.warns(UndefinedMetricWarning, match="no (anomalous|normal) pixel"):
        values = pixel_metrics(maps, np.full(maps.shape, fill))
    assert all(math.isnan(v) for v in values.values())
    with pytest.warns(UndefinedMetricWarning, match="AUPRO is undefined"):
        assert math.isnan(aupro(maps, np.full(maps.shape, fill)))


@pytest.mark.parametrize("limit", [0.0, -0.1, 1.5])
def test_fpr_limit_must_be_in_range(limit: float) -> None:
    with pytest.raises(ConfigError, match="fpr_limit"):
        aupro(np.zeros((1, 2, 2)), np.eye(2)[None], fpr_limit=limit)
