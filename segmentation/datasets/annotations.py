"""A user's annotated images: a folder of images and a folder of their instance masks.

What ``segmentation finetune IMAGES MASKS`` reads. Each image ``<stem>.<ext>`` (any format
``segment()`` reads) pairs with the first of these files in the mask folder:

- ``<stem>_labels.tif`` (``.tiff``, ``.png``): written by ``segmentation segment`` or napari,
- ``<stem>_masks.tif`` (``.tiff``, ``.png``): Cellpose's saved masks,
- ``<stem>_seg.npy``: Cellpose's GUI file, a pickled dict whose ``masks`` entry holds the labels,
- ``<stem>.tif`` (``.tiff``, ``.png``): a plain label image named like the image (only in a
  folder without tagged files: a ``segment`` output folder's overlays are not masks).

Every problem is found before any training and reported at once with the names involved: a mask
folder without masks, images without masks and masks without images (listed), a mask whose size
differs from its image, and masks that are not instance labels (a 0/255 binary mask holds many
nuclei under one value: ``binary_masks=True`` splits it into connected components).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from segmentation.datasets.io import IMAGE_SUFFIXES, LABEL_SUFFIXES, read_image, read_labels
from segmentation.datasets.sample_type import Sample

#: Mask file name endings tried for an image stem, in order (see the module docstring).
MASK_TAGS = ("_labels", "_masks", "_seg", "")


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """Read one mask file: a label image (PNG/TIFF) or Cellpose's ``_seg.npy``.

    Returns:
        ``(H, W)`` int32 labels, values as stored.

    Raises:
        ValueError: an unreadable file, a ``.npy`` that is not Cellpose's dict with ``masks``,
            or labels that are not a 2-D non-negative integer plane.
    """
    from segmentation.datasets.labels import validate_labels

    path = Path(path)
    if path.suffix.lower() != ".npy":
        return read_labels(path)
    try:
        data = np.load(path, allow_pickle=True)
    except (OSError, ValueError) as err:
        raise ValueError(f"{path} is not a readable .npy file: {err}") from err
    if data.dtype == object and data.shape == ():
        data = data.item()
    if not isinstance(data, dict) or "masks" not in data:
        raise ValueError(
            f"{path} is not a Cellpose _seg.npy file (a dict with a 'masks' entry); save the "
            "labels as a .tif instead"
        )
    try:
        return validate_labels(np.asarray(data["masks"]))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: its 'masks' entry: {err}") from err


def _mask_files(folder: Path) -> dict[str, Path]:
    """``{image stem: mask file}`` by the first matching tag of :data:`MASK_TAGS`; when any file
    carries a tag (a ``segment`` output folder, Cellpose's), untagged files (overlays) are
    ignored."""
    files = [
        p
        for p in sorted(folder.iterdir())
        if p.is_file()
        and not p.name.startswith(".")
        and (p.suffix.lower() in LABEL_SUFFIXES or p.name.endswith("_seg.npy"))
    ]
    by_stem: dict[str, Path] = {}
    used: set[Path] = set()
    for tag in MASK_TAGS:
        if not tag and used:
            break
        for path in files:
            if path in used or (path.suffix == ".npy") != (tag == "_seg"):
                continue
            if tag and not path.stem.endswith(tag):
                continue
            stem = path.stem[: -len(tag)] if tag else path.stem
            if stem and stem not in by_stem:
                by_stem[stem] = path
                used.add(path)
    return by_stem


def looks_binary(labels: np.ndarray) -> bool:
    """Whether a label image is a foreground mask rather than instances: a single non-zero value
    (e.g. 255) spread over several separate regions."""
    from scipy import ndimage

    values = np.unique(labels)
    values = values[values > 0]
    if len(values) != 1:
        return False
    _, regions = ndimage.label(labels > 0)
    return regions > 1


def load_annotated_folder(
    images: str | os.PathLike, masks: str | os.PathLike, *, binary_masks: bool = False
) -> list[Sample]:
    """Read a folder of images and the folder of their instance masks (module docstring).

    Args:
        images: folder of images.
        masks: folder of mask files.
        binary_masks: masks are foreground masks (0 = background, any other value = nucleus):
            split each into its connected components (8-connected) as instances.

    Returns:
        One :class:`Sample` per image, sorted by stem: ``(H, W, C)`` image as read, ``(H, W)``
        int32 labels.

    Raises:
        FileNotFoundError: a folder is missing.
        ValueError: every problem found, in one message: no mask files, images without masks or
            masks without images (by name), size mismatches, binary masks without
            ``binary_masks``, unreadable files.
    """
    from skimage.measure import label as connected

    images, masks = Path(images), Path(masks)
    for name, folder in (("IMAGES", images), ("MASKS", masks)):
        if not folder.is_dir():
            raise FileNotFoundError(f"{name} folder not found: {folder}")
    image_files = {
        p.stem: p
        for p in sorted(images.iterdir())
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    }
    mask_files = _mask_files(masks)
    if not mask_files:
        raise ValueError(
            f"{masks} holds no mask files ({', '.join(LABEL_SUFFIXES)} label images or Cellpose "
            "_seg.npy); save one instance label image per annotated image there"
        )
    if not image_files:
        raise ValueError(f"{images} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    problems = []
    no_mask = sorted(set(image_files) - set(mask_files))
    no_image = sorted(mask_files[s].name for s in set(mask_files) - set(image_files))
    if no_mask:
        problems.append(f"images without a mask: {', '.join(no_mask)}")
    if no_image:
        problems.append(f"masks without an image: {', '.join(no_image)}")
    samples, binary = [], []
    for stem in sorted(set(image_files) & set(mask_files)):
        try:
            image = read_image(image_files[stem])
            labels = read_mask(mask_files[stem])
        except (OSError, ValueError) as err:
            problems.append(str(err))
            continue
        if labels.shape != image.shape[:2]:
            problems.append(
                f"{mask_files[stem].name} is {labels.shape[0]}x{labels.shape[1]} but "
                f"{image_files[stem].name} is {image.shape[0]}x{image.shape[1]}"
            )
            continue
        if looks_binary(labels):
            if not binary_masks:
                binary.append(mask_files[stem].name)
                continue
            labels = connected(labels > 0, connectivity=2).astype(np.int32)
        samples.append(Sample(name=stem, image=image, labels=labels))
    if binary:
        problems.append(
            f"binary masks, not instance labels (one value for many nuclei): {', '.join(binary)};"
            " give every nucleus its own value, or pass --binary-masks (binary_masks=True) to "
            "split them into connected components"
        )
    if problems:
        raise ValueError(
            f"cannot use the annotations in {images} and {masks}:\n- " + "\n- ".join(problems)
        )
    return samples
