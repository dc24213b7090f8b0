"""Image-level metrics against scikit-learn on inputs with heavy ties, and the undefined cases."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score, f1_score, precision_recall_curve, roc_auc_score

from miad.errors import DataError
from miad.metrics import UndefinedMetricWarning, f1_at_threshold, image_ap, image_auroc, image_f1_max


@st.composite
def tied_scores(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Scores drawn from a handful of levels (heavy ties), labels with both classes present."""
    n = draw(st.integers(2, 60))
    levels = draw(st.integers(1, 8))
    scores = np.array(draw(st.lists(st.integers(0, levels), min_size=n, max_size=n)), dtype=np.float64) / 7
    labels = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    labels[0], labels[1] = True, False
    return scores, labels


def sklearn_f1_max(labels: np.ndarray, scores: np.ndarray) -> float:
    precision, recall, _ = precision_recall_curve(labels, scores)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
    return float(f1.max())


@settings(max_examples=60, deadline=None)
@given(tied_scores())
def test_image_metrics_match_sklearn_with_ties(data: tuple[np.ndarray, np.ndarray]) -> None:
    scores, labels = data
    assert image_auroc(scores, labels) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert image_ap(scores, labels) == pytest.approx(average_precision_score(labels, scores), abs=1e-12)
    assert image_f1_max(scores, labels) == pytest.approx(sklearn_f1_max(labels, scores), abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(tied_scores(), st.integers(0, 8))
def test_f1_at_threshold_matches_sklearn(data: tuple[np.ndarray, np.ndarray], level: int) -> None:
    scores, labels = data
    threshold = level / 7
    expected = f1_score(labels, scores >= threshold, zero_division=0.0)
    assert f1_at_threshold(scores, labels, threshold) == pytest.approx(expected, abs=1e-12)


def test_hand_computed_auroc_with_a_tie() -> None:
    # anomalous 0.8 beats both normals, anomalous 0.5 ties one normal (1/2) and beats the other: U = 3.5 of 4
    assert image_auroc([0.5, 0.2, 0.8, 0.5], [0, 0, 1, 1]) == 0.875


def test_no_sigmoid_or_clamping_large_scores() -> None:
    scores = np.array([20.0, 21.0, 22.0, 23.0])  # torchmetrics would squash these to ~1.0 and get 0.5
    assert image_auroc(scores, [0, 0, 1, 1]) == 1.0


def test_torch_and_float16_inputs() -> None:
    scores = torch.tensor([0.1, 0.4, 0.35, 0.8], dtype=torch.float16)
    labels = torch.tensor([0, 0, 1, 1])
    assert image_auroc(scores, labels) == roc_auc_score(labels.numpy(), scores.float().numpy())


@pytest.mark.parametrize("labels", [[0, 0, 0], [1, 1, 1]])
@pytest.mark.parametrize("metric", [image_auroc, image_ap, image_f1_max])
def test_one_class_only_gives_nan_and_warning(metric, labels) -> None:
    with pytest.warns(UndefinedMetricWarning, match="undefined"):
        assert math.isnan(metric([0.1, 0.2, 0.3], labels))


def test_f1_at_threshold_undefined_and_defined_edges() -> None:
    with pytest.warns(UndefinedMetricWarning):
        assert math.isnan(f1_at_threshold([0.1, 0.2], [0, 0], 0.5))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert f1_at_threshold([0.1, 0.9], [0, 0], 0.5) == 0.0  # a false positive is a defined F1 of 0


def test_non_finite_score_is_an_error_naming_its_index() -> None:
    with pytest.raises(DataError, match=r"scores\[2\]"):
        image_auroc([0.1, 0.2, float("nan")], [0, 1, 1])


def test_labels_must_be_binary_and_aligned() -> None:
    with pytest.raises(DataError, match="0 \\(normal\\) or 1"):
        image_auroc([0.1, 0.2], [0, 2])
    with pytest.raises(DataError, match="shape"):
        image_auroc([0.1, 0.2], [0, 1, 1])
