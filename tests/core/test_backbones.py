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
        FeatureExtractor("wide_resnet50_2", (2, 3), "imagenet")
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
