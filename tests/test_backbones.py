import numpy as np
import pytest
import torch

from miad.backbones import FeatureExtractor, load_classifier
from miad.errors import ConfigError, WeightsError
from miad.preprocess import normalize


def test_shipped_lite0_weights_are_real_imagenet_weights():
    skimage_data = pytest.importorskip("skimage.data")
    img = torch.tensor(np.asarray(skimage_data.chelsea())).permute(2, 0, 1).float() / 255
    img = torch.nn.functional.interpolate(img[None], size=(224, 224), mode="bilinear", antialias=True)
    with torch.no_grad():
        top = load_classifier("efficientnet_lite0")(normalize(img, "imagenet")).argmax(1).item()
    assert top in (281, 282, 285)  # tabby, tiger cat, Egyptian cat


def test_extractor_levels_channels_and_frozen():
    fx = FeatureExtractor("efficientnet_lite0", (1, 2, 3), "imagenet")
    assert fx.channels == [24, 40, 112] and fx.strides == [4, 8, 16]
    outs = fx(torch.rand(2, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(2, 24, 16, 16), (2, 40, 8, 8), (2, 112, 4, 4)]
    fx.train()
    assert not fx.training and all(not p.requires_grad for p in fx.parameters())


def test_wide_resnet_layout_with_random_weights():
    fx = FeatureExtractor("wide_resnet50_2", (1, 2, 3), "random")
    assert fx.channels == [256, 512, 1024] and fx.strides == [4, 8, 16]


def test_missing_weights_give_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    import torchvision

    def offline(*a, **k):
        raise OSError("offline")

    monkeypatch.setattr(torchvision.models._api.WeightsEnum, "get_state_dict", offline)
    with pytest.raises(WeightsError, match="wide_resnet50_2-95faca4d.pth"):
        FeatureExtractor("wide_resnet50_2", (2, 3), "torchvision")
    with pytest.raises(WeightsError, match="does not exist"):
        FeatureExtractor("efficientnet_lite0", (1,), str(tmp_path / "nope.pth"))
    with pytest.raises(ConfigError):
        FeatureExtractor("efficientnet_lite0", (3, 1), "random")


def test_explicit_weights_file_round_trip(tmp_path):
    fx = FeatureExtractor("efficientnet_lite0", (1, 2), "imagenet")
    path = tmp_path / "w.pth"
    torch.save(fx.body.state_dict(), path)
    again = FeatureExtractor("efficientnet_lite0", (1, 2), str(path))
    x = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(again(x)[1], fx(x)[1])


def test_channels_last_features_equal_the_plain_layout():
    fe = FeatureExtractor("efficientnet_lite0", (1, 2, 3), "random")
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    feats = fe(x)
    fe.body.to(memory_format=torch.contiguous_format)
    with torch.no_grad():
        plain = fe.body(x)
    for got, want in zip(feats, plain, strict=True):
        assert got.is_contiguous()  # downstream code may .view() them
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_paper_wide_resnet_asks_timm_for_racm_and_offline_error_names_the_file(tmp_path, monkeypatch):
    """anomalib v0.3.7 (timm 0.5.4) and FastFlow's reference load timm's default WRN50 weights: racm_in1k."""
    import timm

    from miad import backbones
    from miad.registry import get_method

    for method in ("patchcore", "reverse_distillation", "fastflow"):
        cfg = get_method(method).PRESETS["paper"]
        assert backbones.imagenet_source(cfg.backbone, cfg.weights) == ("timm", "wide_resnet50_2.racm_in1k")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    asked = []

    def offline(name, pretrained=False, **kwargs):
        if pretrained:
            asked.append(name)
            raise OSError("offline")
        return real_create(name, pretrained=False, **kwargs)

    real_create = timm.create_model
    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(WeightsError) as err:
        FeatureExtractor("wide_resnet50_2", (2, 3), "imagenet")
    assert asked == ["wide_resnet50_2.racm_in1k"]
    where = tmp_path / "checkpoints" / "wide_resnet50_racm-8234f177.pth"
    assert str(where) in str(err.value) and "timm/wide_resnet50_2.racm_in1k" in str(err.value)


def test_timm_legacy_cache_file_is_read_before_the_hub(tmp_path, monkeypatch):
    """A wide_resnet50_racm-8234f177.pth in the torch hub cache (where timm 0.5.4 put it) is used offline."""
    import timm

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    state = FeatureExtractor("wide_resnet50_2", (1,), "random").body.state_dict()
    state = {k: torch.full_like(v, 0.5) if v.is_floating_point() else v for k, v in state.items()}
    (tmp_path / "checkpoints").mkdir()
    torch.save(state, tmp_path / "checkpoints" / "wide_resnet50_racm-8234f177.pth")
    monkeypatch.setattr(timm, "create_model", _no_download(timm.create_model))
    fx = FeatureExtractor("wide_resnet50_2", (1,), "imagenet")
    assert float(fx.body.conv1.weight.flatten()[0]) == 0.5


def test_torchvision_weights_stay_available(tmp_path, monkeypatch):
    from miad import backbones

    want = ("torchvision", "wide_resnet50_2-95faca4d.pth")
    assert backbones.imagenet_source("wide_resnet50_2", "torchvision") == want
    with pytest.raises(WeightsError, match="weights=torchvision is known for wide_resnet50_2 only"):
        FeatureExtractor("efficientnet_lite0", (1,), "torchvision")


def _no_download(create):
    def create_offline(name, pretrained=False, **kwargs):
        assert not pretrained, "must not reach the hub when the legacy file is cached"
        return create(name, pretrained=False, **kwargs)

    return create_offline
