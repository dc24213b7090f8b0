"""The Dataset: sizes, normalisation values, mask alignment after resize, batching."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from miad.data.dataset import ImageDataset, TensorImageDataset
from miad.errors import ConfigError, DataError
from miad.preprocess import IMAGENET_MEAN, IMAGENET_STD
from miad.types import Sample


def _sample(image: Path, mask: Path | None = None) -> Sample:
    return Sample(image, int(mask is not None), mask, "widget", "crack" if mask else "good", "test")


def _square_pair(tmp_path: Path, width: int, height: int, box: tuple[int, int, int, int], ext: str = ".png"):
    """A black image with a white rectangle (top, left, bottom, right) and the matching mask."""
    top, left, bottom, right = box
    array = np.zeros((height, width, 3), np.uint8)
    array[top:bottom, left:right] = 255
    mask = np.zeros((height, width), np.uint8)
    mask[top:bottom, left:right] = 255
    image_path = tmp_path / f"img{ext}"
    Image.fromarray(array).save(image_path, quality=95) if ext == ".jpg" else Image.fromarray(array).save(
        image_path
    )
    Image.fromarray(mask).save(tmp_path / "mask.png")
    return image_path, tmp_path / "mask.png"


def test_constant_colour_gives_the_expected_normalised_values(tmp_path: Path, trees) -> None:
    path = trees.save(tmp_path / "c.png", np.full((10, 30, 3), (255, 0, 128), np.uint8))
    item = ImageDataset([_sample(path)], image_size=8)[0]
    rgb01 = torch.tensor([1.0, 0.0, 128 / 255])
    expected = (rgb01 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    assert item["image"].shape == (3, 8, 8) and item["image"].dtype == torch.float32
    assert torch.allclose(item["image"], expected.view(3, 1, 1).expand(3, 8, 8), atol=1e-6)
    half = ImageDataset([_sample(path)], image_size=8, normalize="half")[0]["image"]
    assert torch.allclose(half[:, 0, 0], rgb01 * 2 - 1, atol=1e-6)


def test_sizes_crop_labels_and_empty_masks(tmp_path: Path, trees) -> None:
    path = trees.save(tmp_path / "wide.png", np.zeros((12, 40, 3), np.uint8))  # aspect not kept
    item = ImageDataset([_sample(path)], image_size=20, center_crop=14)[0]
    assert item["image"].shape == (3, 14, 14) and item["mask"].shape == (14, 14)
    assert item["mask"].dtype == torch.float32 and item["mask"].sum() == 0
    assert item["label"] == 0 and item["index"] == 0


@pytest.mark.parametrize("resize", ["pil_draft", "pil", "opencv"])
@pytest.mark.parametrize("size", [24, 17, 56])
@pytest.mark.parametrize("crop", [None, 12])
def test_mask_stays_aligned_with_its_square_after_resize(tmp_path: Path, size: int, crop: int | None,
                                                         resize: str) -> None:
    image, mask = _square_pair(tmp_path, 40, 30, (9, 13, 22, 31))
    item = ImageDataset([_sample(image, mask)], size, normalize="none", center_crop=crop, resize=resize)[0]
    _assert_aligned(item["image"][0], item["mask"])


def test_paper_dataset_resizes_with_opencv_and_its_mask_stays_aligned(tmp_path: Path) -> None:
    """PatchCore's paper preset: full decode + cv2 INTER_LINEAR (anomalib v0.3.7); masks nearest, pixel-centred."""
    import cv2

    from miad.registry import get_method

    image, mask = _square_pair(tmp_path, 1000, 600, (203, 417, 391, 733), ext=".jpg")
    det = get_method("patchcore")(get_method("patchcore").PRESETS["paper"], pretrained=False)
    item = det.dataset([_sample(image, mask)])[0]
    full = np.asarray(Image.open(image).convert("RGB"))
    want = cv2.resize(full, (224, 224), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255
    got = item["image"] * torch.tensor(IMAGENET_STD).view(3, 1, 1) + torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    assert np.abs(got.permute(1, 2, 0).numpy() - want).max() < 1e-5
    channel = got[0]
    _assert_aligned(channel, item["mask"])
    ys, xs = torch.meshgrid(torch.arange(224.0), torch.arange(224.0), indexing="ij")
    for grid in (ys, xs):  # centroids of the bright square and of the mask agree to a tenth of a pixel
        assert abs(float((grid * channel).sum() / channel.sum()) - float(grid[item["mask"].bool()].mean())) < 0.1


def test_opencv_resize_does_not_antialias(tmp_path: Path) -> None:
    stripes = np.zeros((63, 63, 3), np.uint8)  # x3 down: cv2 samples source pixels 3x+1 exactly
    stripes[:, ::2] = 255  # one-pixel stripes: antialiasing averages them to grey, cv2 INTER_LINEAR samples them
    path = tmp_path / "s.png"
    Image.fromarray(stripes).save(path)
    pil = ImageDataset([_sample(path)], 21, normalize="none", resize="pil")[0]["image"]
    cv = ImageDataset([_sample(path)], 21, normalize="none", resize="opencv")[0]["image"]
    assert float(pil.std()) < 0.1 and float(cv.std()) > 0.4


def test_mask_alignment_survives_reduced_jpeg_decoding(tmp_path: Path) -> None:
    image, mask = _square_pair(tmp_path, 1000, 600, (203, 417, 391, 733), ext=".jpg")
    item = ImageDataset([_sample(image, mask)], 32, normalize="none")[0]  # decoded at 1/8 scale
    _assert_aligned(item["image"][0], item["mask"])


def _assert_aligned(channel: torch.Tensor, mask: torch.Tensor) -> None:
    assert set(mask.unique().tolist()) <= {0.0, 1.0} and mask.sum() > 0
    inside = mask.bool()
    assert (channel[inside] > 0.25).all(), "a mask pixel lies off the image square"
    assert not (channel[~inside] > 0.75).any(), "an image-square pixel lies off the mask"


def test_mask_of_another_size_is_an_error_naming_both(tmp_path: Path, trees) -> None:
    image = trees.save(tmp_path / "i.png")
    mask = trees.save(tmp_path / "m.png", trees.square_mask(size=8))
    with pytest.raises(DataError) as info:
        ImageDataset([_sample(image, mask)], 16)[0]
    message = str(info.value)
    assert str(mask) in message and str(image) in message and "8x8" in message and "16x16" in message


def test_unreadable_image_raises_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"")
    with pytest.raises(DataError, match="bad.png: the file is empty"):
        ImageDataset([_sample(bad)], 8)[0]


