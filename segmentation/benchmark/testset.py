"""A test set given by path: images (flat folder or Kaggle layout) with label images or a
Kaggle solution CSV."""

from __future__ import annotations

from pathlib import Path

from segmentation.datasets.sample_type import Sample


def _image_files(folder: Path) -> dict[str, Path]:
    """``{stem: image path}`` of a flat folder, or of a Kaggle layout (``<id>/images/<id>.png``)."""
    from segmentation.datasets.folders import _files_by_stem
    from segmentation.datasets.io import IMAGE_SUFFIXES

    if not folder.is_dir():
        raise FileNotFoundError(f"test.images: folder {str(folder)!r} not found")
    found = _files_by_stem(folder, IMAGE_SUFFIXES)
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        kaggle = sub / "images"
        if kaggle.is_dir():
            files = list(_files_by_stem(kaggle, IMAGE_SUFFIXES).values())
            if len(files) != 1:
                raise ValueError(f"test.images: {kaggle} must hold exactly one image, not {files}")
            found[sub.name] = files[0]
    if not found:
        raise ValueError(
            f"test.images: no image file in {folder} (flat, or Kaggle layout <id>/images/<id>.png)"
        )
    return found


def load_test_set(images: str, labels: str) -> list[Sample]:
    """Read a test set given by path.

    Args:
        images: folder of images (PNG/TIFF/..., flat) or a Kaggle-layout folder.
        labels: folder of label images (same stems) or a Kaggle solution CSV
            (``ImageId,EncodedPixels,Height,Width``).

    Returns:
        Samples sorted by name: ``(H, W, C)`` image as read and ``(H, W)`` int32 labels.

    Raises:
        FileNotFoundError, ValueError: missing paths, images without labels (or the reverse, all
        named), a label image whose shape differs from its image.
    """
    from segmentation.datasets.folders import _files_by_stem
    from segmentation.datasets.io import LABEL_SUFFIXES, read_image, read_labels

    image_files = _image_files(Path(images))
    label_path = Path(labels)
    if label_path.is_dir():
        files = _files_by_stem(label_path, LABEL_SUFFIXES)
        names, read = set(files), lambda name: read_labels(files[name])
    elif label_path.is_file() and label_path.suffix.lower() == ".csv":
        from segmentation.datasets.rle import read_rle_csv

        decoded = read_rle_csv(label_path)
        names, read = set(decoded), decoded.__getitem__
    else:
        raise FileNotFoundError(
            f"test.labels: {labels!r} is neither a folder of label images nor a solution CSV"
        )
    missing, extra = sorted(set(image_files) - names), sorted(names - set(image_files))
    if missing or extra:
        raise ValueError(
            f"test set: {len(missing)} image(s) without labels {missing[:10]} and {len(extra)} "
            f"label image(s) without an image {extra[:10]}; give matching stems / ImageIds"
        )
    samples = []
    for name in sorted(image_files):
        image, gt = read_image(image_files[name]), read(name)
        if gt.shape != image.shape[:2]:
            raise ValueError(
                f"test set: labels of {name!r} are {gt.shape}, its image is {image.shape[:2]}"
            )
        samples.append(Sample(name=name, image=image, labels=gt))
    return samples
