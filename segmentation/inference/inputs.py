"""Images going into the network: validation, channel choice, rescaling and normalisation.

Channel choice (documented in :class:`~segmentation.inference.options.SegmentOptions`): a gray image
is replicated to the network's three input channels, RGB is used as is, alpha is dropped; with
``channel=c`` one channel of a multi-channel image is used as gray.

Normalisation statistics (the percentile range) come from the whole image, never from a tile, so
that tiles of one image are scaled alike; :func:`normalized_window` then normalises any window of
the image (padding beyond its bottom/right edge) on the fly, so that a large image is never held as
``(3, H, W)`` float32.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from segmentation.datasets.normalize import CLIP_HIGH, CLIP_LOW


def as_image_array(image: np.ndarray | str | os.PathLike, channel: int | None = None) -> np.ndarray:
    """A path or array -> ``(H, W, C)`` array with ``C`` in ``{1, 3}``.

    Args:
        image: ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)`` array of integer or float
            dtype (alpha, the 4th channel, is dropped), any ``(H, W, C)`` when ``channel`` is given,
            or a PNG/TIFF path (8/16-bit, gray/RGB/RGBA; see
            :func:`segmentation.datasets.io.read_image`).
        channel: ``None`` keeps gray/RGB; an int picks that channel as a gray image.

    Returns:
        ``(H, W, C)`` array (a view of the input where possible; never modified), same dtype.

    Raises:
        TypeError: not an array or path, or a bool/complex/object dtype.
        ValueError: a 3-D stack or other shape, an empty image, NaN or infinite values, a channel
            index out of range.
        FileNotFoundError: a path that does not exist.
    """
    if isinstance(image, str | os.PathLike):
        from segmentation.datasets.io import read_image

        image = read_image(Path(image))
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array or a file path, got {type(image).__name__}")
    if image.dtype.kind not in "uif":
        raise TypeError(
            f"image must hold real numbers (uint8, uint16, float32...), got {image.dtype}; "
            "convert with image.astype(np.float32)"
        )
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or (channel is None and image.shape[2] not in (1, 3, 4)):
        raise ValueError(
            f"image must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got shape {image.shape}; "
            "3-D stacks are not supported: segment one plane at a time (channels first? use "
            "np.moveaxis(image, 0, -1); several channels? pass SegmentOptions(channel=c))"
        )
    if min(image.shape[:2]) < 1:
        raise ValueError(f"image is empty (shape {image.shape})")
    if channel is not None:
        if channel >= image.shape[2]:
            raise ValueError(
                f"channel {channel} requested but the image has {image.shape[2]} channel(s) "
                f"(shape {image.shape}); channels are numbered from 0"
            )
        image = image[:, :, channel : channel + 1]
    elif image.shape[2] == 4:
        image = image[:, :, :3]
    if image.dtype.kind == "f" and not np.isfinite(image).all():
        bad = int(np.count_nonzero(~np.isfinite(image)))
        raise ValueError(
            f"image contains {bad} NaN or infinite values (shape {image.shape}); replace them "
            "first, e.g. np.nan_to_num(image, nan=0.0)"
        )
    return image


def scaled_shape(shape: tuple[int, int], factor: float) -> tuple[int, int]:
    """``(H, W)`` resized by ``factor``, each side rounded and at least 1 pixel."""
    return tuple(max(1, int(round(s * factor))) for s in shape[:2])


def resize_image(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize an ``(H, W, C)`` image to ``shape`` (area averaging when shrinking, else bilinear).

    Returns a new ``(h, w, C)`` array of the input's dtype (float inputs come back float32).
    """
    if tuple(image.shape[:2]) == tuple(shape):
        return image
    src = image if image.dtype in (np.uint8, np.uint16) else image.astype(np.float32)
    shrink = shape[0] * shape[1] < image.shape[0] * image.shape[1]
    out = cv2.resize(
        np.ascontiguousarray(src),
        (int(shape[1]), int(shape[0])),
        interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR,
    )
    return out.reshape(int(shape[0]), int(shape[1]), image.shape[2])


def resize_labels(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an ``(h, w)`` int32 label image to ``shape`` (``(H, W)``)."""
    if tuple(labels.shape) == tuple(shape):
        return labels
    rows = np.minimum((np.arange(shape[0]) + 0.5) * labels.shape[0] / shape[0], labels.shape[0] - 1)
    cols = np.minimum((np.arange(shape[1]) + 0.5) * labels.shape[1] / shape[1], labels.shape[1] - 1)
    return labels[rows.astype(np.intp)[:, None], cols.astype(np.intp)[None, :]]


def intensity_range(image: np.ndarray, low: float, high: float) -> tuple[float, float]:
    """Whole-image normalisation range: the ``low``/``high`` percentiles over all channels.

    Same rule as :func:`segmentation.datasets.normalize.normalize_image`: when the percentiles
    coincide, the ``min .. max`` range is used; a constant image gives ``lo == hi`` (it normalises
    to zeros).

    Args:
        image: ``(H, W, C)`` real array without NaN.
        low, high: percentiles, ``0 <= low < high <= 100``.

    Returns:
        ``(lo, hi)`` floats.
    """
    if not 0.0 <= low < high <= 100.0:
        raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, got {low}, {high}")
    lo, hi = (float(v) for v in np.percentile(image, [low, high]))
    if hi <= lo:
        lo, hi = float(image.min()), float(image.max())
    return lo, hi


def normalized_window(
    image: np.ndarray, lo: float, hi: float, y0: int, x0: int, height: int, width: int
) -> np.ndarray:
    """Normalised network input of one window of an image.

    The window ``[y0:y0 + height, x0:x0 + width]`` may extend beyond the image's bottom/right
    edge: the missing part is mirrored (``reflect``; ``edge`` for a 1-pixel side).

    Args:
        image: ``(H, W, C)`` array, ``C`` in ``{1, 3}``.
        lo, hi: the whole image's range (:func:`intensity_range`).
        y0, x0, height, width: the window.

    Returns:
        New ``(3, height, width)`` float32 array: ``(value - lo) / (hi - lo)`` clipped to
        ``[CLIP_LOW, CLIP_HIGH]`` as in training, gray replicated to three channels; zeros when
        ``hi <= lo``.
    """
    crop = image[y0 : y0 + height, x0 : x0 + width]
    if hi > lo:
        out = crop.astype(np.float32)
        out -= np.float32(lo)
        out *= np.float32(1.0 / (hi - lo))
        np.clip(out, CLIP_LOW, CLIP_HIGH, out=out)
    else:
        out = np.zeros(crop.shape, np.float32)
    pad_h, pad_w = height - out.shape[0], width - out.shape[1]
    if pad_h or pad_w:
        for axis, pad in ((0, pad_h), (1, pad_w)):
            if pad:
                widths = [(0, 0)] * 3
                widths[axis] = (0, pad)
                mode = "reflect" if out.shape[axis] > 1 else "edge"
                out = np.pad(out, widths, mode=mode)
    chw = np.moveaxis(out, 2, 0)
    if chw.shape[0] == 1:
        chw = np.broadcast_to(chw, (3, height, width))
    return np.ascontiguousarray(chw, dtype=np.float32)
