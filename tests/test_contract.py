"""The detector contract, parametrised over every registered method (real methods + test references)."""

from __future__ import annotations

import pytest
import torch

import miad
from miad.data.index import index_dataset
from miad.errors import NotFittedError
from miad.registry import create, list_methods, load


def _smoke(name: str):
    cls = miad.registry.get_method(name)
    return create(name, "quick", pretrained=False, **cls.SMOKE)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    from conftest import make_mvtec_tree

    return make_mvtec_tree(tmp_path_factory.mktemp("contract"), n_train=8)


@pytest.mark.parametrize("name", list_methods())
def test_contract(name, tree, tmp_path):
    samples = index_dataset(tree)
    train = [s for s in samples if s.split == "train"]
    test = [s for s in samples if s.split == "test"]
    det = _smoke(name)
    with pytest.raises(NotFittedError):
        det.predict(torch.zeros(1, 3, det.config.image_size, det.config.image_size))
    assert det.fit(train, device="cpu", progress=False) is det

    batch = torch.stack([det.dataset(test)[i]["image"] for i in range(len(test))])
    pred = det.predict(batch)
    size = det.config.image_size
    assert pred.image_score.shape == (len(test),) and pred.image_score.dtype == torch.float32
    assert pred.anomaly_map.shape == (len(test), size, size) and pred.anomaly_map.dtype == torch.float32
    assert torch.isfinite(pred.image_score).all() and torch.isfinite(pred.anomaly_map).all()

    assert det.holdout is not None and len(det.holdout.image_scores) >= 1
    assert det.holdout.pixel_quantiles.shape == (101,)
    level = det.config.threshold_quantile
    assert det.threshold == pytest.approx(float(torch.quantile(det.holdout.image_scores, level)))
    assert det.trained_on == ["widget"]

    path = tmp_path / "model.pt"
    det.save(str(path))
    again = load(path)
    assert again.name == name and again.config == det.config
    pred2 = again.predict(batch)
    torch.testing.assert_close(pred2.anomaly_map, pred.anomaly_map)
    torch.testing.assert_close(pred2.image_score, pred.image_score)
    assert again.threshold == det.threshold


@pytest.mark.parametrize("name", list_methods())
def test_presets_exist_and_validate(name):
    presets = miad.list_presets(name)
    assert "paper" in presets and "quick" in presets
