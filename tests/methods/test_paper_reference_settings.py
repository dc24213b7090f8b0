"""Settings the MIAD appendix leaves to anomalib v0.3.7 or the original code: the paper presets hold them, the
code paths honour them, and the quick presets keep their earlier values."""

from __future__ import annotations

import pytest
import torch

from miad import ops
from miad.methods.draem import detector as draem_detector
from miad.methods.draem.losses import original_data_range, ssim_loss
from miad.methods.uniad.transformer import Reconstruction
from miad.registry import create, get_method

PAPER_RESIZE = {  # the reference code's decoding and resizing (sources at each preset)
    "reverse_distillation": "opencv", "patchcore": "opencv", "fastflow": "pil", "draem": "opencv",
    "unet_ae": "opencv", "uniad": "pil",
}


@pytest.mark.parametrize("method", sorted(PAPER_RESIZE))
def test_paper_presets_decode_fully_train_in_float32_and_quick_keeps_its_values(method):
    presets = get_method(method).PRESETS
    assert presets["paper"].resize == PAPER_RESIZE[method]
    assert presets["quick"].resize == "pil_draft"
    if presets["paper"].epochs:  # gradient methods: the originals train in float32
        assert presets["paper"].amp is False


def test_draem_ssim_range_follows_the_original_rule():
    assert float(original_data_range(torch.tensor([0.0, 1.0]))) == 1.0
    assert float(original_data_range(torch.tensor([-0.6, 1.0]))) == 2.0
    assert float(original_data_range(torch.tensor([0.0, 200.0]))) == 255.0
    gen = torch.Generator().manual_seed(0)
    clean = torch.rand(2, 3, 32, 32, generator=gen)
    recon = clean + 0.3 * torch.randn(2, 3, 32, 32, generator=gen) - 0.4  # goes below -0.5
    want = 1 - ops.ssim_map(recon, clean, data_range=2.0, stable=False).mean()
    torch.testing.assert_close(ssim_loss(recon, clean, data_range=None), want)
    assert not torch.allclose(ssim_loss(recon, clean, data_range=1.0), want)
    assert get_method("draem").PRESETS["paper"].ssim_data_range is None
    assert get_method("draem").PRESETS["quick"].ssim_data_range == 1.0


def test_draem_detector_passes_its_ssim_range_to_the_loss(monkeypatch):
    seen = []

    def spy(*args):
        seen.append(args[-1])
        return torch.zeros(())

    monkeypatch.setattr(draem_detector, "draem_loss", spy)
    det = create("draem", "quick", pretrained=False, ssim_data_range=None)
    images = torch.rand(2, 3, 64, 64)
    det.loss((images, images, torch.zeros(2, 64, 64)))
    assert seen == [None]


def _reconstruction(shared: bool) -> Reconstruction:
    torch.manual_seed(0)
    return Reconstruction(16, 4, 16, 2, 3, 3, 32, 0.0, 3, (True, True, True), 20.0, 1.0, shared_init=shared)


def test_uniad_shared_init_copies_in_projections_and_queries_only():
    shared, independent = _reconstruction(True), _reconstruction(False)
    for layers, names in ((shared.encoder, ["attn"]), (shared.decoder, ["attn_encoder", "attn_previous"])):
        for name in names:
            first = getattr(layers[0], name)
            for layer in layers[1:]:
                assert torch.equal(getattr(layer, name).in_proj.weight, first.in_proj.weight)
                assert not torch.equal(getattr(layer, name).out_proj.weight, first.out_proj.weight)
                assert not torch.equal(layer.ffn.linear1.weight, layers[0].ffn.linear1.weight)
    assert all(torch.equal(d.query, shared.decoder[0].query) for d in shared.decoder[1:])
    first = shared.decoder[0]
    assert not torch.equal(first.attn_encoder.in_proj.weight, first.attn_previous.in_proj.weight)
    assert not torch.equal(independent.encoder[1].attn.in_proj.weight, independent.encoder[0].attn.in_proj.weight)
    assert not torch.equal(independent.decoder[1].query, independent.decoder[0].query)


def test_uniad_paper_preset_uses_the_shared_init_and_the_model_honours_it():
    assert get_method("uniad").PRESETS["paper"].shared_layer_init is True
    assert get_method("uniad").PRESETS["quick"].shared_layer_init is False
    det = create("uniad", "quick", pretrained=False, shared_layer_init=True)
    dec = det.model.reconstruction.decoder
    assert torch.equal(dec[1].query, dec[0].query)


def test_draem_run_notes_name_the_texture_source(tmp_path):
    assert create("draem", "quick", pretrained=False).run_notes() == {"anomaly_source": "procedural"}
    dtd = str(tmp_path / "dtd" / "images")
    assert create("draem", "quick", pretrained=False, anomaly_source=dtd).run_notes() == {"anomaly_source": dtd}


@pytest.mark.parametrize("method", sorted(PAPER_RESIZE))
def test_config_dicts_without_the_new_keys_keep_the_earlier_behaviour(method):
    """Checkpoints and run folders written before these fields existed lack their keys: class defaults apply."""
    cls = type(get_method(method).PRESETS["quick"])
    new_keys = {"resize", "pool_count_include_pad", "embed_upsample", "coreset_mode", "loss_mode", "map_mode",
                "shared_layer_init", "ssim_data_range"}
    old = cls(**{k: v for k, v in get_method(method).PRESETS["quick"].to_dict().items() if k not in new_keys})
    earlier = {"resize": "pil_draft", "pool_count_include_pad": True, "embed_upsample": "bilinear",
               "coreset_mode": "chunked", "loss_mode": "flattened", "map_mode": "add", "shared_layer_init": False,
               "ssim_data_range": 1.0}
    for key, value in earlier.items():
        if hasattr(old, key):
            assert getattr(old, key) == value, key
