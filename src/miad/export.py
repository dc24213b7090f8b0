"""Export: the detector's model, whose forward is the torch-only inference graph, images [B,3,S,S] -> (score [B],
map [B,S,S]), written as ONNX or as OpenVINO IR (`.xml` + `.bin`), and the one place that knows how to run such a
file.

Pre-processing (size, normalisation) and the held-out thresholds travel as metadata (the `miad` JSON property of
the ONNX file, the `miad` runtime info of the IR), not inside the graph, so a user can change the decision
threshold without re-exporting (anomalib bakes thresholds into its exports, a frequent complaint). The graph is
traced by the TorchScript-based exporter (opset 17), which handles every method's graph; OpenVINO converts that
ONNX graph. Before a file is published it is run against the checkpoint on synthetic images at two batch sizes
other than the tracing batch (`verify_export`), so a graph that silently depends on the example batch is refused.

onnx, onnxruntime and openvino (the `export` extra) are imported inside the functions that use them: miad works
without them, and `check_export_packages` names the extra to install.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from miad import __version__
from miad.atomic import atomic_path, publish
from miad.detector import Detector
from miad.errors import CheckpointError, ConfigError, MiadError, NotFittedError
from miad.preprocess import mean_std, normalize
from miad.registry import list_methods

OPSET = 17
FORMATS = {"onnx": ".onnx", "openvino": ".xml"}  # format -> file suffix
EXPORT_BATCH = 2  # the tracing batch; verification runs other batch sizes
VERIFY_BATCHES = (1, 3)
TOLERANCE = 1e-4  # exported scores and maps agree with the checkpoint within this fraction of their largest value
REQUIRED_METADATA = ("method", "image_size", "normalize", "threshold", "pixel_quantiles", "threshold_quantile")
# OpenVINO's defaults (fp16 weights in the IR, bf16 execution on newer CPUs) cannot hold 1e-4.
OPENVINO_CONFIG = {"INFERENCE_PRECISION_HINT": "f32"}

Runner = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]  # float32 [B,3,S,S] -> (scores [B], maps [B,S,S])


class _Graph(nn.Module):
    """The method's model with float32 outputs (as `Detector.predict` returns them)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        score, amap = self.model(images)
        return score.float(), amap.float()


def metadata(det: Detector) -> dict[str, Any]:
    mean, std = mean_std(det.config.normalize)
    hold = det.holdout
    return {
        "method": det.name, "miad_version": __version__, "image_size": det.config.image_size,
        "normalize": det.config.normalize, "mean": list(mean), "std": list(std),
        "threshold": hold.threshold if hold else None,
        "category_thresholds": hold.category_thresholds if hold else {},
        "pixel_quantiles": hold.pixel_quantiles.tolist() if hold else None,
        "threshold_quantile": det.config.threshold_quantile, "trained_on": det.trained_on,
        "config": det.config.to_dict(),
    }


