"""Checkpoints written by an earlier miad (tests/golden/make_checkpoints.py) load and score as they did: the
guard of every refactor of checkpoint state, preprocessing and the scoring path."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import miad

HERE = Path(__file__).parent / "checkpoints"
METHODS = ("draem", "fastflow", "patchcore", "reverse_distillation", "unet_ae", "uniad")


@pytest.mark.parametrize("name", METHODS)
def test_golden_checkpoint_scores_as_written(name: str) -> None:
    expected = torch.load(HERE / f"{name}.expected.pt", weights_only=True)
    det = miad.load(HERE / f"{name}.pt", expect_method=name)
    pred = det.predict(expected["images"])
    torch.testing.assert_close(pred.image_score, expected["image_score"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(pred.anomaly_map, expected["anomaly_map"], rtol=1e-5, atol=1e-6)
    assert det.threshold == expected["threshold"]
