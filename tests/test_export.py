"""miad.export: the self-check before publishing, OpenVINO IR, metadata, and one-line errors for bad input."""

from __future__ import annotations

import importlib.util
import json

import onnx
import pytest
import torch

from miad.errors import CheckpointError, ConfigError, MiadError, NotFittedError
from miad.export import export_model, open_exported, read_metadata, synthetic_images
from miad.registry import create

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")


@pytest.fixture(scope="module")
def det():
    d = create("ref_mean", "quick", pretrained=False)
    return d.fit(torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(0)), device="cpu", progress=False)


@pytest.mark.parametrize("fmt,name", [("onnx", "m.onnx"), ("openvino", "m.xml")])
def test_export_round_trip_with_metadata(det, tmp_path, fmt, name):
    path = export_model(det, tmp_path / name, fmt)
    meta, run = open_exported(path, "ref_mean")
    assert meta["method"] == "ref_mean" and meta["threshold"] == pytest.approx(det.threshold)
    images = synthetic_images(det, 5, seed=7)
    scores, maps = run(images.numpy())
    ref = det.predict(images)
    tol = 1e-4 * float(ref.anomaly_map.max())
    torch.testing.assert_close(torch.from_numpy(maps), ref.anomaly_map, rtol=0, atol=tol)
    assert scores.shape == (5,)
    assert sorted(p.name for p in tmp_path.iterdir()) == (["m.onnx"] if fmt == "onnx" else ["m.bin", "m.xml"])


def _batch_frozen_forward(det):
    """A model forward whose traced graph freezes a batch-dependent Python number: the bug class verify_export
    guards."""
    original = det.model.forward

    def forward(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        score, amap = original(images)
        return score + float(images.shape[0]), amap + float(images.shape[0])

    return forward


@pytest.mark.parametrize("fmt,name", [("onnx", "m.onnx"), ("openvino", "m.xml")])
def test_a_graph_that_depends_on_the_example_batch_is_refused_and_the_old_file_kept(det, tmp_path, fmt, name,
                                                                                     monkeypatch):
    good = export_model(det, tmp_path / name, fmt)
    before = good.read_bytes()
    monkeypatch.setattr(det.model, "forward", _batch_frozen_forward(det))
    with pytest.raises(MiadError, match=r"disagrees with the checkpoint at batch 1: scores differ by .* of their"):
        export_model(det, good, fmt)
    assert good.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left behind


def test_unfitted_unknown_format_and_missing_package_are_one_line_errors(det, tmp_path, monkeypatch):
    with pytest.raises(NotFittedError, match="train it"):
        export_model(create("ref_mean", "quick", pretrained=False), tmp_path / "x.onnx")
    with pytest.raises(ConfigError, match="valid formats: onnx, openvino"):
        export_model(det, tmp_path / "x.trt", "tensorrt")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "openvino" else real(n, *a))
    with pytest.raises(MiadError, match=r"exporting OpenVINO models needs openvino: pip install 'miad\[export\]'"):
        export_model(det, tmp_path / "x.xml", "openvino")


def test_files_without_miad_metadata_or_of_another_method_are_refused(det, tmp_path):
    path = export_model(det, tmp_path / "m.onnx")
    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(proto, str(bare))
    with pytest.raises(CheckpointError, match="no miad metadata: it was not written by `miad export`"):
        read_metadata(bare)
    with pytest.raises(CheckpointError, match="is a ref_mean model, expected patchcore"):
        open_exported(path, "patchcore")
    entry = proto.metadata_props.add()
    entry.key, entry.value = "miad", json.dumps({**read_metadata(path), "method": "yolo"})
    onnx.save(proto, str(bare))
    with pytest.raises(CheckpointError, match="'yolo' model, which this miad does not know"):
        open_exported(bare)
    (tmp_path / "junk.onnx").write_bytes(b"\x00not onnx" * 10)
    with pytest.raises(CheckpointError, match="not a readable ONNX file"):
        read_metadata(tmp_path / "junk.onnx")


def test_openvino_ir_needs_its_bin_and_its_metadata(det, tmp_path):
    import openvino as ov

    xml = export_model(det, tmp_path / "m.xml", "openvino")
    bare = ov.convert_model(str(export_model(det, tmp_path / "plain.onnx")))
    ov.save_model(bare, str(tmp_path / "bare.xml"), compress_to_fp16=False)
    with pytest.raises(CheckpointError, match="no miad metadata"):
        read_metadata(tmp_path / "bare.xml")
    xml.with_suffix(".bin").unlink()
    with pytest.raises(CheckpointError, match=r"has no m.bin beside it"):
        open_exported(xml)
