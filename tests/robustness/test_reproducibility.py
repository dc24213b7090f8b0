"""The same seed twice on CPU gives identical predictions and metrics, for every registered method."""

from __future__ import annotations

import pytest
import torch

from miad.data.index import index_dataset
from miad.evaluation import evaluate_detector
from miad.registry import create, get_method, list_methods


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    from conftest import make_mvtec_tree

    return index_dataset(make_mvtec_tree(tmp_path_factory.mktemp("repro"), n_train=8))


def _run(name, samples):
    torch.manual_seed(torch.randint(0, 10_000, ()).item())  # global RNG state must not matter
    det = create(name, "quick", pretrained=False, **get_method(name).SMOKE)
    det.fit([s for s in samples if s.split == "train"], device="cpu", progress=False)
    return evaluate_detector(det, [s for s in samples if s.split == "test"], progress=False)


@pytest.mark.parametrize("name", list_methods())
def test_same_seed_same_metrics(name, samples):
    a, b = _run(name, samples), _run(name, samples)
    assert [r["score"] for r in a.rows] == [r["score"] for r in b.rows]
    assert a.metrics.to_dict() == b.metrics.to_dict()
