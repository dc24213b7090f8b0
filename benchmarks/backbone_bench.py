"""Backbone feature extraction: channels-last (what `miad.backbones.FeatureExtractor` does) against the plain
contiguous layout, measured in the same run, with a check that both give the same features.

    python benchmarks/backbone_bench.py [--batch 8] [--repeats 3] [--threads 2] [--device cpu]

Prints ms per image for each backbone of the presets (random weights: speed does not depend on them) and the
speed-up. Wall times depend on the machine's load; run it on an idle machine.
"""

from __future__ import annotations

import argparse
import time

import torch

from miad.backbones import FeatureExtractor

# (backbone, levels, image size) as the presets use them
CASES = (
    ("wide_resnet50_2", (2, 3), 224),  # PatchCore paper
    ("wide_resnet50_2", (1, 2, 3), 256),  # RD / FastFlow paper
    ("tf_efficientnet_b4", (1, 2, 3, 4), 224),  # UniAD paper
    ("efficientnet_lite0", (1, 2, 3), 128),  # quick presets
)


def _plain_forward(fe: FeatureExtractor, images: torch.Tensor) -> list[torch.Tensor]:
    """The baseline: the same network with contiguous weights and input (the layout before channels-last)."""
    return list(fe.body(images))


def _time(fn, images: torch.Tensor, repeats: int, device: torch.device) -> tuple[float, list[torch.Tensor]]:
    with torch.no_grad():
        out = fn(images)  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            out = fn(images)
        if device.type == "cuda":
            torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats / len(images) * 1000, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch}, device {device}")
    for name, levels, size in CASES:
        fe = FeatureExtractor(name, levels, "random").to(device)
        images = torch.rand(args.batch, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
        fast_ms, fast = _time(fe, images, args.repeats, device)
        fe.body.to(memory_format=torch.contiguous_format)
        plain_ms, plain = _time(lambda x, fe=fe: _plain_forward(fe, x), images, args.repeats, device)
        diff = max(float((a - b).abs().max() / b.abs().max()) for a, b in zip(fast, plain))
        print(f"{name:20s} levels {levels} {size} px: channels-last {fast_ms:7.1f} ms/img, contiguous "
              f"{plain_ms:7.1f} ms/img, x{plain_ms / fast_ms:.2f}; max relative feature difference {diff:.1e}")


if __name__ == "__main__":
    main()
