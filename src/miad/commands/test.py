"""`miad test`: evaluate a checkpoint on a test split (image AUROC, pixel AUROC, AUPRO, F1 at the stored
threshold next to the oracle F1-max); with `--out`, also per-image scores (CSV) and float16 maps (npz)."""

from __future__ import annotations

import argparse
from typing import Any

from miad.commands._common import add_device, add_loader, output_folder


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("test", help="evaluate a checkpoint on test data", description=__doc__)
    p.add_argument("--checkpoint", required=True, help="model.pt written by `miad train`")
    p.add_argument("--data", required=True, help="data root, or 'builtin'")
    p.add_argument("--scenario", default=None,
                   help="category, comma list or 'all' (default: the categories the model was trained on)")
    p.add_argument("--threshold", type=float, default=None, help="decision threshold (default: held-out normals)")
    p.add_argument("--out", help="folder for metrics.json, scores.csv, maps.npz and config.yaml")
    add_device(p)
    add_loader(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from miad.atomic import write_json_atomic
    from miad.config import write_resolved_config
    from miad.data.index import load_samples, split_samples
    from miad.evaluation import evaluate_detector, write_scores_csv
    from miad.registry import load

    det = load(args.checkpoint, device=_device(args.device))
    scenario = args.scenario or (",".join(det.trained_on) if det.trained_on else "all")
    test = split_samples(load_samples(args.data, scenario), "test")
    out = output_folder(args.out) if args.out else None
    ev = evaluate_detector(det, test, batch_size=args.batch_size, num_workers=args.num_workers,
                           maps_path=out / "maps.npz" if out else None, threshold=args.threshold)
    f1_thr = f1_at_thresholds(ev.rows)
    print(format_metrics(ev.metrics, f1_thr))
    print(f"{len(test)} test images, {ev.ms_per_image:.1f} ms/image")
    from miad.selection import MARK, PAPER_SELECTION, selected_on_test

    chosen = {"protocol": PAPER_SELECTION, "mark": MARK} if selected_on_test(det.history) else {}
    if chosen:
        print(f"note: this model was {MARK} (trained with --protocol {PAPER_SELECTION}): optimistic metrics")
    if out:
        write_scores_csv(out / "scores.csv", ev.rows)
        write_json_atomic(out / "metrics.json", {**ev.metrics.to_dict(), "f1_at_threshold": f1_thr,
                                                 "ms_per_image": ev.ms_per_image, "checkpoint": args.checkpoint,
                                                 **chosen})
        write_resolved_config(out, det, checkpoint=str(args.checkpoint), trained_on=det.trained_on)
        print(f"wrote {out}/metrics.json, scores.csv, maps.npz")
    return 0


def _device(device: str) -> str:
    from miad.detector import resolve_device

    return str(resolve_device(device))


def f1_at_thresholds(rows: list[dict[str, Any]]) -> dict[str, float | None]:
    """Per category, F1 of the decisions taken at the stored (held-out) threshold."""
    from miad.metrics import f1_at_threshold

    out: dict[str, float | None] = {}
    for cat in sorted({r["category"] for r in rows}):
        sub = [r for r in rows if r["category"] == cat and r["decision"] != ""]
        if not sub:
            out[cat] = None
            continue
        # decision = score > threshold; f1_at_threshold takes the same rule on 0/1 decisions at 0.5
        out[cat] = f1_at_threshold([r["decision"] for r in sub], [r["label"] for r in sub], 0.5)
    return out


def format_metrics(result: Any, f1_thr: dict[str, float | None] | None = None) -> str:
    """A plain-text table: one row per category plus the mean."""
    cols = ("image_auroc", "pixel_auroc", "aupro", "image_f1_max")
    head = f"{'category':24s} " + " ".join(f"{c:>12s}" for c in cols) + f" {'f1@thr':>8s}"
    lines = [head, "-" * len(head)]
    for cat, entry in result.per_category.items():
        f1 = (f1_thr or {}).get(cat)
        lines.append(f"{cat:24s} " + " ".join(_fmt(entry[c]) for c in cols) + f" {_fmt(f1, 8)}")
    lines.append(f"{'mean':24s} " + " ".join(_fmt(result.mean[c]) for c in cols))
    lines += [f"note: {n}" for n in result.notes]
    return "\n".join(lines)


def _fmt(value: float | None, width: int = 12) -> str:
    if value is None or value != value:
        return f"{'n/a':>{width}s}"
    return f"{100 * value:>{width}.1f}"
