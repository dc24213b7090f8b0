"""Run a small benchmark in a child process (for the kill/resume test): `python bench_child.py DATA OUT [--slow]`.

--slow makes ref_ae's loss calls on "widget" sleep, so that the parent can kill that run between epochs.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))  # as tests/conftest.py: same threads, same numbers

import reference_methods  # noqa: E402  (registers ref_mean and ref_ae)

from miad.bench import run_benchmark  # noqa: E402

METHODS = ["ref_ae", "ref_mean"]
OVERRIDES = {"ref_ae.epochs": 6}


def main(data: str, out: str, slow: bool) -> None:
    if slow:
        loss = reference_methods.RefAEDetector.loss

        def slow_loss(self, images):
            if self.trained_on == ["widget"]:  # the run the parent kills: ~0.6 s per epoch to hit one
                time.sleep(0.2)
            return loss(self, images)

        reference_methods.RefAEDetector.loss = slow_loss
    run_benchmark(data, methods=METHODS, out=out, overrides=OVERRIDES, progress=False)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], "--slow" in sys.argv[3:])