def test_default_collate_batches_items(tmp_path: Path, trees) -> None:
    image, mask = _square_pair(tmp_path, 20, 20, (2, 2, 9, 9))
    samples = [_sample(image, mask), _sample(trees.save(tmp_path / "g.png"))]
    batch = next(iter(DataLoader(ImageDataset(samples, 10), batch_size=2)))
    assert batch["image"].shape == (2, 3, 10, 10) and batch["mask"].shape == (2, 10, 10)
    assert batch["label"].tolist() == [1, 0] and batch["index"].tolist() == [0, 1]


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"image_size": 0}, "image_size must be a positive integer"),
        ({"image_size": 8, "center_crop": 9}, "center_crop must be in"),
        ({"image_size": 8, "normalize": "zscore"}, "unknown normalisation 'zscore'; valid: imagenet"),
    ],
)
def test_bad_settings_fail_at_construction(kwargs: dict, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        ImageDataset([], **kwargs)


def test_tensor_dataset_serves_the_same_dict() -> None:
    images = torch.rand(3, 3, 8, 8)
    masks = torch.zeros(3, 8, 8)
    masks[1, 2:4, 2:4] = 255
    data = TensorImageDataset(images, masks)
    item = data[1]
    assert len(data) == 3 and torch.equal(item["image"], images[1]) and item["label"] == 1
    assert set(item["mask"].unique().tolist()) == {0.0, 1.0} and data[0]["label"] == 0
    batch = next(iter(DataLoader(data, batch_size=3)))
    assert batch["image"].shape == (3, 3, 8, 8) and batch["label"].tolist() == [0, 1, 0]
    assert TensorImageDataset(images)[2]["mask"].sum() == 0


def test_tensor_dataset_rejects_bad_shapes() -> None:
    with pytest.raises(DataError, match=r"images must be a float tensor \[N,3,S,S\]"):
        TensorImageDataset(torch.rand(3, 8, 8))
    with pytest.raises(DataError, match=r"masks must have shape"):
        TensorImageDataset(torch.rand(2, 3, 8, 8), torch.zeros(2, 4, 4))
    with pytest.raises(DataError, match=r"labels must be \[N\]"):
        TensorImageDataset(torch.rand(2, 3, 8, 8), labels=torch.tensor([0, 2]))
