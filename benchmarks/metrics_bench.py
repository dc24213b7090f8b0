"""Speed and peak memory of exact pixel AUROC + AUPRO: miad.metrics against a naive sort-everything baseline.

Data (deterministic, seeded per image): N maps of 256x256 float32, |N(0,1)| noise; every second image has 1-3
discs of radius 6-24 px whose scores get a cone of +0.5..+3.0, so anomalous scores overlap the normal ones.
Each variant runs in its own subprocess (peak RSS only grows within a process) and reports its wall time, CPU
time and peak RSS (whole process: Python, numpy, torch imported by `import miad`, the data, the metric).

    python benchmarks/metrics_bench.py             # 1,000 maps vs the naive baseline, then 5,000 maps
    python benchmarks/metrics_bench.py --quick     # 100 and 500 maps: a smoke run
    python benchmarks/metrics_bench.py --n 2000 --big-n 0

anomalib is not installed here; its numbers are quoted from issue 4 (measured on the same 2-core machine type,
same data shape), not measured by this script.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

SIZE = 256
FPR_LIMIT = 0.3
ANOMALIB_AUPRO_S, ANOMALIB_AUROC_S, ANOMALIB_PEAK_GB = 20.8, 15.9, 6.0  # issue 4, measured elsewhere
TARGET_S, TARGET_GB, BIG_TARGET_GB = 3.7, 1.5, 4.0


def make_image(i: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Map and mask of image i; identical however the images are batched."""
    rng = np.random.default_rng([seed, i])
    amap = np.abs(rng.standard_normal((SIZE, SIZE), dtype=np.float32))
    mask = np.zeros((SIZE, SIZE), dtype=bool)
    if i % 2 == 0:
        yy, xx = np.ogrid[:SIZE, :SIZE]
        for _ in range(int(rng.integers(1, 4))):
            cy, cx = rng.integers(24, SIZE - 24, 2)
            radius = float(rng.integers(6, 25))
            dist = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2, dtype=np.float32)
            disc = dist <= radius
            mask |= disc
            amap[disc] += (3.0 * (1 - dist[disc] / radius)).astype(np.float32)
    return amap, mask


def make_data(n: int) -> tuple[np.ndarray, np.ndarray]:
    maps = np.empty((n, SIZE, SIZE), dtype=np.float32)
    masks = np.empty((n, SIZE, SIZE), dtype=bool)
    for i in range(n):
        maps[i], masks[i] = make_image(i)
    return maps, masks


def naive(maps: np.ndarray, masks: np.ndarray) -> tuple[float, float]:
    """Sort every pixel as float64 with one joint argsort; exact (ties grouped); MVTec AUPRO."""
    scores, labels = maps.astype(np.float64).ravel(), masks.ravel()
    pro_step = np.zeros(scores.size)
    n_regions = 0
    for i in range(len(maps)):
        regions, k = ndimage.label(masks[i], structure=np.ones((3, 3)))
        sizes = np.bincount(regions.ravel())
        inside = np.flatnonzero(regions.ravel())
        pro_step[i * SIZE * SIZE + inside] = 1.0 / sizes[regions.ravel()[inside]]
        n_regions += k
    order = np.argsort(scores)[::-1]
    ordered, y = scores[order], labels[order]
    last = np.append(ordered[1:] != ordered[:-1], True)  # one curve point per distinct threshold
    fpr = np.concatenate(([0.0], np.cumsum(~y)[last] / np.count_nonzero(~labels)))
    tpr = np.concatenate(([0.0], np.cumsum(y)[last] / np.count_nonzero(labels)))
    pro = np.concatenate(([0.0], np.cumsum(pro_step[order])[last] / n_regions))
    auroc = float(np.trapezoid(tpr, fpr))
    cut = int(np.searchsorted(fpr, FPR_LIMIT, side="right"))
    x, p = fpr[:cut], pro[:cut]
    if x[-1] < FPR_LIMIT:
        step = (FPR_LIMIT - fpr[cut - 1]) / (fpr[cut] - fpr[cut - 1])
        x, p = np.append(x, FPR_LIMIT), np.append(p, pro[cut - 1] + step * (pro[cut] - pro[cut - 1]))
    return auroc, float(np.trapezoid(p, x) / FPR_LIMIT)


def ours_two_calls(maps: np.ndarray, masks: np.ndarray) -> tuple[float, float]:
    from miad.metrics import aupro, pixel_auroc

    return pixel_auroc(maps, masks), aupro(maps, masks, fpr_limit=FPR_LIMIT)


def ours_one_pass(maps: np.ndarray, masks: np.ndarray) -> tuple[float, float]:
    from miad.metrics import pixel_metrics

    values = pixel_metrics(maps, masks, fpr_limit=FPR_LIMIT)
    return values["pixel_auroc"], values["aupro"]


