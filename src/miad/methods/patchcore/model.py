"""PatchCore (Roth et al., "Towards Total Recall in Industrial Anomaly Detection", CVPR 2022, arXiv 2106.08265).

Idea: locally aggregated mid-level features of normal training images form a memory bank, thinned by greedy
k-centre ("coreset") selection; a test patch's score is its distance to the nearest bank vector, and the image
score is the largest patch score, re-weighted by how isolated that nearest bank vector is.

The `paper` preset follows MIAD appendix A.2.2 and, where it is silent, anomalib v0.3.7 (the release MIAD ran;
anomalib/models/patchcore/{config.yaml,torch_model.py,anomaly_map.py} at tag v0.3.7): 224x224 resize without
crop (OpenCV bilinear), WideResNet50-2 (timm racm weights) layer2+layer3, 3x3 average pooling that does not count
the zero padding, layer3 up-sampled to layer2's grid with nearest neighbour and concatenated (1536 dims), one
global greedy coreset of 10 %, 9 neighbours for re-weighting, nearest-neighbour map up-sampling, Gaussian sigma 4.
Deviations: coreset selection runs on a random 128-dim projection (the official code's choice; anomalib uses a
sparse random projection); on CPU (`coreset_mode=auto`) in chunks of `coreset_chunk_size` patch vectors (exact
greedy for smaller sets; see coreset.py), since one global greedy over 2,000 images takes hours there;
`max_bank_size` caps the bank; `bank_dtype` may halve its memory. `quick` keeps anomalib >= 1.0's embedding
(bilinear up-sampling, padding counted) and chunked selection.
`embed_dim` set to an integer switches to the official code's aggregation (each 3x3 patch vector adaptively
average-pooled to `embed_dim` per layer, then over the stacked layers). The search is exact (knn.py). The blur
pads as scipy's 'reflect' (miad.ops); anomalib's pads as torch's 'reflect', so maps differ near the borders only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from miad import ops
from miad.backbones import FeatureExtractor
from miad.config import BaseConfig, _check
from miad.methods.patchcore.knn import k_nearest, levelwise_pays, nearest_neighbor, nearest_neighbor_levels
from miad.sources import (
    ANOMALIB,
    ANOMALIB_NORMALIZE,
    ANOMALIB_RESIZE,
    HOLDOUT,
    PATCHCORE,
    SEED,
    THRESHOLD,
    cited_preset,
)

BANK_DTYPES = {"float32": torch.float32, "float16": torch.float16}
CORESET_MODES = ("auto", "global", "chunked")


@dataclass(frozen=True)
class PatchCoreConfig(BaseConfig):
    # --- input (A.2.2: 224x224 resize, no crop, no augmentation)
    image_size: int = 224
    # --- features
    backbone: str = "wide_resnet50_2"  # A.2.2: WideResNet50
    layers: tuple[int, ...] = (2, 3)  # anomalib v0.3.7 patchcore/config.yaml: layer2 + layer3
    # "imagenet": WRN50 = timm wide_resnet50_2.racm_in1k (timm 0.5.4 default, as MIAD ran; backbones.py) | "torchvision"
    # (WRN50 IMAGENET1K_V1, the earlier default) | "random" | path to a state dict
    weights: str = "imagenet"
    patch_size: int = 3  # neighbourhood aggregated around each location (anomalib AvgPool2d(3, 1, 1))
    # anomalib v0.3.7 torch_model.py: AvgPool2d(3, 1, 1, count_include_pad=False) (paper); anomalib >= 1.0 counts
    # the padding. Class defaults keep the earlier behaviour, so older checkpoints load unchanged.
    pool_count_include_pad: bool = True
    # levels[1:] resized to levels[0]'s grid, in the embedding AND the level-wise search (knn.py): anomalib v0.3.7
    # generate_embedding uses F.interpolate(mode="nearest") (paper); anomalib >= 1.0 "bilinear"
    embed_upsample: str = "bilinear"
    embed_dim: int | None = None  # None: anomalib concatenation (sum of channels); int: official adaptive pooling
    # --- memory bank
    coreset_ratio: float = 0.1  # anomalib default: 10 % of the training patch vectors
    projection_dim: int | None = 128  # random projection for coreset selection (official code); None = none
    # "global": one greedy over all patch vectors (anomalib v0.3.7 KCenterGreedy; minutes on a GPU, hours on CPU at
    # 2,000 images) | "chunked": greedy per chunk of coreset_chunk_size (coreset.py) | "auto": global on CUDA,
    # chunked elsewhere. The mode used is in fit_stats and the benchmark's result.json.
    coreset_mode: str = "chunked"
    coreset_chunk_size: int = 10_000  # patch vectors per greedy chunk; sets this small or smaller: exact greedy
    max_bank_size: int | None = None  # absolute cap on bank vectors (None: ratio alone decides)
    bank_dtype: str = "float32"  # "float32" | "float16" (half the memory; search widens chunks to float32)
    # --- scoring
    num_neighbors: int = 9  # anomalib default: b in the paper's re-weighting; 1 = plain max patch distance
    knn_block_elements: int | None = None  # distances held at once in the search; None: per device (knn.py)
    map_upsample: str = "nearest"  # anomalib F.interpolate default; the official code uses "bilinear"
    blur_sigma: float = 4.0  # anomalib / official: Gaussian sigma 4 on the up-sampled map

    def validate(self) -> None:
        super().validate()
        _check(self.patch_size >= 1 and self.patch_size % 2 == 1, "patch_size", self.patch_size, "an odd int >= 1")
        _check(self.embed_dim is None or self.embed_dim >= 1, "embed_dim", self.embed_dim, "null or an int >= 1")
        _check(0.0 < self.coreset_ratio <= 1.0, "coreset_ratio", self.coreset_ratio, "in (0, 1], e.g. 0.1")
        _check(
            self.projection_dim is None or self.projection_dim >= 1,
            "projection_dim",
            self.projection_dim,
            "null or an int >= 1 (128 as the official code)",
        )
        _check(self.coreset_chunk_size >= 2, "coreset_chunk_size", self.coreset_chunk_size, "an int >= 2")
        _check(self.num_neighbors >= 1, "num_neighbors", self.num_neighbors, "an int >= 1 (9 as anomalib)")
        _check(
            self.max_bank_size is None or self.max_bank_size >= self.num_neighbors,
            "max_bank_size",
            self.max_bank_size,
            f"null or an int >= num_neighbors ({self.num_neighbors})",
        )
        _check(self.bank_dtype in BANK_DTYPES, "bank_dtype", self.bank_dtype, f"one of {list(BANK_DTYPES)}")
        _check(
            self.knn_block_elements is None or self.knn_block_elements >= 1,
            "knn_block_elements",
            self.knn_block_elements,
            "null or an int >= 1",
        )
        _check(
            self.map_upsample in ("nearest", "bilinear"), "map_upsample", self.map_upsample, "'nearest' or 'bilinear'"
        )
        _check(
            self.embed_upsample in ("nearest", "bilinear"), "embed_upsample", self.embed_upsample,
            "'nearest' or 'bilinear'",
        )
        _check(self.coreset_mode in CORESET_MODES, "coreset_mode", self.coreset_mode, f"one of {list(CORESET_MODES)}")
        _check(self.blur_sigma >= 0, "blur_sigma", self.blur_sigma, ">= 0 (0 = no blur)")
        _check(len(self.layers) >= 1, "layers", self.layers, "at least one feature level")


_PC = f"{ANOMALIB} anomalib/models/patchcore"
_NO_TRAINING = f"miad: unused, PatchCore has no gradient training ({_PC}/config.yaml: max_epochs 1, one pass)"
# The paper preset: every field with its source (A.2.2, else anomalib v0.3.7's defaults as A.2.2 says).
PAPER, PAPER_SOURCES = cited_preset(PatchCoreConfig, {
    "image_size": (224, "MIAD A.2.2: training and testing images zoomed to 224x224, no data augmentation"),
    "normalize": ("imagenet", ANOMALIB_NORMALIZE),
    "resize": ("opencv", ANOMALIB_RESIZE),
    "max_train_images": (2000, "MIAD A.2.2: 2,000 randomly sampled training images (GPU memory); "
                         "--set max_train_images=null lifts it"),
    "holdout_fraction": (0.1, HOLDOUT),
    "threshold_quantile": (0.99, THRESHOLD),
    "epochs": (0, f"{_PC}/config.yaml: max_epochs 1, a single feature-extraction pass (no gradient steps)"),
    "batch_size": (32, "MIAD A.2.2: batch size 32 on 1 GPU"),
    "optimizer": ("adam", _NO_TRAINING),
    "lr": (1e-3, _NO_TRAINING),
    "weight_decay": (0.0, _NO_TRAINING),
    "betas": ((0.9, 0.999), _NO_TRAINING),
    "lr_milestones": ((), _NO_TRAINING),
    "lr_gamma": (0.1, _NO_TRAINING),
    "grad_clip_norm": (None, _NO_TRAINING),
    "amp": (True, _NO_TRAINING),
    "cache_features": (False, _NO_TRAINING),
    "seed": (0, SEED),
    "backbone": ("wide_resnet50_2", "MIAD A.2.2: WideResNet50"),
    "layers": ((2, 3), f"{_PC}/config.yaml: model.layers layer2, layer3"),
    "weights": ("imagenet", f"{ANOMALIB} requirements/base.txt: timm==0.5.4, whose wide_resnet50_2 loads the racm "
                "weights (timm wide_resnet50_2.racm_in1k; miad.backbones)"),
    "patch_size": (3, f"{_PC}/torch_model.py: feature_pooler AvgPool2d(3, 1, 1)"),
    "pool_count_include_pad": (False, f"{_PC}/torch_model.py: AvgPool2d(..., count_include_pad=False)"),
    "embed_upsample": ("nearest", f"{_PC}/torch_model.py: generate_embedding, F.interpolate(mode='nearest')"),
    "embed_dim": (None, f"{_PC}/torch_model.py: generate_embedding concatenates the layers (1536 dims)"),
    "coreset_ratio": (0.1, f"{_PC}/config.yaml: coreset_sampling_ratio 0.1"),
    "projection_dim": (128, f"miad: coreset selection on a random 128-dim projection, as {PATCHCORE} "
                       "src/patchcore/sampler.py (anomalib: SparseRandomProjection(eps=0.9) in "
                       "anomalib/models/components/sampling/k_center_greedy.py)"),
    "coreset_mode": ("auto", f"{ANOMALIB} anomalib/models/components/sampling/k_center_greedy.py: one global "
                     "greedy (on CUDA); miad: chunks of coreset_chunk_size on CPU, where one global greedy over "
                     "2,000 images takes hours"),
    "coreset_chunk_size": (10_000, "miad: patch vectors per greedy chunk on CPU (coreset_mode auto)"),
    "max_bank_size": (None, f"{_PC}/torch_model.py: subsample_embedding, the ratio alone sets the bank size"),
    "bank_dtype": ("float32", f"{_PC}/config.yaml: trainer.precision 32"),
    "num_neighbors": (9, f"{_PC}/config.yaml: num_neighbors 9 (the paper's re-weighting)"),
    "knn_block_elements": (None, "miad: speed only (distances held at once in the exact search, knn.py)"),
    "map_upsample": ("nearest", f"{_PC}/anomaly_map.py: F.interpolate default mode (nearest)"),
    "blur_sigma": (4.0, f"{_PC}/anomaly_map.py: GaussianBlur2d sigma 4"),
})
PRESETS = {
    "paper": PAPER,
    # CPU-sized: EfficientNet-Lite0 (real ImageNet weights) at 160 px, stride-4 + stride-8 stages (24 + 40 = 64
    # dims on a 40x40 grid). On the built-in surface scenarios these finer stages beat the stride-8 + stride-16
    # pair by 3-12 image-AUROC points (e.g. metal_welding 0.87 vs 0.75) for about 1.5x the CPU time.
    "quick": PatchCoreConfig(
        image_size=160,
        backbone="efficientnet_lite0",
        layers=(1, 2),
        batch_size=32,
        coreset_ratio=0.1,
        num_neighbors=9,
        pool_count_include_pad=True,  # anomalib >= 1.0's embedding, as before
        embed_upsample="bilinear",
        coreset_mode="chunked",
    ),
}


class PatchCoreModel(nn.Module):
    """Frozen feature extractor + memory bank; forward(images) -> (image_score [B], anomaly_map [B,S,S])."""

    def __init__(self, config: PatchCoreConfig, pretrained: bool = True) -> None:
        super().__init__()
        self.config = config
        self.extractor = FeatureExtractor(config.backbone, config.layers, config.weights if pretrained else "random")
        self.dim = config.embed_dim or sum(self.extractor.channels)
        self.register_buffer("memory_bank", torch.empty(0, self.dim, dtype=BANK_DTYPES[config.bank_dtype]))
        self.register_buffer("bank_sq_norm", torch.empty(0))  # ||b||^2 of each bank row, float32

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """[B,3,S,S] -> locally aggregated patch features [B,h,w,D] on the first level's grid (float32)."""
        return self._features(self._levels(images))

    def _features(self, levels: list[torch.Tensor]) -> torch.Tensor:
        """[B,h,w,D] patch features of the backbone levels: anomalib's concatenation or the official pooling."""
        return self._concat(levels) if self.config.embed_dim is None else self._official_embed(levels)

    def _official_embed(self, levels: list[torch.Tensor]) -> torch.Tensor:
        """Official code: unfold 3x3 -> adaptive pool to embed_dim per layer -> adaptive pool over the layers.

        Pooling over channels and bilinear resizing over space are linear on separate axes, so pooling first (on
        the coarse grid) gives the official result with 9x less up-sampling work.
        """
        grid = levels[0].shape[-2:]
        per_layer = [
            ops.upsample(self._pool_channels(ops.unfold_patches(f, self.config.patch_size)), grid) for f in levels
        ]  # each [B,E,h,w]
        stacked = torch.stack(per_layer, dim=1).permute(0, 3, 4, 1, 2)  # [B,h,w,L,E]
        b, h, w, n_layers, e = stacked.shape
        merged = F.adaptive_avg_pool1d(stacked.reshape(-1, 1, n_layers * e), self.config.embed_dim)
        return merged.view(b, h, w, -1)

    def _levels(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Backbone levels [B,C_l,H_l,W_l]; anomalib mode: each p x p average-pooled (zero padding, stride 1)."""
        levels = [f.float() for f in self.extractor(images)]  # the extractor runs channels-last, returns contiguous
        if self.config.embed_dim is not None:
            return levels
        p, pad = self.config.patch_size, self.config.pool_count_include_pad
        return [ops.mean_filter(f.flatten(0, 1), p, pad).view_as(f) for f in levels]

    def _concat(self, levels: list[torch.Tensor]) -> torch.Tensor:
        """anomalib's embedding: levels[1:] up-sampled (embed_upsample) to levels[0]'s grid, channels concatenated."""
        return concat_levels(levels, self.config.embed_upsample)

    def _pool_channels(self, x: torch.Tensor) -> torch.Tensor:
        """[B,C',H,W] -> [B,E,H,W]: 1-D adaptive average pooling of each location's vector (official code)."""
        b, c, h, w = x.shape
        flat = x.permute(0, 2, 3, 1).reshape(-1, 1, c)
        return F.adaptive_avg_pool1d(flat, self.config.embed_dim).view(b, h, w, -1).permute(0, 3, 1, 2)

    def set_bank(self, bank: torch.Tensor) -> None:
        self.memory_bank = bank.to(BANK_DTYPES[self.config.bank_dtype])
        self.bank_sq_norm = self.memory_bank.float().pow(2).sum(1)

    def resize_bank(self, rows: int) -> None:
        """Empty buffers of the right size, so that load_state_dict can fill a fitted bank."""
        self.memory_bank = self.memory_bank.new_empty(rows, self.dim)
        self.bank_sq_norm = self.bank_sq_norm.new_empty(rows)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        levels = self._levels(images)
        feats = self._features(levels)  # [B,h,w,D]
        b, h, w, d = feats.shape
        flat = feats.reshape(b * h * w, d)
        if cfg.embed_dim is None and levelwise_pays(levels):  # same search, fewer multiply-adds (knn.py)
            query_sq = flat.pow(2).sum(1).view(b, h * w)
            _, index = nearest_neighbor_levels(
                levels, self.memory_bank, self.bank_sq_norm, query_sq, cfg.knn_block_elements, cfg.embed_upsample
            )
        else:
            _, index = nearest_neighbor(flat, self.memory_bank, self.bank_sq_norm, cfg.knn_block_elements)
        sq = self.exact_sq_distance(flat, index)  # the search picks the row; its product-form distance is too coarse
        scores = sq.sqrt().view(b, h * w)  # Euclidean patch scores, as anomalib
        image_score = self.reweighted_max(scores, index.view(b, h * w), flat.view(b, h * w, d))
        return image_score, self.anomaly_map(scores.view(b, h, w), images.shape[-1])

    def exact_sq_distance(self, flat: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """||q - b||^2 to the nearest bank row found by the search [M]. The search's product form ||q||^2 - 2 q.b +
        ||b||^2 cancels near 0 and the square root magnifies that (a training patch scored 2 % of the map's maximum
        instead of 0, and differently in torch and ONNX); the difference of the vectors does not cancel."""
        nearest = self.memory_bank.index_select(0, index).to(flat.dtype)  # [M,D]
        return (flat - nearest).pow(2).sum(1)

    def reweighted_max(self, scores: torch.Tensor, index: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        """Paper eq. 7 as anomalib: s = (1 - softmax(||m_test,* - m||, m in N_b(m*))[m*]) * s*."""
        worst = scores.argmax(dim=1, keepdim=True)  # [B,1] the patch m_test,* with the largest score
        s_star = scores.gather(1, worst).squeeze(1)  # [B]
        if self.config.num_neighbors == 1:
            return s_star
        b, _, d = feats.shape
        f_star = feats.gather(1, worst.unsqueeze(-1).expand(b, 1, d)).squeeze(1)  # [B,D]
        m_star = self.memory_bank.index_select(0, index.gather(1, worst).squeeze(1)).to(f_star.dtype)  # [B,D]
        k = self.config.num_neighbors
        _, support = k_nearest(m_star, self.memory_bank, self.bank_sq_norm, k, self.config.knn_block_elements)
        neighbours = self.memory_bank.index_select(0, support.flatten()).view(b, k, d).to(f_star.dtype)
        dist = (f_star.unsqueeze(1) - neighbours).pow(2).sum(-1).sqrt()  # [B,k]; column 0 is m* itself
        weight = 1.0 - torch.softmax(dist, dim=1)[:, 0]
        return weight * s_star

    def anomaly_map(self, patch_scores: torch.Tensor, size: int) -> torch.Tensor:
        """[B,h,w] -> [B,S,S]: up-sample to the input size, then Gaussian blur."""
        if self.config.map_upsample == "nearest":
            maps = F.interpolate(patch_scores.unsqueeze(1), size=(size, size), mode="nearest").squeeze(1)
        else:
            maps = ops.upsample(patch_scores, size)
        return ops.gaussian_blur(maps, self.config.blur_sigma)


def concat_levels(levels: list[torch.Tensor], mode: str) -> torch.Tensor:
    """[B,C_l,H_l,W_l] levels -> [B,h,w,sum C]: levels[1:] up-sampled with `mode` to levels[0]'s grid."""
    grid = levels[0].shape[-2:]
    maps = [levels[0]] + [ops.upsample(f, grid, mode=mode) for f in levels[1:]]
    return torch.cat(maps, dim=1).permute(0, 2, 3, 1)  # [B,h,w,sum C]
