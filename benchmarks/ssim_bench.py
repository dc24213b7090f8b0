"""SSIM map: the deviation form in `miad.ops.ssim_map` against the moment form E[x^2] - E[x]^2 (one grouped
convolution, the form before), measured in the same run: milliseconds and the error against a float64 reference.

    python benchmarks/ssim_bench.py [--repeats 5] [--threads 2]

Cases are what the presets run: U-Net AE / DRAEM quick training steps (64 px, batch 8, forward + backward) and
the U-Net AE paper map (256 px, batch 16, forward). Wall times depend on the machine's load.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from miad import ops

CASES = (("quick train step 8x3x64x64", (8, 3, 64, 64), True), ("paper map 16x3x256x256", (16, 3, 256, 256), False))


def moment_form(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The baseline: the moment form (one grouped convolution, E[x^2] - E[x]^2), as the training losses use."""
    return ops.ssim_map(x, y, stable=False)


def _images(shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Smooth images with flat regions (where the moment form cancels) and a close reconstruction."""
    gen = torch.Generator().manual_seed(0)
    coarse = torch.rand(shape[0], shape[1], 8, 8, generator=gen)
    x = F.interpolate(coarse, size=shape[-2:], mode="nearest") * 0.8 + 0.1
    y = (x + 0.01 * torch.randn(shape, generator=gen)).clamp(0, 1)
    return x, y


def _ms(fn, x: torch.Tensor, y: torch.Tensor, backward: bool, repeats: int) -> float:
    x = x.clone().requires_grad_(backward)
    times = []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        s = fn(x, y)
        if backward:
            s.mean().backward()
        times.append(time.perf_counter() - t0)
    return 1000 * min(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{'case':28s} {'moment ms':>10s} {'deviation ms':>13s} {'ratio':>6s} {'moment err':>11s} {'dev err':>9s}")
    for name, shape, backward in CASES:
        x, y = _images(shape)
        ref = moment_form(x.double(), y.double())  # float64: no cancellation at this precision
        err_m = float((moment_form(x, y).double() - ref).abs().max())
        err_d = float((ops.ssim_map(x, y).double() - ref).abs().max())
        t_m = _ms(moment_form, x, y, backward, args.repeats)
        t_d = _ms(ops.ssim_map, x, y, backward, args.repeats)
        print(f"{name:28s} {t_m:10.1f} {t_d:13.1f} {t_d / t_m:6.2f} {err_m:11.1e} {err_d:9.1e}")


if __name__ == "__main__":
    main()
