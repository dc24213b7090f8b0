"""`miad export`: write a checkpoint as ONNX or OpenVINO IR (pre-processing and thresholds in the metadata, not
the graph). The written file is run against the checkpoint at two batch sizes before it is published."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

_OPENVINO_ROOT = re.compile(rb"\s*(<\?xml[^>]*\?>\s*)?(<!--.*?-->\s*)*<net[\s>]", re.S)


def register(sub: argparse._SubParsersAction) -> None:
    from miad.export import FORMATS

    p = sub.add_parser("export", help="export a checkpoint to ONNX or OpenVINO", description=__doc__)
    p.add_argument("--checkpoint", required=True, help="model.pt written by `miad train`")
    p.add_argument("--format", default="onnx", choices=list(FORMATS), help="export format (default onnx)")
    p.add_argument("--out", required=True, help="output file (.onnx; .xml for OpenVINO, its .bin is written beside)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from miad.export import export_model
    from miad.registry import load

    out = Path(args.out)
    check_export_target(out, args.format)
    det = load(args.checkpoint, device="cpu")
    path = export_model(det, out, args.format)
    size = det.config.image_size
    print(f"wrote {path} ({det.name}, {args.format}, input [B,3,{size},{size}], normalisation "
          f"{det.config.normalize}; checked against the checkpoint at batch sizes 1 and 3)")
    return 0


def check_export_target(path: Path, fmt: str) -> None:
    """`path` must end in the format's suffix, and an existing file there must be a model of that format
    (OpenVINO: the .xml and its .bin), so that a typo in --out never replaces someone's file."""
    from miad.errors import ConfigError
    from miad.export import FORMATS

    suffix = FORMATS[fmt]
    if path.suffix.lower() != suffix:
        raise ConfigError(f"--out {path}: a {fmt} model is written to a {suffix} file; pass e.g. "
                          f"{path.with_suffix(suffix)}")
    what = {"onnx": "an ONNX model written by miad", "openvino": "an OpenVINO IR (.xml)"}[fmt]
    if path.exists() and not (path.is_file() and _is_model(path, fmt)):
        raise ConfigError(f"--out {path} exists and is not {what}; it is never replaced: pass another --out "
                          "or delete that file")
    weights = path.with_suffix(".bin")
    if fmt == "openvino" and weights.exists() and not path.exists():
        raise ConfigError(f"--out {path}: {weights} exists without its .xml, so it is not the weights of an "
                          "OpenVINO model and is never replaced; pass another --out or delete that file")


def _is_model(path: Path, fmt: str) -> bool:
    if fmt == "openvino":
        with open(path, "rb") as fh:
            return bool(_OPENVINO_ROOT.match(fh.read(4096).removeprefix(b"\xef\xbb\xbf")))
    try:
        from miad.export import read_metadata

        read_metadata(path)
    except Exception:  # not ONNX, truncated, or without miad metadata: none is ours to replace
        return False
    return True
