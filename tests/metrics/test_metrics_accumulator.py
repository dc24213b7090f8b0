"""The accumulator: batching invariance, breakdowns equal to the plain functions, errors and notes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from miad.errors import DataError
from miad.metrics import MetricAccumulator, evaluate, image_auroc, pixel_metrics
from miad.types import GOOD, Prediction, Sample

TYPES = {"nut_and_bolt": ("looseness", "bolt_miss", "crack"), "wind_turbine": ("crack",)}


def make_set(seed: int = 0, size: int = 12) -> tuple[list[Sample], Prediction, torch.Tensor]:
    """Two categories; 3 good and 2 anomalous images per defect type; blob defects raised in the maps."""
    rng = np.random.default_rng(seed)
    samples, maps, masks = [], [], []
    for category, types in TYPES.items():
        for defect in (GOOD, GOOD, GOOD) + tuple(t for t in types for _ in range(2)):
            i = len(samples)
            label = int(defect != GOOD)
            mask = np.zeros((size, size), dtype=np.float32)
            if label:
                y, x = rng.integers(0, size - 4, 2)
                mask[y : y + rng.integers(1, 5), x : x + rng.integers(1, 5)] = 1
            amap = rng.integers(0, 20, (size, size)) / 19 + mask * rng.random() * 0.8  # ties + signal
            samples.append(
                Sample(
                    Path(f"/data/{category}/{defect}/{i:03d}.png"),
                    label,
                    Path(f"/gt/{i:03d}.png") if label else None,
                    category,
                    defect,
                    "test",
                )
            )
            maps.append(amap)
            masks.append(mask)
    maps_t = torch.tensor(np.stack(maps), dtype=torch.float32)
    scores = maps_t.flatten(1).amax(dim=1)
    return samples, Prediction(scores, maps_t), torch.tensor(np.stack(masks))


def run(samples, pred, masks, batch_sizes) -> dict:
    acc = MetricAccumulator()
    start = 0
    for b in batch_sizes:
        part = slice(start, start + b)
        acc.update(Prediction(pred.image_score[part], pred.anomaly_map[part]), masks[part], samples[part])
        start += b
    assert start == len(samples) == len(acc)
    return acc.compute().to_dict()


def test_one_batch_or_many_give_identical_results() -> None:
    samples, pred, masks = make_set()
    whole = run(samples, pred, masks, [len(samples)])
    assert run(samples, pred, masks, [1] * len(samples)) == whole
    assert run(samples, pred, masks, [5, 2, 0, 4, 3]) == whole


def test_breakdowns_equal_the_plain_functions_on_each_subset() -> None:
    samples, pred, masks = make_set(seed=1)
    result = evaluate(pred, masks, samples)
    labels = np.array([s.label for s in samples])

    def check(entry: dict, keep: np.ndarray) -> None:
        assert entry["image_auroc"] == pytest.approx(image_auroc(pred.image_score[keep], labels[keep]), abs=1e-12)
        expected = pixel_metrics(pred.anomaly_map[keep], masks[keep])
        for name, value in expected.items():
            assert entry[name] == pytest.approx(value, abs=1e-12), name
        assert (entry["n_good"], entry["n_defect"]) == (int((labels[keep] == 0).sum()), int(labels[keep].sum()))

    for category, types in TYPES.items():
        in_cat = np.array([s.category == category for s in samples])
        good = in_cat & (labels == 0)
        check(result.per_category[category], in_cat)
        for t in types:
            check(result.per_defect[(category, t)], good | (in_cat & np.array([s.defect_type == t for s in samples])))
    # nut_and_bolt: looseness and bolt_miss are logical, crack is surface (miad.data.defects)
    logical = np.array([s.defect_type in ("looseness", "bolt_miss") for s in samples])
    nb = np.array([s.category == "nut_and_bolt" for s in samples])
    check(result.groups["logical"]["nut_and_bolt"], nb & ((labels == 0) | logical))
    check(result.groups["surface"]["nut_and_bolt"], nb & ((labels == 0) | ~logical))
    assert set(result.groups["surface"]) == {"nut_and_bolt", "wind_turbine"}
    assert result.group_means["logical"]["aupro"] == result.groups["logical"]["nut_and_bolt"]["aupro"]
    for metric, value in result.mean.items():
        per = [result.per_category[c][metric] for c in TYPES]
        assert value == pytest.approx(sum(per) / len(per), abs=1e-15)


def test_nan_in_a_map_names_the_image() -> None:
    samples, pred, masks = make_set()
    pred.anomaly_map[4, 2, 3] = float("nan")
    with pytest.raises(DataError, match=r"/data/nut_and_bolt/looseness/004\.png"):
        MetricAccumulator().update(pred, masks, samples)
    pred.anomaly_map[4, 2, 3] = 0.0
    pred.image_score[6] = float("inf")
    with pytest.raises(DataError, match=r"006\.png: image score"):
        MetricAccumulator().update(pred, masks, samples)


def test_undefined_cases_give_nan_and_notes_without_crashing() -> None:
    samples, pred, masks = make_set()
    only_bad = [i for i, s in enumerate(samples) if s.category == "wind_turbine" and s.label == 1]
    keep = [i for i, s in enumerate(samples) if s.category == "nut_and_bolt"] + only_bad
    acc = MetricAccumulator()
    acc.update(Prediction(pred.image_score[keep], pred.anomaly_map[keep]), masks[keep], [samples[i] for i in keep])
    result = acc.compute()
    wind = result.per_category["wind_turbine"]
    assert math.isnan(wind["image_auroc"]) and wind["n_good"] == 0
    assert any("wind_turbine: image metrics are NaN (no normal image)" in n for n in result.notes)
    assert result.mean["image_auroc"] == result.per_category["nut_and_bolt"]["image_auroc"]
    assert any("undefined for ['wind_turbine']" in n for n in result.notes)
    json.dumps(result.to_dict(), allow_nan=False)  # NaN became None


def test_defect_images_without_masks_are_left_out_of_pixel_metrics() -> None:
    samples, pred, masks = make_set()
    cut = [
        s if s.defect_type != "crack" else Sample(s.image, 1, None, s.category, s.defect_type, "test") for s in samples
    ]
    result = evaluate(pred, masks, cut)
    assert math.isnan(result.per_defect[("wind_turbine", "crack")]["aupro"])
    assert not math.isnan(result.per_defect[("wind_turbine", "crack")]["image_auroc"])
    assert any("without a mask" in n for n in result.notes)


def test_image_only_mode_and_empty_accumulator() -> None:
    samples, pred, masks = make_set()
    result = evaluate(pred, None, samples, compute_pixel=False)
    assert math.isnan(result.mean["aupro"]) and not math.isnan(result.mean["image_auroc"])
    assert "compute_pixel=False" in result.notes[0]
    empty = MetricAccumulator().compute()
    assert empty.per_category == {} and math.isnan(empty.mean["image_auroc"])


def test_mismatched_inputs_are_errors() -> None:
    samples, pred, masks = make_set()
    with pytest.raises(DataError, match="samples for a batch"):
        MetricAccumulator().update(pred, masks, samples[:-1])
    with pytest.raises(DataError, match="nearest neighbour"):
        MetricAccumulator().update(pred, masks[:, :-1], samples)


def test_signed_maps_and_mixed_dtypes_match_the_plain_functions() -> None:
    samples, pred, masks = make_set(seed=2)
    signed = pred.anomaly_map.double() - 0.5  # negative scores and float64: the general key path
    signed[0, 0, :3] = torch.tensor([-0.0, 0.0, -0.0], dtype=torch.float64)
    acc = MetricAccumulator()
    acc.update(Prediction(pred.image_score[:7], signed[:7].float()), masks[:7], samples[:7])
    acc.update(Prediction(pred.image_score[7:], signed[7:]), masks[7:], samples[7:])
    result = acc.compute()
    mixed = torch.cat([signed[:7].float().double(), signed[7:]])  # what the accumulator ranks
    for category in TYPES:
        keep = np.array([s.category == category for s in samples])
        expected = pixel_metrics(mixed[keep], masks[keep])
        for name, value in expected.items():
            assert result.per_category[category][name] == pytest.approx(value, abs=1e-12), name
