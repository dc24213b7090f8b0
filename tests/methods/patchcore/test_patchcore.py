"""PatchCore numerics (embedding, re-weighting, maps), presets, bad input, checkpoints and ONNX export."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from miad.config import apply_overrides
from miad.errors import CheckpointError, ConfigError, DataError
from miad.methods.patchcore.detector import PatchCore
from miad.methods.patchcore.model import PRESETS, PatchCoreModel
from miad.registry import create, load

TINY = replace(PRESETS["quick"], image_size=32, weights="random", coreset_ratio=0.25, num_neighbors=3)


def _images(n: int, seed: int = 0, size: int = 32) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_paper_preset_is_appendix_a22_with_anomalib_defaults():
    cfg = PRESETS["paper"]
    assert (cfg.image_size, cfg.backbone, cfg.layers, cfg.batch_size) == (224, "wide_resnet50_2", (2, 3), 32)
    assert (cfg.max_train_images, cfg.coreset_ratio, cfg.num_neighbors, cfg.blur_sigma) == (2000, 0.1, 9, 4.0)
    assert (cfg.patch_size, cfg.embed_dim, cfg.map_upsample, cfg.epochs) == (3, None, "nearest", 0)
    assert apply_overrides(cfg, {"max_train_images": None}).max_train_images is None
    assert PRESETS["quick"].backbone == "efficientnet_lite0" and PRESETS["quick"].weights == "imagenet"


def test_paper_preset_holds_anomalib_v037_embedding_and_global_coreset():
    paper, quick = PRESETS["paper"], PRESETS["quick"]
    assert (paper.resize, paper.embed_upsample, paper.pool_count_include_pad, paper.coreset_mode) == (
        "opencv", "nearest", False, "auto")
    assert (quick.resize, quick.embed_upsample, quick.pool_count_include_pad, quick.coreset_mode) == (
        "pil_draft", "bilinear", True, "chunked")


PAPER_EMBEDDING = {"embed_upsample": "nearest", "pool_count_include_pad": False}


def test_anomalib_v037_embedding_pools_without_padding_and_upsamples_nearest():
    model = PatchCoreModel(replace(TINY, **PAPER_EMBEDDING), pretrained=False)
    images = _images(2)
    l2, l3 = model.extractor(images)
    pool = torch.nn.AvgPool2d(3, 1, 1, count_include_pad=False)  # anomalib v0.3.7 feature_pooler
    want = torch.cat([pool(l2), F.interpolate(pool(l3), size=l2.shape[-2:], mode="nearest")], 1)
    torch.testing.assert_close(model.embed(images), want.permute(0, 2, 3, 1))
    quick = PatchCoreModel(TINY, pretrained=False)
    assert not torch.allclose(quick.embed(images), model.embed(images))  # the fields reach the code


@pytest.mark.parametrize("mode,device,chunks", [("auto", "cpu", 3), ("chunked", "cpu", 3), ("global", "cpu", 1)])
def test_coreset_mode_decides_the_chunks_and_is_recorded(mode, device, chunks):
    det = PatchCore(replace(TINY, coreset_mode=mode, coreset_chunk_size=64, holdout_fraction=0.0))
    det.fit(_images(3), device=device, progress=False)
    assert det.fit_stats["patch_vectors"] == 3 * 64  # an 8x8 grid per 32 px image
    assert det.fit_stats["chunks"] == chunks
    assert det.fit_stats["coreset_mode"] == ("chunked" if mode == "auto" else mode)
    assert det.run_notes() == {"coreset_mode": det.fit_stats["coreset_mode"]}


def test_auto_coreset_mode_is_global_on_cuda():
    det = PatchCore(replace(TINY, coreset_mode="auto"))
    det.device = torch.device("cuda")  # resolution only; nothing runs there
    assert det.coreset_mode() == "global"


@pytest.mark.parametrize(
    "key,value",
    [
        ("coreset_ratio", 0.0),
        ("coreset_ratio", 1.5),
        ("max_bank_size", 2),
        ("max_bank_size", 0),
        ("bank_dtype", "int8"),
        ("num_neighbors", 0),
        ("patch_size", 2),
        ("map_upsample", "bicubic"),
        ("coreset_chunk_size", 1),
    ],
)
def test_out_of_range_config_is_refused(key, value):
    with pytest.raises(ConfigError, match=key):
        apply_overrides(PRESETS["paper"], {key: value})


def test_anomalib_embedding_is_pooled_and_concatenated():
    model = PatchCoreModel(TINY, pretrained=False)
    images = _images(2)
    l2, l3 = model.extractor(images)
    pool = torch.nn.AvgPool2d(3, 1, 1)  # anomalib's feature_pooler
    want = torch.cat([pool(l2), F.interpolate(pool(l3), size=l2.shape[-2:], mode="bilinear")], 1)
    torch.testing.assert_close(model.embed(images), want.permute(0, 2, 3, 1))
    assert model.dim == l2.shape[1] + l3.shape[1]


def test_official_embedding_matches_unfold_upsample_then_pool():
    model = PatchCoreModel(replace(TINY, embed_dim=24), pretrained=False)
    images = _images(2)
    levels = model.extractor(images)
    grid = levels[0].shape[-2:]
    per_layer = []
    for f in levels:  # the official order: unfold 3x3, up-sample the patches, then pool each layer's vectors
        u = F.interpolate(F.unfold(f, 3, padding=1).view(f.shape[0], -1, *f.shape[-2:]), size=grid, mode="bilinear")
        flat = u.permute(0, 2, 3, 1).reshape(-1, 1, u.shape[1])
        per_layer.append(F.adaptive_avg_pool1d(flat, 24).squeeze(1))  # [N,24]
    want = F.adaptive_avg_pool1d(torch.stack(per_layer, 1).reshape(len(per_layer[0]), 1, -1), 24).squeeze(1)
    torch.testing.assert_close(model.embed(images).reshape(-1, 24), want, rtol=1e-5, atol=1e-6)


def anomalib_score(feats: torch.Tensor, bank: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """anomalib PatchcoreModel.compute_anomaly_score, written plainly with cdist: (image score, patch scores)."""
    b, n, d = feats.shape
    dist = torch.cdist(feats.reshape(-1, d).double(), bank.double())
    patch, loc = dist.min(1)
    patch, loc = patch.view(b, n), loc.view(b, n)
    worst = patch.argmax(1)
    s_star, nn_idx = patch[torch.arange(b), worst], loc[torch.arange(b), worst]
    support = torch.cdist(bank[nn_idx].double(), bank.double()).topk(k, largest=False).indices
    d_sup = torch.cdist(feats[torch.arange(b), worst].double().unsqueeze(1), bank[support].double()).squeeze(1)
    return (1 - torch.softmax(d_sup, 1)[:, 0]) * s_star, patch


# Lite0 levels (1,2) take the plain search; (3,4) have 320 up-sampled channels and take the level-wise search.
@pytest.mark.parametrize("embedding", [{}, PAPER_EMBEDDING])  # quick's, and anomalib v0.3.7's (paper)
@pytest.mark.parametrize("layers,size", [((1, 2), 32), ((3, 4), 64)])
def test_reweighted_image_score_and_map_match_anomalib(layers, size, embedding):
    cfg = replace(TINY, layers=layers, image_size=size, num_neighbors=9, knn_block_elements=1, **embedding)
    model = PatchCoreModel(cfg, pretrained=False).eval()
    images = _images(3, seed=1, size=size)
    feats = model.embed(images)  # [3,h,w,D]
    bank = torch.randn(400, model.dim, generator=torch.Generator().manual_seed(2)) * feats.std() + feats.mean()
    model.set_bank(bank)
    score, maps = model(images)
    want_score, want_patch = anomalib_score(feats.flatten(1, 2), bank, 9)
    torch.testing.assert_close(score.double(), want_score, rtol=1e-4, atol=1e-4)
    h = feats.shape[1]
    up = want_patch.view(3, 1, h, h).float().repeat_interleave(size // h, 2).repeat_interleave(size // h, 3)
    from scipy.ndimage import gaussian_filter

    blurred = torch.from_numpy(gaussian_filter(up.squeeze(1).numpy(), sigma=(0, 4, 4)))
    torch.testing.assert_close(maps, blurred, rtol=1e-4, atol=1e-4)


def test_training_patches_score_zero_with_the_full_bank():
    det = PatchCore(replace(TINY, coreset_ratio=1.0, holdout_fraction=0.0), pretrained=False)
    train = _images(4)
    det.fit(train, device="cpu", progress=False)
    assert det.model.memory_bank.shape[0] == 4 * det.model.embed(train[:1]).shape[1] ** 2
    score, _ = det.model(train)
    assert score.abs().max() < 1e-2
    assert (det.predict(_images(2, seed=5)).image_score > 0.1).all()


def test_bank_cap_float16_and_checkpoint_round_trip(tmp_path):
    det = create(
        "patchcore",
        "quick",
        pretrained=False,
        **{**PatchCore.SMOKE, "max_bank_size": 70, "bank_dtype": "float16", "coreset_chunk_size": 100},
    )
    det.fit(_images(8), device="cpu", progress=False)
    assert det.model.memory_bank.shape[0] == 70 and det.model.memory_bank.dtype == torch.float16
    det.save(str(tmp_path / "m.pt"))
    again = load(tmp_path / "m.pt")
    assert torch.equal(again.model.memory_bank, det.model.memory_bank)
    torch.testing.assert_close(again.predict(_images(2, 3)).anomaly_map, det.predict(_images(2, 3)).anomaly_map)
    state = torch.load(tmp_path / "m.pt", weights_only=True)
    state["state_dict"]["memory_bank"] = state["state_dict"]["memory_bank"][:, :5]
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="memory_bank"):
        load(tmp_path / "bad.pt")


def test_bad_training_sets_raise_clear_errors():
    det = PatchCore(replace(TINY, holdout_fraction=0.0, coreset_ratio=0.01, num_neighbors=9), pretrained=False)
    with pytest.raises(DataError, match="fewer than num_neighbors=9"):
        det.fit(_images(2), device="cpu", progress=False)
    det = PatchCore(replace(TINY, max_bank_size=5), pretrained=False)
    with pytest.raises(ConfigError, match="smaller than one image's 64 patch vectors"):
        det.fit(_images(3), device="cpu", progress=False)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the TorchScript exporter is the fast one
@pytest.mark.parametrize("layers,size", [((1, 2), 32), ((3, 4), 64)])  # plain and level-wise search
def test_scoring_exports_to_onnx_and_matches_torch(tmp_path, layers, size):
    ort = pytest.importorskip("onnxruntime")
    cfg = replace(TINY, layers=layers, image_size=size, holdout_fraction=0.0, coreset_ratio=1.0, knn_block_elements=1)
    det = PatchCore(cfg, pretrained=False)
    det.fit(_images(6 if size == 32 else 80, size=size), device="cpu", progress=False)
    assert det.model.memory_bank.shape[0] > 256  # several bank chunks in the graph
    path = tmp_path / "patchcore.onnx"
    torch.onnx.export(
        det.model.eval(),
        (_images(2, size=size),),
        str(path),
        input_names=["images"],
        output_names=["score", "map"],
        dynamic_axes={"images": {0: "batch"}},
        dynamo=False,
    )
    batch = _images(3, seed=9, size=size)
    score, maps = ort.InferenceSession(str(path)).run(None, {"images": batch.numpy()})
    want = det.predict(batch)
    torch.testing.assert_close(torch.from_numpy(score), want.image_score, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(torch.from_numpy(maps), want.anomaly_map, rtol=1e-4, atol=1e-4)
