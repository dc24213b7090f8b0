"""GPU smoke run of every method's `paper` preset at full resolution on the built-in data.

For each method: a few training steps through the shared loop (one epoch over `--images` normal images; AMP as
the preset says) and a test pass, printing training and inference images/s, peak GPU memory and whether AMP was
used; beside them the data pipeline's images/s for the same preset (decoding into the decoded-image cache in
epoch 1, then uint8 batches from the cache normalised on the device, as training feeds the model), so a GPU run
shows at once which one is the bottleneck. Pretrained weights are used when cached and replaced by random
weights otherwise (throughput and memory do not depend on them; the line says which). Runs on CPU too
(`--device cpu --images 4`) to check the script.

    python benchmarks/gpu_smoke.py [--device cuda] [--images 64] [--methods all|a,b]
"""

from __future__ import annotations

import argparse
import time

import torch

from miad.errors import WeightsError
from miad.registry import create, get_method, list_methods


def _detector(name: str):
    """The paper preset, one epoch (a few steps), ImageNet weights when cached, else random."""
    overrides = {"max_train_images": None, "holdout_fraction": 0.0}
    if get_method(name).PRESETS["paper"].epochs:
        overrides["epochs"] = 1
    if not hasattr(get_method(name).PRESETS["paper"], "weights"):
        return create(name, "paper", **overrides), "none (no backbone)"
    try:
        return create(name, "paper", **overrides), "imagenet"
    except WeightsError:
        return create(name, "paper", weights="random", **overrides), "random"


def _images(det, n: int, data: str) -> tuple[torch.Tensor, list]:
    from miad.data.index import load_samples, split_samples

    samples = split_samples(load_samples(data, "all"), "train")
    step = max(1, len(samples) // n)
    chosen = samples[::step][:n]
    ds = det.dataset(chosen)
    return torch.stack([ds[i]["image"] for i in range(len(ds))]), chosen


def data_rate(det, chosen: list, device: torch.device) -> tuple[float, float]:
    """Images/s of the training feed for this preset: (epoch 1, decoding into the cache; epoch 2, from it), each
    batch delivered as uint8 and normalised on `device` (synchronised), no model."""
    from miad.data.feed import ImageFeed

    ds, bs = det.dataset(chosen), det.config.batch_size
    batches = [torch.arange(i, min(i + bs, len(chosen))) for i in range(0, len(chosen), bs)]
    rates = []
    t0 = time.perf_counter()
    feed = ImageFeed(ds, list(range(len(chosen))), cache=True, workers="auto", device=device, batch_size=bs)
    for _ in range(2):
        for pixels in feed.batches(batches):
            feed.to_input(pixels)
        _sync(device)
        rates.append(len(chosen) / (time.perf_counter() - t0))
        t0 = time.perf_counter()
    return rates[0], rates[1]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def smoke(name: str, device: str, n: int, data: str) -> str:
    det, weights = _detector(name)
    images, chosen = _images(det, n, data)
    det.to(device)
    dev = det.device
    data_e1, data_e2 = data_rate(det, chosen, dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    det.fit(images, device=device, progress=False)
    _sync(dev)
    train_ips = n / (time.perf_counter() - t0)
    batch = images[: det.config.batch_size].to(dev)
    det.predict(batch)  # warm-up
    _sync(dev)
    t0 = time.perf_counter()
    reps = 3
    for _ in range(reps):
        det.predict(batch)
    _sync(dev)
    infer_ips = reps * len(batch) / (time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() / 2**30 if dev.type == "cuda" else float("nan")
    amp = bool(det.config.amp and dev.type == "cuda" and det.config.epochs)
    return (f"{name:22s} size {det.config.image_size:4d}  batch {det.config.batch_size:3d}  "
            f"train {train_ips:8.1f} img/s  infer {infer_ips:8.1f} img/s  peak {peak:6.2f} GiB  "
            f"amp {str(amp):5s}  data {data_e1:7.1f} img/s decoding, {data_e2:8.1f} cached  weights {weights}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--images", type=int, default=64, help="training images per method")
    ap.add_argument("--methods", default="all")
    ap.add_argument("--data", default="builtin")
    args = ap.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here: run on a GPU machine, or pass --device cpu --images 4 to check")
    names = list_methods() if args.methods == "all" else args.methods.split(",")
    print(f"torch {torch.__version__}, device {args.device}"
          + (f" ({torch.cuda.get_device_name()})" if args.device == "cuda" else ""))
    for name in names:
        get_method(name)
        print(smoke(name, args.device, args.images, args.data), flush=True)


if __name__ == "__main__":
    main()
