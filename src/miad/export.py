"""ONNX export: the detector's torch-only `_predict` as one graph, images [B,3,S,S] -> (score [B], map [B,S,S]).

Pre-processing (size, normalisation) and the held-out thresholds travel as metadata (`miad` JSON property), not
inside the graph, so a user can change the decision threshold without re-exporting (anomalib bakes thresholds
into its exports, a frequent complaint). Written with the TorchScript-based exporter (opset 17), which handles
every method's graph; the file is written to a temp path and renamed.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from miad.atomic import atomic_path
from miad.errors import MiadError, NotFittedError

OPSET = 17


class _Graph(nn.Module):
    def __init__(self, det: Any) -> None:
        super().__init__()
        self.model = det.model
        self._det = [det]

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pred = self._det[0]._predict(images)
        return pred.image_score.float(), pred.anomaly_map.float()


def metadata(det: Any) -> dict[str, Any]:
    from miad import __version__
    from miad.preprocess import mean_std

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


def export_onnx(det: Any, path: str | Path, batch: int = 2) -> Path:
    """Export a fitted detector to `path` (.onnx); returns the path."""
    import onnx

    if not det.fitted:
        raise NotFittedError(f"{det.name} is not fitted: train it (miad train) before exporting")
    path = Path(path)
    det.to("cpu")
    det.model.eval()
    size = det.config.image_size
    example = torch.zeros(batch, 3, size, size)
    try:
        with atomic_path(path) as tmp, torch.no_grad(), warnings.catch_warnings():
            # Expected: the traced Python branches depend only on the image size and the model (fixed in the graph),
            # never on the batch, which stays dynamic (parity is tested at another batch size). The deprecation notice
            # of the TorchScript exporter (dynamo=False) is for miad's maintainers, not for users.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                _Graph(det).eval(), (example,), tmp, dynamo=False, opset_version=OPSET, input_names=["images"],
                output_names=["image_score", "anomaly_map"],
                dynamic_axes={"images": {0: "batch"}, "image_score": {0: "batch"}, "anomaly_map": {0: "batch"}},
            )
            proto = onnx.load(tmp)
            entry = proto.metadata_props.add()
            entry.key, entry.value = "miad", json.dumps(metadata(det))
            onnx.save(proto, tmp)
    except Exception as exc:
        if isinstance(exc, MiadError):
            raise
        raise MiadError(f"ONNX export of {det.name} failed: {type(exc).__name__}: {str(exc)[:300]}") from exc
    return path


def read_metadata(path: str | Path) -> dict[str, Any]:
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    for prop in proto.metadata_props:
        if prop.key == "miad":
            return json.loads(prop.value)
    raise MiadError(f"{path} has no miad metadata; export it with `miad export`")
