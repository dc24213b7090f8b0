"""`miad export`: write a checkpoint as ONNX (pre-processing and thresholds in the metadata, not the graph)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a checkpoint to ONNX", description=__doc__)
    p.add_argument("--checkpoint", required=True, help="model.pt written by `miad train`")
    p.add_argument("--format", default="onnx", choices=["onnx"], help="export format")
    p.add_argument("--out", required=True, help="output file (.onnx)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from miad.export import export_onnx
    from miad.registry import load

    det = load(args.checkpoint, device="cpu")
    path = export_onnx(det, args.out)
    print(f"wrote {path} ({det.name}, input [B,3,{det.config.image_size},{det.config.image_size}], "
          f"normalisation {det.config.normalize})")
    return 0
