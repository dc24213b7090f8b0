"""Images for people: heat-map overlays and binary masks at the input image's own size (capped)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from miad.data.io import load_rgb, read_size

MAX_SIDE = 1024  # overlays of huge photos are written at most this large


def _display_size(path: Path) -> tuple[int, int]:
    w, h = read_size(path)
    scale = min(1.0, MAX_SIDE / max(w, h))
    return max(1, round(w * scale)), max(1, round(h * scale))


def normal_color_range(pixel_quantiles: list[float] | None) -> tuple[float, float] | None:
    """Heat-map scale from held-out normal pixels' quantiles: median -> 0, held-out maximum -> 1."""
    if not pixel_quantiles:
        return None
    lo, hi = pixel_quantiles[len(pixel_quantiles) // 2], pixel_quantiles[-1]
    return lo, max(hi, lo + 1e-12)


def colorize(amap: np.ndarray, value_range: tuple[float, float] | None) -> np.ndarray:
    """[H,W] scores -> [H,W,3] uint8 'jet' colours; the range defaults to the map's own min..max."""
    from matplotlib import colormaps  # here: matplotlib takes a while to import; only colouring needs it

    lo, hi = value_range if value_range else (float(amap.min()), float(amap.max()))
    scaled = np.clip((amap - lo) / max(hi - lo, 1e-12), 0, 1)
    return (colormaps["jet"](scaled)[..., :3] * 255).astype(np.uint8)


def save_overlay(image_path: Path, amap: np.ndarray, out: Path, value_range: tuple[float, float] | None,
                 alpha: float = 0.45) -> None:
    size = _display_size(image_path)
    Image.fromarray(overlay(np.asarray(load_rgb(image_path, size)), amap, value_range, alpha)).save(out)


def overlay(rgb: np.ndarray, amap: np.ndarray, value_range: tuple[float, float] | None,
            alpha: float = 0.45) -> np.ndarray:
    """uint8 [H,W,3] image blended with the 'jet' colours of `amap` (resized bilinearly to the image)."""
    h, w = rgb.shape[:2]
    heat = Image.fromarray(colorize(amap.astype(np.float32), value_range)).resize((w, h), Image.Resampling.BILINEAR)
    blend = (1 - alpha) * rgb.astype(np.float32) + alpha * np.asarray(heat, dtype=np.float32)
    return blend.clip(0, 255).astype(np.uint8)


def save_mask(image_path: Path, mask: np.ndarray, out: Path) -> None:
    size = _display_size(image_path)
    Image.fromarray(mask.astype(np.uint8) * 255).resize(size, Image.Resampling.NEAREST).save(out)
