"""MIAD at full scale on this machine: indexing, data check, training loader, PatchCore fit, test metrics.

On a MIAD-sized scenario (benchmarks/miad_scenario.py: 10,000 training + 2,500 + 2,500 test JPEGs at 1920x1440),
each stage runs in its own subprocess (peak RSS only grows within a process) and prints absolute figures, and
ratios against today's pipeline measured in the same run where one exists:
  index      `index_dataset` time
  check      `miad data check` (check_tree) time
  loader     training-loader images/s, epoch 1 and epoch 2, batches of the preset's batch size at its side as
             uint8 delivered to the training process (no model), float-normalised CPU batches beside them; today's
             pipeline (ImageDataset float batches, a DataLoader per epoch, --num-workers 0) on a subset
  loader_file  the same with the cache in a memory-mapped file (MIAD_IMAGE_CACHE_MEMORY=0); not in the default
  metrics    `evaluate_detector` over the 5,000 test images with synthetic maps (a cheap stand-in model): metrics,
             scores and maps.npz as `miad test --out` writes them; time, peak RSS, maps.npz size
  patchcore  PatchCore, paper layers, EfficientNet-Lite0 ImageNet weights, cap lifted, chunked coreset, no
             hold-out, fit on every training image: time and peak RSS
Targets (issue 24): epoch-2 loader >= 2,000 images/s and >= 15x today; epoch 1 no slower than today; PatchCore
<= 8 GB RSS; metrics <= 4 GB RSS. Finished stages are kept in WORK/stages/*.json: a rerun resumes.

    python benchmarks/scale_bench.py --work DIR [--data DIR] [--n-train 10000 ...] [--stages a,b] [--keep]

Without --data the scenario is written into WORK/data first and removed at the end unless --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
STAGES = ("index", "check", "loader", "loader_file", "metrics", "patchcore")
DEFAULT_STAGES = ("index", "check", "loader", "metrics", "patchcore")
METRIC_NAMES = ("image_auroc", "pixel_auroc", "aupro")
TARGETS = {"epoch2_ips": 2000.0, "epoch2_ratio": 15.0, "patchcore_gb": 8.0, "metrics_gb": 4.0}


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux: kB


def samples(root: str, split: str):
    from miad.data.index import index_dataset

    return [s for s in index_dataset(Path(root)) if s.split == split]


# ------------------------------------------------------------------------------------------------ stages


def stage_index(args) -> dict:
    from miad.data.index import index_dataset

    t0 = time.perf_counter()
    n = len(index_dataset(Path(args.data)))
    return {"images": n, "seconds": time.perf_counter() - t0}


def stage_check(args) -> dict:
    from miad.data.check import check_tree

    t0 = time.perf_counter()
    report = check_tree(Path(args.data))
    return {"seconds": time.perf_counter() - t0, "ok": report.ok}


def _epoch_batches(n: int, bs: int, epoch: int, seed: int = 0):
    import torch

    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
    return [order[i : i + bs] for i in range(0, n - bs + 1, bs)]  # the loop drops a short last batch


def _today(ds, bs: int, n: int, workers: int) -> float:
    """Images/s of today's pipeline: float ImageDataset items, one DataLoader per epoch (workers started anew)."""
    from torch.utils.data import DataLoader, Subset

    sub = Subset(ds, list(range(min(n, len(ds)))))
    t0, count = time.perf_counter(), 0
    batches = [b.tolist() for b in _epoch_batches(len(sub), bs, 0)]
    for batch in DataLoader(sub, batch_sampler=batches, num_workers=workers):
        count += len(batch["image"])
    return count / (time.perf_counter() - t0)


def stage_loader(args, file_backed: bool = False) -> dict:
    import torch

    from miad.data.dataset import ImageDataset
    from miad.data.feed import ImageFeed, resolve_workers
    from miad.registry import make_config

    if file_backed:
        os.environ["MIAD_IMAGE_CACHE_MEMORY"] = "0"
    cfg = make_config(args.method, "paper")
    train = samples(args.data, "train")
    size, bs = 256, cfg.batch_size
    ds = ImageDataset(train, size, cfg.normalize, resize=cfg.resize)
    out = {"method": args.method, "batch_size": bs, "size": size, "resize": cfg.resize, "images": len(train),
           "workers": resolve_workers("auto", len(train))}
    if not file_backed:
        out["today_ips"] = _today(ds, bs, args.baseline_images, 0)
        out["today2_ips"] = _today(ds, bs, args.baseline_images, 2)
        out["today_images"] = min(args.baseline_images, len(train))
    t0 = time.perf_counter()
    feed = ImageFeed(ds, list(range(len(train))), cache=True, workers="auto", device=torch.device("cpu"),
                     batch_size=bs)
    out["on_disk"] = bool(feed.cached is not None and feed.cached.on_disk)
    for epoch in (0, 1):
        batches = _epoch_batches(len(train), bs, epoch)
        count = sum(len(b) for b in feed.batches(batches))
        out[f"epoch{epoch + 1}_ips"] = count / (time.perf_counter() - t0)
        t0 = time.perf_counter()
    count = sum(len(feed.to_input(b)) for b in feed.batches(_epoch_batches(len(train), bs, 2)))
    out["float_ips"] = count / (time.perf_counter() - t0)
    out["peak_gb"] = peak_gb()
    return out


