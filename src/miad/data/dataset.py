"""The one thin torch Dataset: read, resize, optionally centre-crop, normalise.

Images are resized to `image_size` x `image_size` without keeping the aspect ratio (the MIAD paper "zooms"
every image to the input size) in the preset's `resize` mode (miad.data.io.load_rgb: bilinear, antialiased by
PIL or not by OpenCV); masks with nearest neighbour. Both use pixel-centre alignment, so a mask region stays on
its image region at any size (OpenCV's INTER_NEAREST would not: it shifts masks by half an output pixel).
A mask whose size differs from its image's is an error, not resized: it almost always means the mask was paired
with the wrong image.

Every item is a dict {image: float32 [3,S,S], mask: float32 [S,S] in {0,1}, label: int, index: int}, which
torch's default collate batches as is; `index` points back into `samples`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from miad.data.io import RESIZE_MODES, load_mask, load_rgb, read_size
from miad.errors import ConfigError, DataError
from miad.preprocess import mean_std, normalize
from miad.types import Sample

Item = dict[str, torch.Tensor | int]


class ImageDataset(Dataset):
    """Samples on disk -> normalised tensors.

    image_size: side S of the resized square image.
    normalize: a name from `miad.preprocess.NORMALIZATIONS` (the method preset's).
    center_crop: when given, the central square of that side is cut out after resizing (S = center_crop).
    resize: image resize mode of miad.data.io.load_rgb ("pil_draft" | "pil" | "opencv").
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        image_size: int,
        normalize: str = "imagenet",
        center_crop: int | None = None,
        resize: str = "pil_draft",
    ) -> None:
        if not isinstance(image_size, int) or image_size <= 0:
            raise ConfigError(f"image_size must be a positive integer, got {image_size!r}")
        if center_crop is not None and not (0 < center_crop <= image_size):
            raise ConfigError(f"center_crop must be in [1, image_size={image_size}], got {center_crop!r}")
        mean_std(normalize)  # fail now, listing the valid names, not inside a worker
        if resize not in RESIZE_MODES:
            raise ConfigError(f"resize must be one of {', '.join(RESIZE_MODES)}, got {resize!r}")
        self.samples = list(samples)
        self.image_size = image_size
        self.normalize = normalize
        self.center_crop = center_crop
        self.resize = resize

    @property
    def output_size(self) -> int:
        return self.center_crop or self.image_size

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Item:
        sample = self.samples[index]
        rgb = np.asarray(load_rgb(sample.image, self.image_size, self.resize), dtype=np.float32) / 255.0  # [S,S,3]
        image = torch.from_numpy(rgb).permute(2, 0, 1).contiguous()  # [3,S,S]
        mask = self._mask(sample)  # [S,S]
        image, mask = self._crop(image), self._crop(mask)
        return {
            "image": normalize(image, self.normalize),
            "mask": mask,
            "label": sample.label,
            "index": index,
        }

    def _mask(self, sample: Sample) -> torch.Tensor:
        if sample.mask is None:
            return torch.zeros(self.image_size, self.image_size)
        mask_size, image_size = read_size(sample.mask), read_size(sample.image)
        if mask_size != image_size:
            raise DataError(
                f"{sample.mask}: mask is {mask_size[0]}x{mask_size[1]} but its image {sample.image} is "
                f"{image_size[0]}x{image_size[1]}; a mask must have its image's size (is it paired with the "
                "right image?): fix the pairing or resize the mask"
            )
        return torch.from_numpy(load_mask(sample.mask, self.image_size).astype(np.float32))

    def _crop(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.center_crop is None:
            return tensor
        top = (self.image_size - self.center_crop) // 2
        return tensor[..., top : top + self.center_crop, top : top + self.center_crop]


class TensorImageDataset(Dataset):
    """Already preprocessed images in memory, served with the same item dict as `ImageDataset`.

    images: float [N,3,S,S] (normalised as the consumer expects); masks: [N,S,S] (> 0 counts as defect);
    labels: [N] of 0/1 (default: 1 where the mask has a defect pixel, else 0).
    """

    def __init__(
        self, images: torch.Tensor, masks: torch.Tensor | None = None, labels: torch.Tensor | None = None
    ) -> None:
        if images.ndim != 4 or images.shape[1] != 3:
            raise DataError(f"images must be a float tensor [N,3,S,S], got shape {tuple(images.shape)}")
        n, _, h, w = images.shape
        if masks is None:
            masks = torch.zeros(n, h, w)
        if tuple(masks.shape) != (n, h, w):
            raise DataError(f"masks must have shape [N,H,W] = {(n, h, w)}, got {tuple(masks.shape)}")
        masks = (masks > 0).float()
        if labels is None:
            labels = masks.flatten(1).amax(dim=1).long()
        if tuple(labels.shape) != (n,) or not bool(((labels == 0) | (labels == 1)).all()):
            raise DataError(f"labels must be [N] = ({n},) of 0/1, got shape {tuple(labels.shape)}")
        self.images = images.float()
        self.masks = masks
        self.labels = labels.long()

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> Item:
        return {
            "image": self.images[index],
            "mask": self.masks[index],
            "label": int(self.labels[index]),
            "index": index,
        }
