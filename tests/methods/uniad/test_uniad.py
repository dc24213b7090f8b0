"""UniAD numerics that need no training: neighbour mask, feature jitter, shapes, scoring, presets, ONNX."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from miad.errors import ConfigError
from miad.methods.uniad.model import PRESETS, UniADConfig, UniADModel
from miad.methods.uniad.transformer import Attention, Reconstruction, attention_bias, feature_jitter, neighbour_mask


def _tiny_reconstruction(grid: int = 6, neighbour: int = 3, **kw) -> Reconstruction:
    args = dict(
        in_dim=12,
        grid=grid,
        dim=16,
        heads=2,
        encoder_layers=1,
        decoder_layers=2,
        ffn=32,
        dropout=0.0,
        neighbour_size=neighbour,
        mask_in=(True, True, True),
        jitter_scale=20.0,
        jitter_prob=1.0,
    )
    args.update(kw)
    torch.manual_seed(0)
    return Reconstruction(**args)


def test_neighbour_mask_forbids_exactly_each_tokens_7x7_neighbourhood():
    grid = 14
    mask = neighbour_mask(grid, 7)
    assert mask.shape == (196, 196) and mask.dtype == torch.bool
    cells = [divmod(i, grid) for i in range(grid * grid)]  # (row, col) of each row-major token
    expected = [[abs(ri - rj) <= 3 and abs(ci - cj) <= 3 for rj, cj in cells] for ri, ci in cells]
    assert mask.tolist() == expected
    assert int(mask[7 * grid + 7].sum()) == 49  # interior token: the full 7x7 window
    assert int(mask[0].sum()) == 16  # corner token: the 4x4 part of its window inside the grid
    bias = attention_bias(grid, 7)
    assert torch.isneginf(bias[mask]).all() and (bias[~mask] == 0).all()
    assert (attention_bias(grid, 0) == 0).all()  # size 0: no mask


def test_masked_attention_ignores_the_neighbourhood_and_sees_everything_else():
    grid, dim = 6, 8
    attn = Attention(dim, heads=2, dropout=0.0)
    query = torch.randn(1, grid * grid, dim)
    memory = torch.randn(1, grid * grid, dim, requires_grad=True)
    token = 2 * grid + 3
    out = attn(query, memory, memory, attention_bias(grid, 3))
    (grad,) = torch.autograd.grad(out[0, token].sum(), memory)
    touched = grad[0].abs().sum(dim=-1) > 0  # [N] keys/values that influence this token's output
    assert torch.equal(touched, ~neighbour_mask(grid, 3)[token])


def test_reconstruction_holds_the_mask_as_a_non_persistent_buffer():
    rec = _tiny_reconstruction(grid=6, neighbour=3)
    assert torch.equal(rec.bias, attention_bias(6, 3))
    assert "bias" not in rec.state_dict()


def test_feature_jitter_is_on_in_train_mode_and_off_in_eval_mode():
    rec = _tiny_reconstruction()  # dropout 0: only the jitter can make two calls differ
    tokens = torch.randn(2, 36, 12)
    rec.eval()
    torch.testing.assert_close(rec(tokens), rec(tokens), rtol=0, atol=0)
    quiet = _tiny_reconstruction(jitter_prob=0.0).eval()
    torch.testing.assert_close(rec(tokens), quiet(tokens), rtol=0, atol=0)
    rec.train()
    assert not torch.allclose(rec(tokens), rec(tokens))
    quiet.train()
    torch.testing.assert_close(quiet(tokens), quiet(tokens), rtol=0, atol=0)


def test_feature_jitter_noise_is_scaled_by_20_times_token_norm_over_channels():
    torch.manual_seed(0)
    channels = 272
    tokens = torch.full((1, 400, channels), 0.5)  # ||token|| = 0.5 * sqrt(272)
    noise = feature_jitter(tokens, scale=20.0, prob=1.0) - tokens
    expected_std = 20.0 * 0.5 * channels**0.5 / channels
    assert float(noise.std()) == pytest.approx(expected_std, rel=0.02)
    assert float(noise.mean()) == pytest.approx(0.0, abs=0.02 * expected_std)
    assert torch.equal(feature_jitter(tokens, scale=20.0, prob=0.0), tokens)


def test_paper_shapes_for_224_input_with_efficientnet_b4():
    cfg = dataclasses.replace(PRESETS["paper"], weights="random")
    torch.manual_seed(0)
    model = UniADModel(cfg, pretrained=False).eval()
    assert model.backbone.channels == [24, 32, 56, 160] and model.channels == 272
    images = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        features = model.features(images)
        rebuilt = model.reconstruct(features)
        scores, maps = model(images)
    assert features.shape == rebuilt.shape == (1, 272, 14, 14)
    assert scores.shape == (1,) and maps.shape == (1, 224, 224)
    assert model.reconstruction.bias.shape == (196, 196)
    assert len(model.reconstruction.encoder) == 4 and len(model.reconstruction.decoder) == 4
    assert model.reconstruction.decoder[0].query.shape == (196, 256)


def _small_model(**overrides) -> UniADModel:
    cfg = dataclasses.replace(
        PRESETS["quick"],
        image_size=64,
        neighbor_size=1,
        score_pool=16,
        hidden_dim=16,
        num_heads=2,
        ffn_dim=32,
        **overrides,
    )
    torch.manual_seed(0)
    return UniADModel(cfg, pretrained=False).eval()


def test_anomaly_map_is_the_feature_error_norm_upsampled_with_aligned_corners():
    model = _small_model()
    features = torch.randn(2, model.channels, 4, 4)
    rebuilt = torch.randn(2, model.channels, 4, 4)
    error = (rebuilt - features).norm(dim=1)  # [2,4,4]
    maps = model.anomaly_map(features, rebuilt)
    assert maps.shape == (2, 64, 64)
    step = 63 // 3  # align_corners: grid point k lands exactly on pixel k * 63 / 3
    torch.testing.assert_close(maps[:, ::step, ::step], error)


def test_image_score_equals_the_unpadded_16x16_average_pooling_maximum():
    model = _small_model()
    maps = torch.rand(3, 64, 64) ** 4  # non-negative and peaky
    maps[0, 0, 0] = 50.0  # a corner peak: a padded window would see it, the valid ones must decide
    expected = F.avg_pool2d(maps.unsqueeze(1), 16, stride=1).flatten(1).amax(dim=1)
    torch.testing.assert_close(model.image_score(maps), expected)


def test_only_the_reconstruction_is_trainable():
    from miad.registry import create

    det = create(
        "uniad",
        "quick",
        pretrained=False,
        image_size=32,
        neighbor_size=1,
        score_pool=8,
        hidden_dim=16,
        num_heads=2,
        ffn_dim=32,
    )
    trainable = {id(p) for p in det.trainable_parameters()}
    assert trainable == {id(p) for p in det.model.reconstruction.parameters()}
    assert not any(p.requires_grad for p in det.model.backbone.parameters())


def test_paper_preset_matches_appendix_a26_and_the_original_code():
    cfg = PRESETS["paper"]
    assert (cfg.image_size, cfg.backbone, cfg.layers, cfg.feature_stride) == (
        224,
        "tf_efficientnet_b4",
        (0, 1, 2, 3),
        16,
    )
    assert (cfg.optimizer, cfg.lr, cfg.weight_decay, cfg.epochs, cfg.batch_size) == ("adamw", 1e-4, 1e-4, 500, 64)
    assert (cfg.lr_milestones, cfg.lr_gamma, cfg.grad_clip_norm) == ((400,), 0.1, 0.1)
    assert (cfg.hidden_dim, cfg.num_heads, cfg.encoder_layers, cfg.decoder_layers, cfg.ffn_dim) == (256, 8, 4, 4, 1024)
    assert (cfg.dropout, cfg.neighbor_size, cfg.neighbor_mask) == (0.1, 7, (True, True, True))
    assert (cfg.jitter_scale, cfg.jitter_prob, cfg.score_pool, cfg.cache_features) == (20.0, 1.0, 16, False)
    quick = PRESETS["quick"]
    assert quick.backbone == "efficientnet_lite0" and quick.weights == "imagenet" and quick.cache_features


@pytest.mark.parametrize(
    "overrides",
    [
        {"image_size": 112},  # 7x7 tokens: a 7x7 window would leave a token nothing to attend to
        {"image_size": 100},  # not a multiple of the feature stride
        {"hidden_dim": 100},  # not a multiple of 8 heads
        {"jitter_prob": 1.5},
        {"score_pool": 300},
    ],
)
def test_config_rejects_unusable_values(overrides):
    with pytest.raises(ConfigError):
        UniADConfig(**overrides)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the TorchScript exporter is the fast one
def test_reconstruction_exports_to_onnx_and_matches_torch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    rec = _tiny_reconstruction(grid=4, neighbour=3).eval()
    path = tmp_path / "rec.onnx"
    torch.onnx.export(
        rec,
        (torch.randn(2, 16, 12),),
        str(path),
        input_names=["tokens"],
        output_names=["out"],
        dynamic_axes={"tokens": {0: "batch"}},
        dynamo=False,
    )
    tokens = torch.randn(3, 16, 12)
    (out,) = ort.InferenceSession(str(path)).run(None, {"tokens": tokens.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(out), rec(tokens), rtol=1e-4, atol=1e-5)