class SyntheticMaps:
    """A cheap stand-in model for `evaluate_detector`: the preset's dataset (decoding, masks) and, per image, a
    deterministic noise map raised on a part of the true defect region (so metrics are neither 0.5 nor 1)."""

    name = "synthetic"
    holdout = None

    def __init__(self, size: int = 256, batch_size: int = 32) -> None:
        from miad.registry import make_config

        self.config = make_config("reverse_distillation", "paper", image_size=size, batch_size=batch_size)

    def dataset(self, chosen):
        from miad.data.dataset import ImageDataset

        return ImageDataset(list(chosen), self.config.image_size, self.config.normalize, resize=self.config.resize)

    def predict_dataset(self, ds, batch_size=None, num_workers=0):
        import torch
        from torch.utils.data import DataLoader

        from miad.data.feed import resolve_workers
        from miad.types import Prediction

        loader = DataLoader(ds, batch_size=self.config.batch_size, num_workers=resolve_workers(num_workers, len(ds)))
        for batch in loader:
            t0 = time.perf_counter()
            maps = []
            for i, mask in zip(batch["index"].tolist(), batch["mask"]):
                gen = torch.Generator().manual_seed(i)
                noise = torch.rand(mask.shape, generator=gen)
                maps.append(noise + mask * torch.rand((), generator=gen) * 1.5)
            amap = torch.stack(maps)
            yield Prediction(amap.flatten(1).amax(1), amap), batch, time.perf_counter() - t0


def stage_metrics(args) -> dict:
    from miad.evaluation import evaluate_detector

    test = samples(args.data, "test")
    maps = Path(args.work) / "maps.npz"
    t0 = time.perf_counter()
    ev = evaluate_detector(SyntheticMaps(), test, num_workers="auto", maps_path=maps, progress=False)
    seconds = time.perf_counter() - t0
    m = ev.metrics
    return {"images": len(test), "seconds": seconds, "peak_gb": peak_gb(), "maps_mb": maps.stat().st_size / 1e6,
            **{k: float(v) for k, v in m.mean.items()}}


def stage_patchcore(args) -> dict:
    from miad.registry import create

    train = samples(args.data, "train")
    det = create("patchcore", "paper", backbone="efficientnet_lite0", weights="imagenet", max_train_images=None,
                 coreset_mode="chunked", holdout_fraction=0.0)
    t0 = time.perf_counter()
    det.fit(train, device="cpu", progress=False, num_workers="auto")
    return {"images": len(train), "seconds": time.perf_counter() - t0, "peak_gb": peak_gb(), **det.fit_stats}


def run_stage(name: str, args) -> dict:
    fn = {"index": stage_index, "check": stage_check, "loader": stage_loader, "metrics": stage_metrics,
          "patchcore": stage_patchcore, "loader_file": lambda a: stage_loader(a, file_backed=True)}[name]
    t0 = time.perf_counter()
    out = fn(args)
    out["stage_seconds"] = time.perf_counter() - t0
    return out


# ------------------------------------------------------------------------------------------------ report


