"""DRAEM anomaly synthesis: Perlin masks, blending, the normal/anomalous split, seeding, texture sources."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from miad.errors import DataError
from miad.methods.draem.model import AUGMENTATIONS, DraemConfig
from miad.methods.draem.synthesis import (
    AnomalySynthesizer,
    TextureSource,
    augment_texture,
    blend,
    perlin_mask,
    perlin_noise,
)
from miad.methods.draem.textures import TEXTURES, procedural_texture

CPU = torch.device("cpu")


def _cfg(**overrides) -> DraemConfig:
    # synthesis works at the images' own size: 32 px test images keep the tests fast
    base = {"image_size": 64, "perlin_max_exponent": 3, "rotate_probability": 0.0}
    return DraemConfig(**{**base, **overrides})


def _images(n: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_perlin_noise_vanishes_on_lattice_points_and_is_bounded():
    noise = perlin_noise(32, (4, 8), torch.Generator().manual_seed(0), CPU)  # cells of 8 rows x 4 columns
    assert noise.shape == (32, 32)
    assert noise[::8, ::4].abs().max() == 0  # gradient noise is zero at every lattice corner
    assert noise.abs().max() <= 1.5 and noise.std() > 0.1


def test_perlin_masks_are_binary_and_vary():
    gen = torch.Generator().manual_seed(0)
    masks = torch.stack([perlin_mask(32, _cfg(), gen, CPU) for _ in range(20)])
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    areas = masks.flatten(1).mean(1)
    assert 0 < areas.mean() < 0.5 and areas.max() > areas.min()


def test_blend_is_exact_inside_and_untouched_outside():
    gen = torch.Generator().manual_seed(1)
    image, texture = torch.rand(3, 16, 16, generator=gen), torch.rand(3, 16, 16, generator=gen)
    texture[:, :4] = image[:, :4]  # where the texture equals the image, blending changes nothing
    mask = (torch.rand(16, 16, generator=gen) > 0.5).float()
    out = blend(image, texture, mask, beta=0.3)
    inside = mask.bool()
    assert torch.equal(out[:, ~inside], image[:, ~inside])
    torch.testing.assert_close(out[:, inside], 0.7 * texture[:, inside] + 0.3 * image[:, inside])
    changed = (out != image).any(0)
    assert torch.equal(changed, inside & (texture != image).any(0))


def test_augmented_image_differs_from_clean_exactly_inside_the_mask():
    images = _images(24)
    batch = AnomalySynthesizer(_cfg())(images, torch.Generator().manual_seed(2))
    assert torch.equal(batch.clean, images)  # no rotation configured: the target is the input
    assert set(batch.mask.unique().tolist()) <= {0.0, 1.0}
    changed = (batch.augmented != batch.clean).any(1)  # [B,S,S]
    assert torch.equal(changed, batch.mask.bool())
    assert torch.equal(batch.label, batch.mask.flatten(1).amax(1).long())
    assert 0 < batch.label.sum() < len(images)
    assert batch.augmented.min() >= 0 and batch.augmented.max() <= 1


def test_about_half_of_the_samples_stay_normal():
    synth, gen = AnomalySynthesizer(_cfg()), torch.Generator().manual_seed(3)
    labels = torch.cat([synth(_images(60, i), gen).label for i in range(5)]).float()
    # p(anomaly) = 0.5 times p(non-empty mask) (about 0.9): n = 300, standard deviation 0.03
    assert 0.33 <= labels.mean() <= 0.57
    none = AnomalySynthesizer(_cfg(anomaly_probability=0.0))(_images(20), gen)
    assert none.label.sum() == 0 and torch.equal(none.augmented, none.clean)
    always = AnomalySynthesizer(_cfg(anomaly_probability=1.0))(_images(40), gen)
    assert always.label.float().mean() >= 0.75


def test_a_fixed_seed_reproduces_a_batch_and_another_seed_does_not():
    synth, images = AnomalySynthesizer(_cfg(rotate_probability=0.5)), _images(8)
    a = synth(images, torch.Generator().manual_seed(7))
    b = synth(images, torch.Generator().manual_seed(7))
    c = synth(images, torch.Generator().manual_seed(8))
    for name in ("clean", "augmented", "mask", "label"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert not torch.equal(a.augmented, c.augmented)
    torch.manual_seed(5)  # the global generator (used in training) is just as reproducible
    d = synth(images)
    torch.manual_seed(5)
    assert torch.equal(synth(images).augmented, d.augmented)


def test_rotation_applies_to_the_normal_image_and_its_target():
    images = _images(6)
    batch = AnomalySynthesizer(_cfg(rotate_probability=1.0, anomaly_probability=0.0))(images)
    assert not torch.equal(batch.clean, images)
    assert torch.equal(batch.augmented, batch.clean)
    assert (batch.clean[:, :, 0, 0] == 0).any()  # a corner rotated out of view is filled with black


def _write(path, colour) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((20, 24, 3), colour, np.uint8)).save(path)


def test_a_texture_folder_is_searched_recursively_and_used(tmp_path):
    red, green = (255, 0, 0), (0, 255, 0)
    _write(tmp_path / "dtd" / "images" / "banded" / "a.jpg", red)  # JPEG keeps a flat colour exact enough
    _write(tmp_path / "dtd" / "images" / "dotted" / "b.png", green)
    (tmp_path / "dtd" / "images" / "labels.txt").write_text("not an image")
    source = TextureSource(str(tmp_path / "dtd"))
    assert [p.name for p in source.files] == ["a.jpg", "b.png"]

    # beta_max 0 and no augmentation: inside the mask the pixels are the texture's, unchanged
    cfg = _cfg(anomaly_source=str(tmp_path / "dtd"), beta_max=0.0, n_augmentations=0, anomaly_probability=1.0)
    synth = AnomalySynthesizer(cfg)
    batch = synth(_images(16), torch.Generator().manual_seed(0))
    inside = batch.augmented.permute(0, 2, 3, 1)[batch.mask.bool()]  # [N,3]
    colours = torch.tensor([red, green], dtype=torch.float32) / 255
    distance = (inside[:, None] - colours[None]).abs().amax(-1).amin(-1)
    assert len(inside) > 0 and distance.max() < 3 / 255
    nearest = (inside[:, None] - colours[None]).abs().amax(-1).argmin(-1)
    assert set(nearest.tolist()) == {0, 1}  # both files are drawn
    (decoded,) = synth.source.decoded.values()
    assert decoded is not None and decoded.complete and not decoded.on_disk  # each decoded once, kept in memory


def test_textures_over_the_memory_budget_go_to_a_reused_file(tmp_path, monkeypatch):
    monkeypatch.setenv("MIAD_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MIAD_IMAGE_CACHE_MEMORY", str(3 * 32 * 32))  # room for one 32 px texture: not both
    _write(tmp_path / "dtd" / "a.png", (255, 0, 0))
    _write(tmp_path / "dtd" / "b.png", (0, 255, 0))
    source = TextureSource(str(tmp_path / "dtd"))
    first = source._load(0, 32)
    assert torch.equal(source._load(0, 32), first) and source.decoded[32].on_disk
    source._load(1, 32)  # the last one decoded completes the file, renamed into the cache folder
    assert len(list((tmp_path / "cache" / "images").glob("*.u8"))) == 1
    again = TextureSource(str(tmp_path / "dtd"))._load(1, 32)  # a later run reads it, decoding nothing
    assert again[1].float().mean() > 250 and again[0].float().mean() < 5


def test_a_missing_or_empty_texture_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="not a folder"):
        TextureSource(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no image files"):
        TextureSource(str(tmp_path / "empty"))


def test_every_texture_augmentation_keeps_uint8_images():
    gen = torch.Generator().manual_seed(4)
    texture = procedural_texture(32, gen)
    assert torch.equal(augment_texture(texture, AUGMENTATIONS, 0, gen), texture)
    for name in AUGMENTATIONS:
        out = augment_texture(texture, (name,), 1, gen)
        assert out.dtype == torch.uint8 and out.shape == texture.shape, name
    changed = sum(not torch.equal(augment_texture(texture, AUGMENTATIONS, 3, gen), texture) for _ in range(10))
    assert changed >= 8


def test_procedural_textures_are_seeded_and_varied():
    a = [procedural_texture(32, torch.Generator().manual_seed(s)) for s in range(30)]
    b = [procedural_texture(32, torch.Generator().manual_seed(s)) for s in range(30)]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    stack = torch.stack(a).float() / 255  # [30,3,S,S]
    assert stack.dtype == torch.float32 and stack.shape == (30, 3, 32, 32)
    assert stack.mean((1, 2, 3)).std() > 0.05  # textures differ in brightness ...
    assert stack.std((2, 3)).mean() > 0.05  # ... and are not flat
    for kind, make in TEXTURES.items():
        rgb = make(32, torch.Generator().manual_seed(0), CPU)
        assert rgb.shape == (3, 32, 32) and 0 <= rgb.min() and rgb.max() <= 1, kind
