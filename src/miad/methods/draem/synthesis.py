"""DRAEM's training-time anomaly synthesis, in torch (seedable with a torch.Generator, runs on the batch's device).

For every normal training image (values in [0, 1]):
1. with probability `rotate_probability` it is rotated by U(-rotate_degrees, rotate_degrees) (A.2.4); the
   rotated image is also the reconstruction target;
2. with probability `anomaly_probability` an anomaly is inserted: a Perlin-noise mask (lattice 2**kx x 2**ky,
   k uniform in [perlin_min_exponent, perlin_max_exponent], rotated by U(-90, 90) degrees, thresholded at 0.5)
   selects where a texture (a DTD image or a procedural texture, augmented by `n_augmentations` operations from
   A.2.4's list) is blended in: inside the mask, result = (1 - beta) * texture + beta * image with
   beta ~ U(0, beta_max); outside, the image is unchanged. An empty mask counts as no anomaly.

Random numbers are drawn on the CPU from the given generator (torch's global one when None, which the shared
training loop seeds and saves for resuming); only the pixel work runs on the images' device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from miad.data.cache import DecodedImages
from miad.data.cache_store import cache_enabled
from miad.data.io import is_image_file, load_rgb
from miad.errors import DataError
from miad.methods.draem.model import DraemConfig
from miad.methods.draem.textures import procedural_texture

Generator = torch.Generator | None


def _uniform(gen: Generator, low: float, high: float) -> float:
    return float(low + (high - low) * torch.rand((), generator=gen))


def _chance(gen: Generator, p: float) -> bool:
    return bool(torch.rand((), generator=gen) < p)


# ------------------------------------------------------------------------------------------------ masks


def perlin_noise(size: int, cells: tuple[int, int], gen: Generator, device: torch.device) -> torch.Tensor:
    """[S,S] 2-D gradient (Perlin) noise on a lattice of cells (rows, columns), roughly in [-1, 1]."""
    gy, gx = cells
    angles = 2 * math.pi * torch.rand((gy + 1, gx + 1), generator=gen)
    grads = torch.stack([torch.cos(angles), torch.sin(angles)], dim=-1).to(device)  # [gy+1,gx+1,2]
    pos = torch.arange(size, device=device, dtype=torch.float32) / size
    uy, ux = torch.meshgrid(pos * gy, pos * gx, indexing="ij")  # lattice coordinates [S,S]
    iy, ix = uy.floor().long(), ux.floor().long()
    fy, fx = uy - iy, ux - ix  # position inside the cell, [0, 1)

    def corner(dy: int, dx: int) -> torch.Tensor:
        g = grads[iy + dy, ix + dx]  # [S,S,2]
        return g[..., 0] * (fx - dx) + g[..., 1] * (fy - dy)

    def fade(t: torch.Tensor) -> torch.Tensor:
        return t * t * t * (t * (t * 6 - 15) + 10)

    wy, wx = fade(fy), fade(fx)
    top = torch.lerp(corner(0, 0), corner(0, 1), wx)
    bottom = torch.lerp(corner(1, 0), corner(1, 1), wx)
    return math.sqrt(2) * torch.lerp(top, bottom, wy)


def perlin_mask(size: int, cfg: DraemConfig, gen: Generator, device: torch.device) -> torch.Tensor:
    """[S,S] binary float mask: rotated Perlin noise above the threshold."""
    lo, hi = cfg.perlin_min_exponent, cfg.perlin_max_exponent
    ky, kx = (int(k) for k in torch.randint(lo, hi + 1, (2,), generator=gen))
    noise = perlin_noise(size, (2**ky, 2**kx), gen, device)
    angle = _uniform(gen, -cfg.perlin_rotation, cfg.perlin_rotation)
    noise = TF.rotate(noise[None], angle, interpolation=InterpolationMode.BILINEAR, fill=0.0)[0]
    return (noise > cfg.perlin_threshold).float()


# ------------------------------------------------------------------------------------------------ textures


class TextureSource:
    """Anomaly-source textures: images of a folder (searched recursively, e.g. DTD's `images/`), or procedural
    textures when `folder` is None.

    Folder images are decoded and resized once into the decoded-image cache (`miad.data.cache`: in memory up to
    its budget, else a memory-mapped file reused by later runs; all of DTD at 256 px is ~1.1 GB), filled as
    textures are drawn, so a GPU run does not wait on JPEG decoding in the training process after the first
    epochs. Where no cache can be kept (MIAD_IMAGE_CACHE=off, a read-only cache folder) each draw decodes."""

    def __init__(self, folder: str | None, resize: str = "pil_draft") -> None:
        self.folder = Path(folder).expanduser() if folder else None
        self.resize = resize  # the original resizes textures like its images: cv2.resize (data_loader.py)
        self.files: list[Path] = []
        self.decoded: dict[int, DecodedImages | None] = {}  # per side
        if self.folder is not None:
            if not self.folder.is_dir():
                raise DataError(
                    f"anomaly_source {self.folder} is not a folder; expected a folder of texture "
                    "images such as dtd/images, or leave anomaly_source unset for procedural textures"
                )
            self.files = sorted(p for p in self.folder.rglob("*") if p.is_file() and is_image_file(p))
            if not self.files:
                raise DataError(
                    f"anomaly_source {self.folder} holds no image files (searched recursively for "
                    ".png/.jpg/...); point it at the DTD images folder or unset it"
                )

    def sample(self, size: int, gen: Generator, device: torch.device) -> torch.Tensor:
        """One texture: uint8 [3,S,S] on `device`."""
        if not self.files:
            return procedural_texture(size, gen, device)
        index = int(torch.randint(len(self.files), (1,), generator=gen))
        return self._load(index, size).to(device)

    def _load(self, index: int, size: int) -> torch.Tensor:
        if size not in self.decoded:
            self.decoded[size] = DecodedImages.open(self.files, size, self.resize) if cache_enabled() else None
        cache = self.decoded[size]
        if cache is not None:
            return torch.from_numpy(np.array(cache.get(index)))  # [3,S,S], a copy: the cache stays read-only
        rgb = np.asarray(load_rgb(self.files[index], size, self.resize), dtype=np.uint8)  # [S,S,3], whole image
        return torch.from_numpy(rgb.copy()).permute(2, 0, 1).contiguous()  # [3,S,S]


def augment_texture(texture: torch.Tensor, names: tuple[str, ...], count: int, gen: Generator) -> torch.Tensor:
    """Apply `count` operations drawn without replacement from `names` to a uint8 [3,S,S] texture.

    Ranges follow the original's imgaug settings (VitjanZ/DRAEM @ 2dbf673 data_loader.py); imgaug's HSV-space
    brightness and hue/saturation additions are approximated in RGB / with torchvision's hue and saturation
    adjustments."""
    for i in torch.randperm(len(names), generator=gen)[:count].tolist():
        texture = _AUGMENT[names[i]](texture, gen)
    return texture


def _brightness(img: torch.Tensor, gen: Generator) -> torch.Tensor:
    mul, add = _uniform(gen, 0.8, 1.2), _uniform(gen, -30.0, 30.0)  # MultiplyAndAddToBrightness
    return (img.float() * mul + add).clamp(0, 255).round().to(torch.uint8)


def _colour(img: torch.Tensor, gen: Generator) -> torch.Tensor:
    hue, sat = _uniform(gen, -50.0, 50.0), _uniform(gen, -50.0, 50.0)  # AddToHueAndSaturation((-50, 50))
    img = TF.adjust_hue(img, hue / 255 * 0.5)  # imgaug maps +-255 to +-180 degrees; torchvision +-0.5 turn
    return TF.adjust_saturation(img, 1.0 + sat / 100)


def _solarize(img: torch.Tensor, gen: Generator) -> torch.Tensor:
    threshold = _uniform(gen, 32.0, 128.0)  # Solarize(p=0.5, threshold=(32, 128))
    return TF.solarize(img, threshold) if _chance(gen, 0.5) else img


_AUGMENT = {
    "posterize": lambda img, gen: TF.posterize(img, int(torch.randint(1, 9, (1,), generator=gen))),
    "sharpness": lambda img, gen: TF.adjust_sharpness(img, _uniform(gen, 0.0, 2.0)),
    "solarize": _solarize,
    "equalize": lambda img, gen: TF.equalize(img),
    "brightness": _brightness,
    "colour": _colour,
    "autocontrast": lambda img, gen: TF.autocontrast(img),
}


# ------------------------------------------------------------------------------------------------ batches


@dataclass
class SyntheticBatch:
    clean: torch.Tensor  # [B,3,S,S] normal images after the optional rotation: the reconstruction target
    augmented: torch.Tensor  # [B,3,S,S] the same with synthetic anomalies: the network input
    mask: torch.Tensor  # [B,S,S] in {0, 1}: where the anomaly is
    label: torch.Tensor  # [B] 1 where the mask is non-empty


class AnomalySynthesizer:
    """Turns a batch of normal [0, 1] images into a DRAEM training batch."""

    def __init__(self, cfg: DraemConfig) -> None:
        self.cfg = cfg
        self.source = TextureSource(cfg.anomaly_source, resize=cfg.resize)

    def __call__(self, images: torch.Tensor, gen: Generator = None) -> SyntheticBatch:
        """images: [B,3,S,S] in [0, 1]."""
        clean, augmented, masks = [], [], []
        for image in images:
            image = self._rotate(image, gen)
            mixed, mask = self._insert_anomaly(image, gen)
            clean.append(image)
            augmented.append(mixed)
            masks.append(mask)
        mask = torch.stack(masks)
        label = (mask.flatten(1).amax(1) > 0).long()
        return SyntheticBatch(torch.stack(clean), torch.stack(augmented), mask, label)

    def _rotate(self, image: torch.Tensor, gen: Generator) -> torch.Tensor:
        if not _chance(gen, self.cfg.rotate_probability):
            return image
        angle = _uniform(gen, -self.cfg.rotate_degrees, self.cfg.rotate_degrees)
        return TF.rotate(image, angle, interpolation=InterpolationMode.BILINEAR, fill=0.0)

    def _insert_anomaly(self, image: torch.Tensor, gen: Generator) -> tuple[torch.Tensor, torch.Tensor]:
        size = image.shape[-1]
        if not _chance(gen, self.cfg.anomaly_probability):
            return image, torch.zeros(size, size, device=image.device)
        texture = self.source.sample(size, gen, image.device)
        texture = augment_texture(texture, self.cfg.augmentations, self.cfg.n_augmentations, gen)
        mask = perlin_mask(size, self.cfg, gen, image.device)  # [S,S]
        beta = _uniform(gen, 0.0, self.cfg.beta_max)
        return blend(image, texture.float() / 255, mask, beta), mask


def blend(image: torch.Tensor, texture: torch.Tensor, mask: torch.Tensor, beta: float) -> torch.Tensor:
    """Inside the mask (1 - beta) * texture + beta * image; outside the image unchanged. [3,S,S] each.

    Written as image + (1 - beta) * mask * (texture - image): the same value, but exactly the input wherever
    the mask is 0 or the texture equals the image (no rounding from recombining the two terms)."""
    return image + ((1 - beta) * mask[None]) * (texture - image)