def export_model(det: Detector, path: str | Path, fmt: str = "onnx", verify: bool = True) -> Path:
    """Export a fitted detector to `path` (.onnx, or .xml with its .bin beside it); returns the path.

    verify: run the written file against the checkpoint before publishing it (refused with the measured
    difference if they disagree); an old file at `path` survives a failed export.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; valid formats: {', '.join(FORMATS)}")
    if not det.fitted:
        raise NotFittedError(f"{det.name} is not fitted: train it (miad train) before exporting")
    _require(fmt)
    path = Path(path)
    det.to("cpu")
    det.model.eval()
    writer = _publish_onnx if fmt == "onnx" else _publish_openvino
    return writer(det, path, verify)


def _publish_onnx(det: Detector, path: Path, verify: bool) -> Path:
    with atomic_path(path) as tmp:
        _write_onnx(det, tmp)
        if verify:
            verify_export(det, tmp, "onnx")
    return path


def _publish_openvino(det: Detector, path: Path, verify: bool) -> Path:
    """IR files are written in a temp folder beside `path` under their final names (the .xml names its .bin by
    stem), verified, then moved into place: .bin first, so an .xml is never beside a missing .bin."""
    import openvino as ov

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        onnx_tmp = tmp_dir / "graph.onnx"
        _write_onnx(det, onnx_tmp)
        model = _convert_openvino(onnx_tmp)
        model.set_rt_info(json.dumps(metadata(det)), ["miad"])
        xml = tmp_dir / path.name
        ov.save_model(model, str(xml), compress_to_fp16=False)  # fp32 weights: fp16 cannot hold 1e-4
        if verify:
            verify_export(det, xml, "openvino")
        publish(xml.with_suffix(".bin"), path.with_suffix(".bin"))
        publish(xml, path)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return path


def _convert_openvino(onnx_path: Path) -> Any:
    import openvino as ov

    try:
        return ov.convert_model(str(onnx_path))
    except Exception as exc:
        raise MiadError(f"OpenVINO could not convert the graph: {type(exc).__name__}: {str(exc)[:300]}") from exc


def _write_onnx(det: Detector, tmp: Path) -> None:
    import onnx

    size = det.config.image_size
    example = torch.zeros(EXPORT_BATCH, 3, size, size)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # Expected: the traced Python branches depend only on the image size and the model (fixed in the
            # graph), never on the batch, which stays dynamic (verify_export checks it on every export). The
            # deprecation notice of the TorchScript exporter (dynamo=False) is for maintainers, not for users.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                _Graph(det.model).eval(), (example,), str(tmp), dynamo=False, opset_version=OPSET,
                input_names=["images"], output_names=["image_score", "anomaly_map"],
                dynamic_axes={"images": {0: "batch"}, "image_score": {0: "batch"}, "anomaly_map": {0: "batch"}},
            )
        proto = onnx.load(str(tmp))
        entry = proto.metadata_props.add()
        entry.key, entry.value = "miad", json.dumps(metadata(det))
        onnx.save(proto, str(tmp))
    except MiadError:
        raise
    except Exception as exc:
        raise MiadError(f"ONNX export of {det.name} failed: {type(exc).__name__}: {str(exc)[:300]}") from exc


def synthetic_images(det: Detector, batch: int, seed: int = 0) -> torch.Tensor:
    """Normalised smooth random images [B,3,S,S] (coarse colour fields plus noise): verification input."""
    size = det.config.image_size
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(batch, 3, 8, 8, generator=gen)
    pixels = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    pixels = (pixels + 0.05 * torch.randn(batch, 3, size, size, generator=gen)).clamp(0, 1)
    return normalize(pixels, det.config.normalize).contiguous()


def max_difference(got: tuple[np.ndarray, np.ndarray], want: tuple[np.ndarray, np.ndarray]) -> tuple[float, float]:
    """(score, map) differences, each relative to the largest absolute value of the reference."""
    return tuple(  # type: ignore[return-value]
        float(np.abs(g - w).max() / max(float(np.abs(w).max()), 1e-12)) for g, w in zip(got, want)
    )


def verify_export(det: Detector, path: Path, fmt: str) -> None:
    """Run the exported file against the checkpoint at VERIFY_BATCHES; MiadError with the measured difference."""
    _, run = open_exported(path, det.name, fmt)
    for batch in VERIFY_BATCHES:
        images = synthetic_images(det, batch, seed=batch)
        ref = det.predict(images)
        d_score, d_map = max_difference(run(images.numpy()), (ref.image_score.numpy(), ref.anomaly_map.numpy()))
        if max(d_score, d_map) > TOLERANCE:
            raise MiadError(
                f"the exported {det.name} graph disagrees with the checkpoint at batch {batch}: scores differ by "
                f"{d_score:.2e} and maps by {d_map:.2e} of their largest value (tolerance {TOLERANCE:g}); nothing "
                f"was written. Please report this with the checkpoint; predict with the .pt file meanwhile"
            )


def format_of(path: str | Path) -> str | None:
    """'onnx' / 'openvino' from the file suffix; None for anything else (a torch checkpoint)."""
    suffix = Path(path).suffix.lower()
    return next((fmt for fmt, s in FORMATS.items() if s == suffix), None)


def read_metadata(path: str | Path, fmt: str | None = None) -> dict[str, Any]:
    """The `miad` metadata of an exported .onnx or .xml file, checked for the fields prediction needs."""
    path = Path(path)
    fmt = fmt or format_of(path)
    raw = _read_onnx_metadata(path) if fmt == "onnx" else _read_openvino_metadata(path)
    if raw is None:
        raise CheckpointError(f"{path} has no miad metadata: it was not written by `miad export`; export the "
                              f"model.pt with `miad export --checkpoint model.pt --out {path.name}`")
    try:
        meta = json.loads(raw)
        missing = [k for k in REQUIRED_METADATA if k not in meta]
    except (ValueError, TypeError):
        meta, missing = {}, ["(unreadable JSON)"]
    if missing:
        raise CheckpointError(f"{path} has incomplete miad metadata (missing {', '.join(missing)}); "
                              f"re-export it with `miad export`")
    return meta


def _read_onnx_metadata(path: Path) -> str | None:
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise CheckpointError(f"{path} is not a readable ONNX file ({type(exc).__name__}); re-create it with "
                              f"`miad export --format onnx`") from None
    return next((p.value for p in proto.metadata_props if p.key == "miad"), None)


def _read_openvino_metadata(path: Path) -> str | None:
    model = _read_openvino(path)
    return model.get_rt_info(["miad"]).astype(str) if model.has_rt_info(["miad"]) else None


def _read_openvino(path: Path) -> Any:
    import openvino as ov

    if not path.with_suffix(".bin").is_file():
        raise CheckpointError(f"{path} has no {path.with_suffix('.bin').name} beside it (an OpenVINO IR is the "
                              f".xml and its .bin); copy both, or re-create them with `miad export --format openvino`")
    try:
        return ov.Core().read_model(str(path))
    except Exception as exc:
        raise CheckpointError(f"{path} is not a readable OpenVINO IR ({type(exc).__name__}); re-create it with "
                              f"`miad export --format openvino`") from None


def open_exported(
    path: str | Path, expect_method: str | None = None, fmt: str | None = None
) -> tuple[dict[str, Any], Runner]:
    """(metadata, runner) of an exported .onnx (onnxruntime) or .xml (OpenVINO runtime, CPU, f32) file."""
    path = Path(path)
    fmt = fmt or format_of(path) or "onnx"
    _require(fmt, running=True)
    if not path.is_file():
        raise CheckpointError(f"exported model {path} does not exist; create it with `miad export --format {fmt}`")
    meta = read_metadata(path, fmt)
    if meta["method"] not in list_methods():
        raise CheckpointError(f"{path} holds a {meta['method']!r} model, which this miad does not know; "
                              f"valid methods: {', '.join(list_methods())}")
    if expect_method is not None and meta["method"] != expect_method:
        raise CheckpointError(f"{path} is a {meta['method']} model, expected {expect_method}")
    return meta, (_onnx_runner(path) if fmt == "onnx" else _openvino_runner(path))


def _onnx_runner(path: Path) -> Runner:
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise CheckpointError(f"onnxruntime cannot run {path} ({type(exc).__name__}); re-create it with "
                              f"`miad export`") from None

    def run(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores, maps = session.run(None, {"images": np.ascontiguousarray(images, dtype=np.float32)})
        return scores, maps

    return run


def _openvino_runner(path: Path) -> Runner:
    import openvino as ov

    compiled = ov.Core().compile_model(_read_openvino(path), "CPU", OPENVINO_CONFIG)

    def run(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = compiled(np.ascontiguousarray(images, dtype=np.float32))
        return np.asarray(out[compiled.outputs[0]]), np.asarray(out[compiled.outputs[1]])

    return run


# the optional packages (all in miad[export]) that exporting to / running each format needs
_EXPORT_NEEDS = {"onnx": ("onnx", "onnxruntime"), "openvino": ("onnx", "openvino")}
_RUN_NEEDS = {"onnx": ("onnx", "onnxruntime"), "openvino": ("openvino",)}


def _require(fmt: str, running: bool = False) -> None:
    """One-line error naming the install command when a format's optional packages are missing."""
    missing = [m for m in (_RUN_NEEDS if running else _EXPORT_NEEDS)[fmt] if importlib.util.find_spec(m) is None]
    if missing:
        what = f"{'running' if running else 'exporting'} {'ONNX' if fmt == 'onnx' else 'OpenVINO'} models"
        raise MiadError(f"{what} needs {' and '.join(missing)}: pip install 'miad[export]'")
