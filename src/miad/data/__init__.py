"""Data layer: index a tree (MIAD / MVTec-like or a generic folder set) into `Sample`s, read images and
masks robustly, serve them as tensors, and check a tree for problems."""

from miad.data.check import CheckReport, check_tree
from miad.data.dataset import ImageDataset, TensorImageDataset
from miad.data.folder import index_folder
from miad.data.index import (
    categories_of,
    detect_format,
    index_dataset,
    load_samples,
    resolve_data_root,
    split_samples,
)
from miad.data.io import IMAGE_EXTENSIONS, is_image_file, load_mask, load_rgb
from miad.data.mvtec import index_mvtec

__all__ = [
    "IMAGE_EXTENSIONS",
    "CheckReport",
    "ImageDataset",
    "TensorImageDataset",
    "categories_of",
    "check_tree",
    "detect_format",
    "index_dataset",
    "index_folder",
    "index_mvtec",
    "is_image_file",
    "load_mask",
    "load_samples",
    "load_rgb",
    "resolve_data_root",
    "split_samples",
]