def accumulator(n: int) -> tuple[float, float, float, float]:
    """Batches of 32 generated on the fly (no full copy of the data besides the accumulator's own store)."""
    import torch

    from miad.metrics import MetricAccumulator
    from miad.types import Prediction, Sample

    acc = MetricAccumulator(fpr_limit=FPR_LIMIT)
    update_s = 0.0
    for start in range(0, n, 32):
        batch = [make_image(i) for i in range(start, min(n, start + 32))]
        maps = torch.from_numpy(np.stack([m for m, _ in batch]))
        masks = torch.from_numpy(np.stack([k for _, k in batch]))
        samples = [
            Sample(
                Path(f"img{start + j}.png"),
                int(k.any()),
                Path("m.png"),
                "bench",
                "defect" if k.any() else "good",
                "test",
            )
            for j, (_, k) in enumerate(batch)
        ]
        t = time.perf_counter()
        acc.update(Prediction(maps.flatten(1).amax(1), maps), masks, samples)
        update_s += time.perf_counter() - t
    t = time.perf_counter()
    entry = acc.compute().per_category["bench"]
    return entry["pixel_auroc"], entry["aupro"], update_s, time.perf_counter() - t


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def worker(variant: str, n: int) -> dict:
    if variant == "accumulator":
        import miad.metrics  # noqa: F401  (imports counted in the RSS like the other variants)

        auroc, pro, update_s, compute_s = accumulator(n)
        return {
            "pixel_auroc": auroc,
            "aupro": pro,
            "seconds": update_s + compute_s,
            "cpu": None,
            "update_s": update_s,
            "compute_s": compute_s,
        }
    if variant != "naive":
        import miad.metrics  # noqa: F401
    maps, masks = make_data(n)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    fn = {"naive": naive, "ours": ours_two_calls, "ours_one_pass": ours_one_pass}[variant]
    t, c = time.perf_counter(), cpu_s()
    auroc, pro = fn(maps, masks)
    return {
        "pixel_auroc": auroc,
        "aupro": pro,
        "seconds": time.perf_counter() - t,
        "cpu": cpu_s() - c,
        "rss_before_gb": rss_before,
    }


def run_variant(variant: str, n: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", variant, "--n", str(n)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def row(label: str, r: dict) -> str:
    cpu = f"{r['cpu']:6.2f}" if r.get("cpu") is not None else "     -"
    return (
        f"  {label:44s} {r['seconds']:7.2f} s  cpu {cpu} s  peak RSS {r['peak_gb']:5.2f} GB   "
        f"pixel AUROC {r['pixel_auroc']:.12f}  AUPRO {r['aupro']:.12f}"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1000, help="maps in the comparison with the naive baseline")
    p.add_argument("--big-n", type=int, default=5000, help="maps in the MIAD-scale run (0 skips it)")
    p.add_argument("--quick", action="store_true", help="100 and 500 maps")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        result = worker(args.worker, args.n)
        result["peak_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # Linux: kB
        print(json.dumps(result))
        return
    n, big = (100, 500) if args.quick else (args.n, args.big_n)
    print(
        f"exact pixel AUROC + AUPRO (fpr_limit {FPR_LIMIT}), {n} maps {SIZE}x{SIZE} float32, half with 1-3 disc "
        "defects; one subprocess per variant"
    )
    results = {v: run_variant(v, n) for v in ("ours", "ours_one_pass", "naive")}
    print(row("miad: pixel_auroc() + aupro()", results["ours"]))
    print(row("miad: pixel_metrics() (all four, one pass)", results["ours_one_pass"]))
    print(row("naive: float64 joint argsort (exact)", results["naive"]))
    ours, base = results["ours"], results["naive"]
    print(
        f"  speed-up vs naive: {base['seconds'] / ours['seconds']:.1f}x wall, {base['cpu'] / ours['cpu']:.1f}x cpu;"
        f" peak RSS {base['peak_gb'] / ours['peak_gb']:.1f}x lower (data + imports alone: "
        f"{ours['rss_before_gb']:.2f} GB)"
    )
    diff = max(abs(ours[k] - base[k]) for k in ("pixel_auroc", "aupro"))
    print(f"  same values as the naive baseline: {'yes' if diff <= 1e-9 else 'NO'} (max |diff| {diff:.1e})")
    print(
        f"  anomalib 2.7 (measured elsewhere, quoted from issue 4): {ANOMALIB_AUPRO_S} s AUPRO + "
        f"{ANOMALIB_AUROC_S} s pixel AUROC = {ANOMALIB_AUPRO_S + ANOMALIB_AUROC_S:.1f} s, "
        f"{ANOMALIB_PEAK_GB} GB peak"
    )
    met = ours["seconds"] <= TARGET_S and ours["peak_gb"] <= TARGET_GB
    print(
        f"  target <= {TARGET_S} s and <= {TARGET_GB} GB at 1,000 maps: {'met' if met else 'NOT met'}"
        + ("" if n == 1000 else f" (this run has {n} maps)")
    )
    if big:
        print(f"MIAD scale: {big} maps")
        big_ours = run_variant("ours", big)
        print(row("miad: pixel_auroc() + aupro()", big_ours))
        big_acc = run_variant("accumulator", big)
        print(
            row("miad: MetricAccumulator (batches of 32)", big_acc)
            + f"  [update {big_acc['update_s']:.2f} s, compute {big_acc['compute_s']:.2f} s]"
        )
        worst = max(big_ours["peak_gb"], big_acc["peak_gb"])
        print(f"  target <= {BIG_TARGET_GB} GB peak RSS: {'met' if worst <= BIG_TARGET_GB else 'NOT met'}")


if __name__ == "__main__":
    main()
