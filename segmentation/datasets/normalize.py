"""Percentile normalisation of images to float32 and conversion to the network's layout.

One joint percentile range is taken over all channels, so that the colours of H&E images keep their
balance. The ``low`` and ``high`` percentiles map to 0 and 1; values beyond are clipped to
``[CLIP_LOW, CLIP_HIGH]`` so that a few hot pixels of 16-bit data cannot dominate. When the two
percentiles coincide (an image that is mostly one value), the full ``min .. max`` range is used
instead; a constant image becomes all zeros (never NaN).
"""

from __future__ import annotations

import numpy as np

CLIP_LOW = -0.2
CLIP_HIGH = 1.2


def normalize_image(image: np.ndarray, low: float = 1.0, high: float = 99.8) -> np.ndarray:
    """Scale an image so that its ``low``/``high`` percentiles map to 0/1.

    Args:
        image: ``(H, W, C)`` or ``(H, W)`` array of any real dtype (``uint8``, ``uint16``,
            ``float32``...), without NaN or infinity.
        low: lower percentile in ``[0, 100)``.
        high: upper percentile in ``(low, 100]``.

    Returns:
        New ``(H, W, C)`` ``float32`` array (``C = 1`` for a 2-D input) with values in
        ``[CLIP_LOW, CLIP_HIGH]``; all zeros for a constant image. The input is not modified.

    Raises:
        TypeError: not a numpy array, or a bool/complex/object dtype.
        ValueError: wrong number of dimensions, empty image, bad percentiles, NaN or infinity.
    """
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array, got {type(image).__name__}")
    if image.dtype.kind not in "uif":
        raise TypeError(
            f"image must hold real numbers (uint8, uint16, float32...), got {image.dtype}; "
            "convert with image.astype(np.float32)"
        )
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3:
        raise ValueError(
            f"image must be (H, W) or (H, W, C), got shape {image.shape}; pass one 2-D image "
            "at a time"
        )
    if image.size == 0:
        raise ValueError(f"image is empty (shape {image.shape})")
    if not 0.0 <= low < high <= 100.0:
        raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, got {low}, {high}")
    if image.dtype.kind == "f" and not np.isfinite(image).all():
        raise ValueError(
            f"image contains {int(np.count_nonzero(~np.isfinite(image)))} NaN or infinite "
            "values; replace them first, e.g. np.nan_to_num(image, nan=0.0)"
        )
    lo, hi = np.percentile(image, [low, high])
    if hi <= lo:
        lo, hi = float(image.min()), float(image.max())
    if hi <= lo:
        return np.zeros(image.shape, dtype=np.float32)
    out = image.astype(np.float32)
    out -= np.float32(lo)
    out *= np.float32(1.0 / (hi - lo))
    np.clip(out, CLIP_LOW, CLIP_HIGH, out=out)
    return out


def to_model_input(image: np.ndarray) -> np.ndarray:
    """Channels-first float32 layout for the networks, gray replicated to 3 channels.

    Args:
        image: ``(H, W, C)`` float array with ``C`` in ``{1, 3}`` (or ``(H, W)``), usually the
            output of :func:`normalize_image`.

    Returns:
        New C-contiguous ``(3, H, W)`` ``float32`` array.
    """
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array, got {type(image).__name__}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3):
        raise ValueError(
            f"image must be (H, W, C) with C in {{1, 3}}, got shape {image.shape}; "
            "drop alpha with image[..., :3]"
        )
    chw = np.moveaxis(image, 2, 0)
    if chw.shape[0] == 1:
        chw = np.broadcast_to(chw, (3,) + chw.shape[1:])
    return np.array(chw, dtype=np.float32, order="C")  # always a new array


def prepare_image(image: np.ndarray) -> np.ndarray:
    """Normalise an image read from disk and lay it out for a network.

    Args:
        image: ``(H, W, C)`` or ``(H, W)`` ``uint8``/``uint16``/float image.

    Returns:
        ``(3, H, W)`` ``float32`` C-contiguous array (see :func:`normalize_image`,
        :func:`to_model_input`).
    """
    return to_model_input(normalize_image(image))
