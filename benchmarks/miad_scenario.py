"""Write a MIAD-sized scenario as JPEG for the scale benchmark (not part of `make test`).

The real MIAD has ~10,000 normal training images per scenario at 1920x1440 (arXiv 2211.13968, Sec. 3). This
writes one scenario of the built-in renderer in the MIAD/MVTec layout: OUT/<scenario>/train/good/NNNNN.jpg,
test/good, test/<defect>, ground_truth/<defect>/NNNNN_mask.png. Each image is rendered at the renderer's native
size (256 px, as the built-in data) and up-scaled to 1920x1440 before JPEG encoding (so decoding costs what a
MIAD frame costs; the content is as smooth as an up-scaled 256 px image). Masks are up-scaled with nearest
neighbour and written as PNG.

Free disk space is checked first. Every file is written to a temp name and renamed, so an interrupted run
resumes where it stopped (existing files are kept). `--remove` deletes a tree this script wrote.

    python benchmarks/miad_scenario.py OUT [--n-train 10000] [--n-test-good 2500] [--n-test-defect 2500]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from miad.data.defects import MIAD_DEFECTS
from miad.data.synth import render_example

MARKER = ".miad_scale_scenario"  # names a tree this script wrote: only such a tree is ever removed
NATIVE = 256  # the renderer's native size (the built-in data's)
WIDTH, HEIGHT = 1920, 1440  # MIAD's frame size
JPEG_QUALITY = 95
BYTES_PER_IMAGE = 600_000  # a generous bound (measured ~0.3 MB at quality 95), used for the disk check
CHUNK = 50


def plan(scenario: str, n_train: int, n_good: int, n_defect: int) -> list[tuple[str, str | None, int, str]]:
    """(split stream, defect or None, index, relative image path) for every image."""
    jobs = [("train", None, i, f"{scenario}/train/good/{i:05d}.jpg") for i in range(n_train)]
    jobs += [("test_good", None, i, f"{scenario}/test/good/{i:05d}.jpg") for i in range(n_good)]
    types = MIAD_DEFECTS[scenario]
    jobs += [("test_defect", types[i % len(types)], i, f"{scenario}/test/{types[i % len(types)]}/{i:05d}.jpg")
             for i in range(n_defect)]
    return jobs


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _encode(img: np.ndarray, ext: str, params: list[int]) -> bytes:
    ok, data = cv2.imencode(ext, img, params)
    if not ok:
        raise RuntimeError(f"could not encode a {ext} image")
    return data.tobytes()


def render_chunk(root: str, scenario: str, jobs: list) -> int:
    """Render, up-scale and write the images of `jobs` that do not exist yet; returns how many were written."""
    written = 0
    for stream, defect, index, rel in jobs:
        path = Path(root) / rel
        mask_path = Path(root) / f"{scenario}/ground_truth/{defect}/{index:05d}_mask.png" if defect else None
        if path.exists() and (mask_path is None or mask_path.exists()):
            continue
        ex = render_example(scenario, defect, size=NATIVE, split=stream, index=index)
        big = cv2.resize(ex.image, (WIDTH, HEIGHT), interpolation=cv2.INTER_LINEAR)
        if mask_path is not None:  # the mask first: an image without its mask never exists
            mask_path.parent.mkdir(parents=True, exist_ok=True)
            mask = cv2.resize(ex.mask, (WIDTH, HEIGHT), interpolation=cv2.INTER_NEAREST)
            _write(mask_path, _encode(mask, ".png", [cv2.IMWRITE_PNG_COMPRESSION, 1]))
        path.parent.mkdir(parents=True, exist_ok=True)
        _write(path, _encode(big[:, :, ::-1], ".jpg", [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]))
        written += 1
    return written


def check_disk(out: Path, n_images: int) -> None:
    need = n_images * BYTES_PER_IMAGE
    free = shutil.disk_usage(out if out.exists() else out.parent).free
    if free < need + 2 * 1024**3:  # keep 2 GB for the caches and the benchmark's outputs
        raise SystemExit(f"error: {out}: {n_images} images need about {need / 1e9:.1f} GB and 2 GB spare; only "
                         f"{free / 1e9:.1f} GB free; free space or pass smaller counts")


def write_scenario(out: Path, scenario: str, n_train: int, n_good: int, n_defect: int, workers: int) -> dict:
    """Write (or complete) the tree; returns {images, seconds, bytes, images_per_second}."""
    jobs = plan(scenario, n_train, n_good, n_defect)
    out.mkdir(parents=True, exist_ok=True)
    check_disk(out, sum(1 for *_, rel in jobs if not (out / rel).exists()))
    (out / MARKER).write_text("written by benchmarks/miad_scenario.py\n")
    chunks = [jobs[i : i + CHUNK] for i in range(0, len(jobs), CHUNK)]
    t0, written = time.perf_counter(), 0
    cv2.setNumThreads(1)  # one thread per process (forked children of a threaded OpenCV hang)
    ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        for k, n in enumerate(pool.map(render_chunk, [str(out)] * len(chunks), [scenario] * len(chunks), chunks)):
            written += n
            if (k + 1) % 20 == 0 or k + 1 == len(chunks):
                rate = written / max(time.perf_counter() - t0, 1e-9)
                print(f"  {min((k + 1) * CHUNK, len(jobs))}/{len(jobs)} images ({rate:.1f} written/s)", flush=True)
    seconds = time.perf_counter() - t0
    size = sum(p.stat().st_size for p in out.rglob("*.jpg"))
    return {"images": len(jobs), "written": written, "seconds": seconds, "bytes": size,
            "images_per_second": written / max(seconds, 1e-9)}


def remove_scenario(out: Path) -> None:
    """Delete a tree written by this script (refuses any other folder)."""
    if not (out / MARKER).is_file():
        raise SystemExit(f"error: {out} was not written by benchmarks/miad_scenario.py ({MARKER} missing); "
                         "not removing it")
    shutil.rmtree(out)


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--scenario", default="metal_welding", choices=sorted(MIAD_DEFECTS))
    ap.add_argument("--n-train", type=int, default=10_000)
    ap.add_argument("--n-test-good", type=int, default=2_500)
    ap.add_argument("--n-test-defect", type=int, default=2_500)
    ap.add_argument("--workers", type=int, default=usable_cores())
    ap.add_argument("--remove", action="store_true", help="delete a tree this script wrote, then exit")
    args = ap.parse_args()
    if args.remove:
        return remove_scenario(args.out)
    if min(args.n_train, args.n_test_good, args.n_test_defect) < 0 or args.n_train < 1:
        raise SystemExit("error: counts must be >= 0 (--n-train >= 1)")
    r = write_scenario(args.out, args.scenario, args.n_train, args.n_test_good, args.n_test_defect, args.workers)
    print(f"{r['images']} images in {args.out} ({r['bytes'] / 1e9:.2f} GB of JPEG, "
          f"{r['bytes'] / max(r['images'], 1) / 1e3:.0f} KB each); wrote {r['written']} in {r['seconds']:.0f} s "
          f"({r['images_per_second']:.1f} images/s)")


if __name__ == "__main__":
    main()
