import pickle

import pytest
import torch

from miad.checkpoint import FORMAT_VERSION, read_checkpoint
from miad.errors import CheckpointError, DataError
from miad.registry import create, load


@pytest.fixture
def saved(tiny_images, tmp_path):
    det = create("ref_ae", "quick", epochs=1).fit(tiny_images, device="cpu", progress=False)
    path = tmp_path / "model.pt"
    det.save(str(path))
    return det, path


def test_checkpoint_is_a_readable_dict(saved):
    det, path = saved
    ckpt = read_checkpoint(path)
    assert ckpt["method"] == "ref_ae" and ckpt["format_version"] == FORMAT_VERSION
    assert ckpt["config"]["epochs"] == 1 and "state_dict" in ckpt and ckpt["holdout"]["threshold"] == det.threshold


def test_other_method_truncated_tampered_and_old_versions_fail_clearly(saved, tmp_path):
    det, path = saved
    with pytest.raises(CheckpointError, match="is a ref_ae model, expected ref_mean"):
        load(path, expect_method="ref_mean")
    short = tmp_path / "short.pt"
    short.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load(short)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    evil = tmp_path / "evil.pt"
    torch.save({"format": "miad-checkpoint", "payload": Evil()}, evil)
    with pytest.raises(CheckpointError, match="refused"):
        load(evil)
    old = tmp_path / "old.pt"
    ckpt = read_checkpoint(path)
    ckpt["format_version"] = FORMAT_VERSION + 1
    torch.save(ckpt, old)
    with pytest.raises(CheckpointError, match="format version"):
        load(old)
    bad = tmp_path / "bad.pt"
    ckpt["format_version"] = FORMAT_VERSION
    ckpt["state_dict"] = {"x": torch.zeros(1)}
    torch.save(ckpt, bad)
    with pytest.raises(CheckpointError, match="does not match"):
        load(bad)
    with pytest.raises(CheckpointError, match="does not exist"):
        load(tmp_path / "missing.pt")
    assert pickle  # the stdlib pickler is what weights_only refuses


def test_predict_converts_channels_and_size(saved):
    det, _ = saved
    gray = torch.rand(2, 1, 50, 40)
    assert det.predict(gray).anomaly_map.shape == (2, 32, 32)
    assert det.predict(torch.rand(1, 4, 32, 32)).anomaly_map.shape == (1, 32, 32)
    with pytest.raises(DataError, match="channels"):
        det.predict(torch.rand(1, 2, 32, 32))


def test_empty_training_set_is_an_error():
    with pytest.raises(DataError, match="no normal images"):
        create("ref_ae", "quick").fit([], device="cpu")
