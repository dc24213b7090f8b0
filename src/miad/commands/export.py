"""`miad export`: write a checkpoint as ONNX (pre-processing and thresholds in the metadata, not the graph)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

# The file name each format is written to; an existing file there is replaced only if it is such a model.
SUFFIXES = {"onnx": ".onnx", "openvino": ".xml"}
_OPENVINO_ROOT = re.compile(rb"\s*(<\?xml[^>]*\?>\s*)?(<!--.*?-->\s*)*<net[\s>]", re.S)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a checkpoint to ONNX", description=__doc__)
    p.add_argument("--checkpoint", required=True, help="model.pt written by `miad train`")
    p.add_argument("--format", default="onnx", choices=["onnx"], help="export format")
    p.add_argument("--out", required=True, help="output file (.onnx)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from miad.registry import load

    out = Path(args.out)
    export_onnx = _exporter()
    check_export_target(out, args.format)
    det = load(args.checkpoint, device="cpu")
    path = export_onnx(det, out)
    print(f"wrote {path} ({det.name}, input [B,3,{det.config.image_size},{det.config.image_size}], "
          f"normalisation {det.config.normalize})")
    return 0


def _exporter():
    from miad.errors import ConfigError

    try:
        import onnx  # noqa: F401  (the [export] extra)
    except ImportError:
        raise ConfigError("ONNX export needs the onnx package: pip install 'miad[export]'") from None
    from miad.export import export_onnx

    return export_onnx


def check_export_target(path: Path, fmt: str) -> None:
    """`path` must end in the format's suffix, and an existing file there must be a model of that format
    (OpenVINO: the .xml and its .bin), so that a typo in --out never replaces someone's file."""
    from miad.errors import ConfigError

    suffix = SUFFIXES[fmt]
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