def report(name: str, r: dict) -> str:
    if name in ("index", "check"):
        extra = f" ({r['images']} images)" if "images" in r else f" (clean: {r['ok']})"
        return f"{name:10s} {r['seconds']:8.1f} s{extra}"
    if name.startswith("loader"):
        where = "mapped file" if r["on_disk"] else "memory"
        lines = [f"{name:10s} {r['method']} paper: batch {r['batch_size']}, {r['size']} px, resize {r['resize']}, "
                 f"{r['images']} images, {r['workers']} workers, cache in {where}, peak RSS {r['peak_gb']:.2f} GB"]
        today = r.get("today_ips")
        if today:
            lines.append(f"{'':10s} today (float, DataLoader per epoch, {r['today_images']} images): "
                         f"{today:.1f} images/s with 0 workers (the old default), {r['today2_ips']:.1f} with 2")
        for key, label in (("epoch1_ips", "epoch 1 (decode into the cache)"), ("epoch2_ips", "epoch 2 uint8"),
                           ("float_ips", "epoch 3 float-normalised on the CPU")):
            ratio = f"  {r[key] / today:7.1f}x today, {r[key] / r['today2_ips']:6.1f}x today with 2" if today else ""
            lines.append(f"{'':10s} {label:38s} {r[key]:9.1f} images/s{ratio}")
        return "\n".join(lines)
    if name == "metrics":
        return (f"{name:10s} {r['images']} maps of 256 px: {r['seconds']:.1f} s, peak RSS {r['peak_gb']:.2f} GB "
                f"(target <= {TARGETS['metrics_gb']} GB), maps.npz {r['maps_mb']:.0f} MB, "
                + ", ".join(f"{k} {v:.3f}" for k, v in r.items() if k in METRIC_NAMES))
    return (f"{name:10s} {r['images']} images: {r['seconds']:.1f} s (features {r['features_seconds']:.0f} s, "
            f"coreset {r['coreset_seconds']:.0f} s), peak RSS {r['peak_gb']:.2f} GB (target <= "
            f"{TARGETS['patchcore_gb']} GB), {r['patch_vectors']} patch vectors -> bank {r['bank_size']}, "
            f"{r['chunks']} chunks")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True, type=Path, help="folder for stage results (and the data)")
    ap.add_argument("--data", help="an existing scenario tree (default: written into WORK/data)")
    ap.add_argument("--n-train", type=int, default=10_000)
    ap.add_argument("--n-test-good", type=int, default=2_500)
    ap.add_argument("--n-test-defect", type=int, default=2_500)
    ap.add_argument("--baseline-images", type=int, default=1_000, help="images timed for today's loader")
    ap.add_argument("--method", default="draem", help="the preset whose batch size and resize the loader uses")
    ap.add_argument("--stages", default=",".join(DEFAULT_STAGES), help=f"comma list of {', '.join(STAGES)}")
    ap.add_argument("--keep", action="store_true", help="keep the scenario written into WORK/data")
    ap.add_argument("--stage", help=argparse.SUPPRESS)  # internal: run one stage in this process
    args = ap.parse_args()
    if args.stage:
        import miad.cli  # noqa: F401  (the CLI's OpenMP wait policy, before torch loads: as `miad train` runs)

        args.data = args.data or str(args.work / "data")
        print(json.dumps(run_stage(args.stage, args)))
        return
    t_all = time.perf_counter()
    args.work.mkdir(parents=True, exist_ok=True)
    written = args.data is None
    if written:
        sys.path.insert(0, str(HERE))
        from miad_scenario import write_scenario

        args.data = str(args.work / "data")
        r = write_scenario(Path(args.data), "metal_welding", args.n_train, args.n_test_good, args.n_test_defect,
                           max(1, len(os.sched_getaffinity(0))))
        print(f"scenario: {r['images']} images, {r['bytes'] / 1e9:.2f} GB, wrote {r['written']} in "
              f"{r['seconds']:.0f} s", flush=True)
    total = 0.0
    for name in [s.strip() for s in args.stages.split(",") if s.strip()]:
        if name not in STAGES:
            raise SystemExit(f"error: unknown stage {name!r}; valid: {', '.join(STAGES)}")
        path = args.work / "stages" / f"{name}.json"
        if path.is_file():
            result = json.loads(path.read_text())
            note = " (resumed)"
        else:
            cmd = [sys.executable, __file__, "--stage", name, "--work", str(args.work), "--data", args.data,
                   "--method", args.method, "--baseline-images", str(args.baseline_images)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                raise SystemExit(f"stage {name} failed:\n{proc.stderr[-3000:]}")
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            path.parent.mkdir(exist_ok=True)
            path.write_text(json.dumps(result, indent=1))
            note = ""
        total += result["stage_seconds"]
        print(report(name, result) + note, flush=True)
    print(f"total: {total:.0f} s of stages ({time.perf_counter() - t_all:.0f} s this run)")
    if written and not args.keep:
        from miad_scenario import remove_scenario

        remove_scenario(Path(args.data))
        print(f"removed {args.data} (pass --keep to keep it)")


if __name__ == "__main__":
    main()
