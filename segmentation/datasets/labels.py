"""Validate label images and renumber them 1..N.

A label image is a 2-D integer array: 0 = background, k > 0 = object k. Boolean masks are refused
rather than guessed at: a foreground mask may hold one object or many touching ones, and only the
caller knows which (the error message gives the conversion for both readings).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_INT32_MAX = np.iinfo(np.int32).max


def validate_labels(labels: np.ndarray, image_shape: Sequence[int] | None = None) -> np.ndarray:
    """Check a label image and return it as ``int32``.

    Args:
        labels: ``(H, W)`` array of any integer dtype, values in ``0 .. 2**31 - 1``.
        image_shape: shape of the matching image, ``(H, W)`` or ``(H, W, C)``; when given, the
            label image must have the same ``H`` and ``W``.

    Returns:
        ``(H, W)`` ``int32`` array; the input itself when it is already ``int32`` (never modified),
        else a converted copy.

    Raises:
        TypeError: not a numpy array, or a bool/float/complex dtype.
        ValueError: not 2-D, negative values, values beyond int32, or a shape mismatch.
    """
    if not isinstance(labels, np.ndarray):
        raise TypeError(
            f"labels must be a numpy array, got {type(labels).__name__}; convert with "
            "np.asarray(labels, dtype=np.int32)"
        )
    if labels.dtype == bool:
        raise TypeError(
            f"labels must be an integer label image, got a bool mask of shape {labels.shape}; "
            "for one object per connected region use skimage.measure.label(mask), for a single "
            "object use mask.astype(np.int32)"
        )
    if labels.dtype.kind not in "iu":
        raise TypeError(
            f"labels must be a 2-D integer array, got {labels.dtype} with shape {labels.shape}; "
            "convert with labels.astype(np.int32) if the values are whole numbers"
        )
    if labels.ndim != 2:
        hint = (
            "; drop the channel axis with labels[..., 0]"
            if labels.ndim == 3 and labels.shape[-1] == 1
            else ""
        )
        raise ValueError(
            f"labels must be a 2-D (H, W) array, got {labels.ndim}-D with shape {labels.shape}"
            f"{hint}"
        )
    if labels.size:
        low, high = int(labels.min()), int(labels.max())
        if low < 0:
            raise ValueError(
                f"labels must be >= 0 (0 = background), found {low}; fix the negative values, "
                "e.g. np.where(labels < 0, 0, labels)"
            )
        if high > _INT32_MAX:
            raise ValueError(
                f"labels must fit in int32, found {high}; renumber them with relabel_sequential"
            )
    if image_shape is not None:
        image_shape = tuple(int(s) for s in image_shape)
        if len(image_shape) < 2 or tuple(labels.shape) != image_shape[:2]:
            raise ValueError(
                f"labels have shape {labels.shape} but the image has shape {image_shape}; "
                "they must share height and width (H, W)"
            )
    return labels if labels.dtype == np.int32 else labels.astype(np.int32)


def relabel_sequential(labels: np.ndarray) -> np.ndarray:
    """Renumber the objects of a label image to ``1..N``, keeping their relative order.

    Args:
        labels: ``(H, W)`` integer label image (validated with :func:`validate_labels`).

    Returns:
        New ``(H, W)`` ``int32`` array where the k-th smallest nonzero label becomes k and 0 stays
        0. The input is not modified.
    """
    labels = validate_labels(labels)
    if labels.size == 0:
        return labels.copy()
    max_label = int(labels.max())
    if max_label <= 4 * labels.size + 1024:  # dense lookup table: O(H*W), no sort
        present = np.bincount(labels.ravel(), minlength=max_label + 1) > 0
        present[0] = False
        lut = np.zeros(max_label + 1, dtype=np.int32)
        lut[present] = np.arange(1, int(present.sum()) + 1, dtype=np.int32)
        return lut[labels]
    values, inverse = np.unique(labels, return_inverse=True)
    start = 0 if values[0] == 0 else 1
    return (inverse.reshape(labels.shape) + start).astype(np.int32)
