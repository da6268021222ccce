"""Pictures for people: nucleus outlines drawn over the image."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from skimage.segmentation import find_boundaries

from segmentation.datasets.normalize import normalize_image


def overlay_outlines(
    image: np.ndarray, labels: np.ndarray, color: tuple[int, int, int] = (255, 215, 0)
) -> np.ndarray:
    """Draw the outline of every nucleus over the image.

    Args:
        image: ``(H, W)`` or ``(H, W, C)`` image, any real dtype (``C`` in 1, 3 or 4).
        labels: ``(H, W)`` integer label image of the same height and width.
        color: RGB outline colour.

    Returns:
        ``(H, W, 3)`` uint8 RGB picture (the image normalised to its 1-99.8 percentiles).
    """
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    if image.shape[:2] != np.shape(labels):
        raise ValueError(
            f"image {image.shape[:2]} and labels {np.shape(labels)} must have the same height "
            "and width"
        )
    norm = np.clip(normalize_image(image), 0.0, 1.0)
    rgb = (np.repeat(norm, 3, axis=2) if norm.shape[2] == 1 else norm) * 255
    out = rgb.astype(np.uint8)
    out[find_boundaries(labels, mode="inner")] = color
    return out


def write_overlay(path: str | os.PathLike, image: np.ndarray, labels: np.ndarray) -> Path:
    """Write :func:`overlay_outlines` of ``image`` and ``labels`` as an RGB PNG; returns the path.

    Args:
        path: destination PNG; parent folders are created. Written atomically: a failed write
            leaves no truncated file under ``path``.
        image: ``(H, W)`` or ``(H, W, C)`` image, any real dtype.
        labels: ``(H, W)`` integer label image.

    Raises:
        segmentation.atomic.OutputError: the file cannot be written (message names path and fix).
    """
    from PIL import Image

    from segmentation.atomic import atomic_write

    rgb = overlay_outlines(image, labels)
    with atomic_write(path, "wb") as f:
        Image.fromarray(rgb).save(f, format="PNG")
    return Path(path)
