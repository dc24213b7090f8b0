"""FastFlow model and detector: presets, layout, loss, anomaly map, NaN handling, a full `quick` run."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from miad.errors import ConfigError
from miad.methods.fastflow.detector import FastFlowDetector
from miad.methods.fastflow.model import PRESETS, FastFlowConfig, FastFlowModel
from miad.registry import create
from miad.train import TrainingError

TINY = replace(PRESETS["quick"], image_size=32, flow_steps=2, weights="random")


def _zero_couplings(model: FastFlowModel) -> None:
    """Make every flow a pure channel permutation: zero last subnet conv => s = t = 0; global affine stays 1, 0."""
    with torch.no_grad():
        for flow in model.flows:
            for step in flow.steps:
                step.subnet[2].weight.zero_()
                step.subnet[2].bias.zero_()


def test_paper_preset_is_appendix_a23():
    cfg = PRESETS["paper"]
    assert (cfg.image_size, cfg.backbone, cfg.layers, cfg.weights) == (256, "wide_resnet50_2", (1, 2, 3), "imagenet")
    assert (cfg.optimizer, cfg.lr, cfg.weight_decay, cfg.epochs, cfg.batch_size) == ("adam", 1e-3, 1e-5, 500, 32)
    assert (cfg.flow_steps, cfg.hidden_ratio, cfg.conv3x3_only, cfg.clamp) == (8, 1.0, False, 2.0)
    assert cfg.lr_milestones == () and cfg.grad_clip_norm is None and not cfg.cache_features
    quick = PRESETS["quick"]
    assert quick.backbone == "efficientnet_lite0" and quick.weights == "imagenet" and quick.cache_features


@pytest.mark.parametrize(
    "key,value",
    [("flow_steps", 0), ("hidden_ratio", 0.0), ("clamp", -1.0), ("clamp_activation", "relu"), ("layers", ())],
)
def test_invalid_config_values_fail(key, value):
    with pytest.raises(ConfigError, match=key):
        replace(FastFlowConfig(), **{key: value})


def test_layer_norms_over_chw_and_only_norms_and_flows_train():
    det = create("fastflow", "quick", pretrained=False, **FastFlowDetector.SMOKE)
    model = det.model
    feats = model.backbone(torch.zeros(1, 3, 32, 32))
    assert [tuple(n.normalized_shape) for n in model.norms] == [tuple(f.shape[1:]) for f in feats]
    assert [tuple(f.shape[1:]) for f in feats] == [(24, 8, 8), (40, 4, 4), (112, 2, 2)]  # Lite0 strides 4/8/16
    assert all(n.elementwise_affine for n in model.norms)
    trainable = {id(p) for p in det.trainable_parameters()}
    assert not any(id(p) in trainable for p in model.backbone.parameters())
    assert trainable == {id(p) for m in (model.norms, model.flows) for p in m.parameters()}


def test_loss_of_identity_flow_is_half_the_feature_dimension():
    """With s = t = 0 the flow is a permutation (log det 0) and LayerNorm output has unit (biased) variance over
    [C,H,W], so the per-scale loss 0.5 * sum z^2 is 0.5 * C*H*W for every image: the sum over scales follows."""
    model = FastFlowModel(TINY, pretrained=False)
    _zero_couplings(model)
    feats = model.backbone(torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0)))
    expected = sum(0.5 * f[0].numel() for f in feats)
    torch.testing.assert_close(model.nll(feats), torch.tensor(expected), rtol=1e-3, atol=0.0)
    for _, log_det in model.latents(feats):
        assert torch.all(log_det == 0)


def test_anomaly_map_is_mean_of_upsampled_negative_likelihoods(monkeypatch):
    model = FastFlowModel(TINY, pretrained=False)
    z_small = [torch.zeros(2, c, h, w) for c, h, w in [(24, 8, 8), (40, 4, 4), (112, 2, 2)]]
    monkeypatch.setattr(model, "latents", lambda feats: [(z, torch.zeros(2)) for z in feats])
    maps = model.anomaly_map(z_small)
    assert maps.shape == (2, 32, 32)
    torch.testing.assert_close(maps, torch.full((2, 32, 32), -1.0))  # z = 0 everywhere: p = 1, map = -1

    z_small[0][1, :, 0, 0] = 4.0  # image 1, coarse cell (0, 0) of the finest scale: mean_c z^2 = 16
    maps = model.anomaly_map(z_small)
    torch.testing.assert_close(maps[0], torch.full((32, 32), -1.0))
    peak = maps[1, 0, 0]  # bilinear upsampling keeps the corner value: (-exp(-8) - 1 - 1) / 3
    torch.testing.assert_close(peak, torch.tensor((-math.exp(-8.0) - 2.0) / 3.0))
    assert maps[1].argmax() == 0 and maps[1, 16:, 16:].max() == -1.0


def test_image_score_is_the_map_maximum():
    det = create("fastflow", "quick", pretrained=False, **FastFlowDetector.SMOKE)
    images = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    det.fitted = True
    pred = det.predict(images)
    assert pred.anomaly_map.shape == (3, 32, 32)
    assert (pred.anomaly_map <= 0).all() and (pred.anomaly_map >= -1).all()
    torch.testing.assert_close(pred.image_score, pred.anomaly_map.flatten(1).amax(1))


def test_nan_loss_stops_training_naming_epoch_and_step():
    det = create("fastflow", "quick", pretrained=False, **FastFlowDetector.SMOKE)
    images = torch.rand(5, 3, 32, 32)
    images[:, :, 4:8, 4:8] = float("nan")  # a corrupt input patch poisons every feature map
    with pytest.raises(TrainingError, match=r"fastflow: loss is nan at epoch 1, step 1"):
        det.fit(images, device="cpu", progress=False)


@pytest.mark.slow  # ~3 CPU-seconds: every epoch of the real preset
def test_full_quick_run_has_finite_losses():
    """The real `quick` preset (ImageNet Lite0, every epoch) on a few smooth images: no NaN/inf anywhere."""
    gen = torch.Generator().manual_seed(0)
    ramp = torch.linspace(-1, 1, 128).view(1, 1, 1, -1)
    images = ramp + 0.1 * torch.randn(8, 3, 128, 128, generator=gen)
    det = create("fastflow", "quick")
    det.fit(images, device="cpu", progress=False)
    assert len(det.history) == det.config.epochs
    losses = [row[k] for row in det.history for k in ("train_loss", "val_loss")]
    assert all(math.isfinite(v) for v in losses)
    assert det.history[-1]["train_loss"] < det.history[0]["train_loss"]
    pred = det.predict(images[:2])
    assert torch.isfinite(pred.anomaly_map).all()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the TorchScript exporter is the fast one
def test_inference_graph_exports_to_onnx_and_matches_torch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    model = FastFlowModel(replace(TINY, clamp_activation="atan"), pretrained=False).eval()
    path = tmp_path / "fastflow.onnx"
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    torch.onnx.export(
        model,
        (images,),
        str(path),
        input_names=["images"],
        output_names=["scores", "maps"],
        dynamic_axes={"images": {0: "batch"}},
        dynamo=False,
    )
    batch = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    scores, maps = ort.InferenceSession(str(path)).run(None, {"images": batch.numpy()})
    with torch.no_grad():
        want_scores, want_maps = model(batch)
        torch.testing.assert_close(torch.from_numpy(maps), want_maps, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(torch.from_numpy(scores), want_scores, rtol=1e-4, atol=1e-5)
