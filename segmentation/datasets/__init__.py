"""The data layer: image/label I/O, DSB2018 and folder layouts, Kaggle RLE, normalisation, packed
caches, synthetic nuclei, the bundled sample, splits, augmentation and the torch ``Dataset``.

``CropDataset`` and ``build_augmentation`` (torch, albumentations) are imported on first use, so
that reading data stays light.
"""

from segmentation.datasets.dsb import default_dsb_root, load_dsb, read_dsb_sample
from segmentation.datasets.folders import load_folder_pairs
from segmentation.datasets.image_types import IMAGE_TYPES, image_type
from segmentation.datasets.io import read_image, read_labels, write_labels
from segmentation.datasets.labels import relabel_sequential, validate_labels
from segmentation.datasets.normalize import normalize_image, prepare_image, to_model_input
from segmentation.datasets.pack import load_packed, pack_samples
from segmentation.datasets.rle import (
    labels_to_rles,
    read_rle_csv,
    rle_decode,
    rle_encode,
    write_submission_csv,
)
from segmentation.datasets.sample_data import load_sample, sample_dir
from segmentation.datasets.sample_type import Sample
from segmentation.datasets.split import train_val_split
from segmentation.datasets.synthetic import synthetic_nuclei

_LAZY = {
    "CropDataset": "segmentation.datasets.torch_dataset",
    "build_augmentation": "segmentation.datasets.augment",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'segmentation.datasets' has no attribute {name!r}")


__all__ = [
    "IMAGE_TYPES",
    "CropDataset",
    "Sample",
    "build_augmentation",
    "default_dsb_root",
    "image_type",
    "labels_to_rles",
    "load_dsb",
    "load_folder_pairs",
    "load_packed",
    "load_sample",
    "normalize_image",
    "pack_samples",
    "prepare_image",
    "read_dsb_sample",
    "read_image",
    "read_labels",
    "read_rle_csv",
    "relabel_sequential",
    "rle_decode",
    "rle_encode",
    "sample_dir",
    "synthetic_nuclei",
    "to_model_input",
    "train_val_split",
    "validate_labels",
    "write_labels",
    "write_submission_csv",
]
