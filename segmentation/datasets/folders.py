"""A folder of images with a folder of label images, matched by file stem (StarDist/Cellpose layout).

``images/a.png`` pairs with ``labels/a.tif`` (any supported suffix on either side). Cellpose names
its label files ``a_masks.png``: pass ``label_suffix="_masks"``.
"""

from __future__ import annotations

import os
from pathlib import Path

from segmentation.datasets.io import IMAGE_SUFFIXES, LABEL_SUFFIXES, read_image, read_labels
from segmentation.datasets.labels import validate_labels
from segmentation.datasets.sample_type import Sample


def _files_by_stem(folder: Path, suffixes: tuple[str, ...], strip: str = "") -> dict[str, Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"folder not found: {folder}")
    found: dict[str, Path] = {}
    duplicates = []
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.suffix.lower() not in suffixes or path.name.startswith("."):
            continue
        stem = path.stem
        if strip:
            if not stem.endswith(strip):
                continue
            stem = stem[: -len(strip)]
        if stem in found:
            duplicates.append(f"{found[stem].name} / {path.name}")
        found[stem] = path
    if duplicates:
        raise ValueError(
            f"{folder} holds several files with the same stem: {duplicates}; keep one per stem"
        )
    return found


def load_folder_pairs(
    image_dir: str | os.PathLike,
    label_dir: str | os.PathLike,
    *,
    label_suffix: str = "",
) -> list[Sample]:
    """Read every image of ``image_dir`` with the label image of the same stem in ``label_dir``.

    Args:
        image_dir: folder of images (PNG, JPEG, BMP, GIF, TIFF).
        label_dir: folder of label images (PNG or TIFF), one per image.
        label_suffix: text after the image stem in label file names (``"_masks"`` for Cellpose).

    Returns:
        One :class:`Sample` per pair, sorted by stem: ``(H, W, C)`` uint8/uint16 image and
        ``(H, W)`` int32 labels as stored (not renumbered).

    Raises:
        FileNotFoundError: a folder is missing.
        ValueError: no image found, stems present on only one side (all listed), duplicate stems,
            or a label image whose shape differs from its image.
    """
    image_dir, label_dir = Path(image_dir), Path(label_dir)
    images = _files_by_stem(image_dir, IMAGE_SUFFIXES)
    labels = _files_by_stem(label_dir, LABEL_SUFFIXES, strip=label_suffix)
    if not images:
        raise ValueError(f"no image file ({', '.join(IMAGE_SUFFIXES)}) in {image_dir}")
    only_images = sorted(set(images) - set(labels))
    only_labels = sorted(set(labels) - set(images))
    if only_images or only_labels:
        raise ValueError(
            f"images and labels do not pair up by stem (label_suffix={label_suffix!r}): "
            f"images without labels in {image_dir}: {only_images}; labels without images in "
            f"{label_dir}: {only_labels}. Rename or remove them so that every stem is on both sides"
        )
    samples = []
    for stem in sorted(images):
        image = read_image(images[stem])
        label_image = read_labels(labels[stem])
        try:
            validate_labels(label_image, image.shape)
        except ValueError as err:
            raise ValueError(f"{labels[stem]} vs {images[stem]}: {err}") from err
        samples.append(Sample(name=stem, image=image, labels=label_image))
    return samples
