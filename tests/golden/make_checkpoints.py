"""Writes tests/golden/checkpoints/<method>.pt (a smoke-config checkpoint per method) and <method>.expected.pt
(a fixed input and the scores and maps the checkpoint gives on it), guarding refactors of the checkpoint state
and the scoring path: tests/golden/test_checkpoints.py loads each and must score identically.

Run it only to accept an intended change of scores or checkpoint layout (it overwrites the files):
    PYTHONPATH=src python tests/golden/make_checkpoints.py; then review and commit the new files.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch

HERE = Path(__file__).parent
OUT = HERE / "checkpoints"
METHODS = ("draem", "fastflow", "patchcore", "reverse_distillation", "unet_ae", "uniad")
# The smoke configs' EfficientNet-Lite0 backbone (random weights) would make each file 12 MB: timm's 82k-parameter
# test_efficientnet (random weights, the same code path) keeps them under a few hundred KB.
TINY = {"backbone": "test_efficientnet"}
SHRINK: dict[str, dict] = {"fastflow": TINY, "patchcore": TINY, "reverse_distillation": TINY, "uniad": TINY,
                             "draem": {"recon_base_width": 2, "disc_base_width": 2}}


def fixed_input(size: int) -> torch.Tensor:
    """Two deterministic images in the normalised range, stored with the expected outputs."""
    gen = torch.Generator().manual_seed(20)
    return torch.rand(2, 3, size, size, generator=gen) * 4 - 2


def main() -> None:
    sys.path.insert(0, str(HERE.parent))
    from conftest import make_mvtec_tree

    import miad
    from miad.data.index import index_dataset

    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        train = [s for s in index_dataset(make_mvtec_tree(Path(tmp), n_train=8)) if s.split == "train"]
        for name in METHODS:
            cls = miad.registry.get_method(name)
            det = miad.create(name, "quick", pretrained=False, **{**cls.SMOKE, **SHRINK.get(name, {})})
            det.fit(train, device="cpu", progress=False)
            det.save(str(OUT / f"{name}.pt"))
            images = fixed_input(det.config.image_size)
            pred = miad.load(OUT / f"{name}.pt").predict(images)
            torch.save({"images": images, "image_score": pred.image_score, "anomaly_map": pred.anomaly_map,
                        "threshold": det.threshold}, OUT / f"{name}.expected.pt")
            print(name, (OUT / f"{name}.pt").stat().st_size // 1024, "KiB")


if __name__ == "__main__":
    main()
