"""PatchCore detector: streams training features into a bounded coreset, then scores by nearest bank vector.

Fitting never holds all patch features: each batch's vectors go straight into `StreamingCoreset`, which keeps one
chunk of float32 vectors plus the pre-allocated bank. Images are visited in a seeded random order and the stream
shuffles each batch's vectors, so that chunks mix images, positions (and categories, in unified training).
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from miad import distributed as dist
from miad.detector import Detector
from miad.errors import ConfigError, DataError
from miad.methods.patchcore.coreset import CoresetPlan, StreamingCoreset, plan_coreset, random_projection
from miad.methods.patchcore.model import BANK_DTYPES, PRESETS, PatchCoreConfig, PatchCoreModel
from miad.registry import register


@register
class PatchCore(Detector):
    name = "patchcore"
    Config = PatchCoreConfig
    PRESETS = PRESETS
    SMOKE = {"image_size": 32, "weights": "random", "coreset_ratio": 0.25, "num_neighbors": 3}

    config: PatchCoreConfig
    model: PatchCoreModel
    fit_stats: dict[str, float] | None = None  # sizes and seconds of the last fit (features vs coreset selection)

    def build(self, pretrained: bool) -> PatchCoreModel:
        return PatchCoreModel(self.config, pretrained)

    def _fit(
        self, train: Dataset, val: Dataset | None, *, progress: bool = True, num_workers: int | str = 0, **_: Any
    ) -> None:
        n_images = len(train)  # type: ignore[arg-type]
        if n_images == 0:
            raise DataError("no training images left after the hold-out split; add normal training images")
        self.model.eval()
        stream: StreamingCoreset | None = None
        features_s = coreset_s = 0.0
        with torch.no_grad():
            batches = self._feature_batches(train, num_workers)
            n_batches = -(-n_images // self.config.batch_size)
            bar = tqdm(batches, total=n_batches, disable=not progress, leave=False, desc=f"{self.name} fit")
            for feats, seconds in bar:
                t1 = time.perf_counter()
                if stream is None:
                    stream = self._stream(n_images, feats.shape[1] * feats.shape[2], feats.shape[1:3])
                stream.add(feats.flatten(0, 2))
                features_s, coreset_s = features_s + seconds, coreset_s + time.perf_counter() - t1
        assert stream is not None
        self.model.set_bank(stream.finish())
        self.fit_stats = {
            "images": n_images,
            "patch_vectors": stream.plan.total,
            "bank_size": stream.plan.bank_size,
            "chunks": len(stream.plan.counts),
            "coreset_mode": self.coreset_mode(),
            "features_seconds": features_s,
            "coreset_seconds": coreset_s,
        }

    def _feature_batches(self, train: Dataset, num_workers: int | str):
        """Yield (patch features [B,h,w,D] of one global batch, seconds spent embedding), in a seeded order.

        Under torchrun every rank embeds only its slice of each global batch and the slices are gathered in rank
        order, so every rank streams the same vectors as a single process would and builds the same bank.
        """
        n, bs = len(train), self.config.batch_size  # type: ignore[arg-type]
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.config.seed))
        shards = [dist.shard_batch(order[i : i + bs]).tolist() for i in range(0, n, bs)]
        from miad.data.feed import loader_options, resolve_workers

        loader = iter(DataLoader(train, batch_sampler=[s for s in shards if s],
                                 **loader_options(resolve_workers(num_workers, n), self.device)))
        grid = None
        for shard in shards:
            t0 = time.perf_counter()
            if shard:
                local = self.model.embed(next(loader)["image"].to(self.device, non_blocking=True))  # [b,h,w,D]
                grid = local.shape[1:]
            else:  # this rank's slice of a short last batch is empty
                grid = (
                    grid
                    or self.model.embed(
                        torch.zeros(1, 3, self.config.image_size, self.config.image_size, device=self.device)
                    ).shape[1:]
                )
                local = torch.zeros((0, *grid), device=self.device)
            yield dist.all_gather_variable(local), time.perf_counter() - t0

    def _stream(self, n_images: int, per_image: int, grid: tuple[int, ...]) -> StreamingCoreset:
        plan = self.plan(n_images, per_image, tuple(grid))
        cfg = self.config
        projection = None
        if cfg.projection_dim is not None and cfg.projection_dim < self.model.dim:
            projection = random_projection(self.model.dim, cfg.projection_dim, cfg.seed)
        return StreamingCoreset(
            plan,
            self.model.dim,
            projection=projection,
            bank_dtype=BANK_DTYPES[cfg.bank_dtype],
            device=self.device,
            seed=cfg.seed,
        )

    def coreset_mode(self) -> str:
        """config.coreset_mode with "auto" resolved: one global greedy on CUDA, chunks elsewhere."""
        mode = self.config.coreset_mode
        if mode == "auto":
            return "global" if torch.device(self.device).type == "cuda" else "chunked"
        return mode

    def run_notes(self) -> dict[str, Any]:
        return {"coreset_mode": self.fit_stats["coreset_mode"]} if self.fit_stats else {}

    def plan(self, n_images: int, per_image: int, grid: tuple[int, ...] = ()) -> CoresetPlan:
        """The coreset plan for n_images x per_image patch vectors; bad sizes raise clear errors."""
        cfg = self.config
        where = f" (a {'x'.join(map(str, grid))} grid at image_size {cfg.image_size})" if grid else ""
        if cfg.max_bank_size is not None and cfg.max_bank_size < per_image:
            raise ConfigError(
                f"config max_bank_size={cfg.max_bank_size} is smaller than one image's {per_image} patch "
                f"vectors{where}; set max_bank_size >= {per_image} or null"
            )
        total = n_images * per_image
        chunk = total if self.coreset_mode() == "global" else cfg.coreset_chunk_size
        plan = plan_coreset(total, cfg.coreset_ratio, chunk, cfg.max_bank_size)
        if plan.bank_size < cfg.num_neighbors:
            raise DataError(
                f"the training set is too small: {n_images} images x {per_image} patch vectors x coreset_ratio "
                f"{cfg.coreset_ratio} give a memory bank of {plan.bank_size} vectors, fewer than num_neighbors="
                f"{cfg.num_neighbors}; add training images, raise coreset_ratio, or lower num_neighbors"
            )
        return plan

    def load_model_state(self, state_dict: dict[str, torch.Tensor]) -> None:
        """The bank's row count depends on the training data: size the buffers from the checkpoint first."""
        bank = state_dict.get("memory_bank")
        if bank is None or bank.ndim != 2 or bank.shape[1] != self.model.dim:
            got = None if bank is None else tuple(bank.shape)
            raise RuntimeError(f"memory_bank of shape {got}, expected [rows, {self.model.dim}]")
        self.model.resize_bank(bank.shape[0])
        super().load_model_state(state_dict)
