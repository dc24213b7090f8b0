"""`miad predict`: score new images with a checkpoint (model.pt, or an exported .onnx or OpenVINO .xml): per image
the score, the decision at the held-out normal threshold (or --threshold), a heat-map overlay and a binary mask.
An unreadable image gets a row with its error and the exit status 3; the other images are scored and written."""

from __future__ import annotations

import argparse
import sys

from miad.commands._common import add_device, output_folder

EXIT_SOME_FAILED = 3  # some inputs could not be read; every other one was scored and written


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="score new images", description=__doc__)
    p.add_argument("--checkpoint", required=True,
                   help="model.pt from `miad train`, or a .onnx / OpenVINO .xml from `miad export`")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--threshold", type=float, default=None, help="decision threshold (default: held-out)")
    p.add_argument("--batch-size", type=int, default=8, help="images scored per batch")
    add_device(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from miad.detector import resolve_device
    from miad.inference import expand_inputs, open_model, predict_paths

    model = open_model(args.checkpoint, device=str(resolve_device(args.device)))
    out = output_folder(args.out)
    paths = expand_inputs(args.inputs, exclude=out)
    rows = predict_paths(model, paths, out, threshold=args.threshold, batch_size=args.batch_size)
    failed = [r for r in rows if r["error"]]
    flagged = sum(1 for r in rows if r["anomalous"])
    thr = rows[0]["threshold"] if rows else None
    print(f"{len(rows) - len(failed)} images scored with {model.name}; {flagged} anomalous at threshold "
          f"{'none' if thr is None else f'{thr:.6g}'}")
    print(f"wrote {out}/predictions.csv, predictions.json, overlays/, masks/")
    if failed:  # stderr's error handler escapes any byte of a file name
        print(f"error: {len(failed)} of {len(rows)} inputs could not be scored (rows with an error in "
              f"predictions.csv); the first: {failed[0]['error']}", file=sys.stderr)
        return EXIT_SOME_FAILED
    return 0
