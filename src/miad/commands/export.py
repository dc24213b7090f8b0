"""`miad export`: write a checkpoint as ONNX or OpenVINO IR (pre-processing and thresholds in the metadata, not
the graph). The written file is run against the checkpoint at two batch sizes before it is published."""

from __future__ import annotations

import argparse


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

    det = load(args.checkpoint, device="cpu")
    path = export_model(det, args.out, args.format)
    size = det.config.image_size
    print(f"wrote {path} ({det.name}, {args.format}, input [B,3,{size},{size}], normalisation "
          f"{det.config.normalize}; checked against the checkpoint at batch sizes 1 and 3)")
    return 0
