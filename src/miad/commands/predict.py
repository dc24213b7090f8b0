"""`miad predict`: score new images with a checkpoint (model.pt, or an exported .onnx or OpenVINO .xml): per image
the score, the decision at the held-out normal threshold (or --threshold), a heat-map overlay and a binary mask."""

from __future__ import annotations

import argparse
from pathlib import Path

from miad.commands._common import add_device


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="score new images", description=__doc__)
    p.add_argument("--checkpoint", required=True,
                   help="model.pt from `miad train`, or a .onnx / OpenVINO .xml from `miad export`")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--threshold", type=float, default=None, help="decision threshold (default: held-out)")
    p.add_argument("--batch-size", type=int, default=8)
    add_device(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from miad.detector import resolve_device
    from miad.inference import expand_inputs, open_model, predict_paths

    model = open_model(args.checkpoint, device=str(resolve_device(args.device)))
    paths = expand_inputs(args.inputs)
    rows = predict_paths(model, paths, Path(args.out), threshold=args.threshold, batch_size=args.batch_size)
    flagged = sum(1 for r in rows if r["anomalous"])
    thr = rows[0]["threshold"] if rows else None
    print(f"{len(rows)} images scored with {model.name}; {flagged} anomalous at threshold "
          f"{'none' if thr is None else f'{thr:.6g}'}")
    print(f"wrote {args.out}/predictions.csv, predictions.json, overlays/, masks/")
    return 0
