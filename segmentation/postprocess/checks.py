"""Input checks shared by the decoders: dense maps, surfaces, seeds and masks.

Every check returns a safe view of its input (never a modified one) or raises an error that names
the shape or value that is wrong and how to fix it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def check_maps(maps: np.ndarray, channels: Sequence[str], family: str) -> np.ndarray:
    """Validate raw dense maps and return them as ``float32`` ``(C, H, W)``.

    Args:
        maps: ``(C, H, W)`` real-valued array, ``C == len(channels)``.
        channels: names of the expected channels, in order (used in the error message).
        family: family name for the error message, e.g. ``"unet"``.

    Returns:
        ``(C, H, W)`` ``float32`` array: the input itself when it already is ``float32`` (it is
        never modified), else a converted copy.

    Raises:
        TypeError: not array-like of real numbers.
        ValueError: wrong number of dimensions or channels, or NaN/inf values.
    """
    arr = np.asarray(maps)
    if arr.dtype.kind not in "fiub":
        raise TypeError(
            f"{family} maps must be a real-valued (C, H, W) array, got dtype {arr.dtype}; "
            "convert with np.asarray(maps, dtype=np.float32)"
        )
    expected = f"({len(channels)}, H, W) with channels {tuple(channels)}"
    if arr.ndim != 3:
        raise ValueError(
            f"{family} maps must have shape {expected}, got {arr.ndim}-D shape {arr.shape}"
            + ("; drop the batch axis with maps[0]" if arr.ndim == 4 and arr.shape[0] == 1 else "")
        )
    if arr.shape[0] != len(channels):
        hint = ""
        if arr.shape[-1] == len(channels):
            hint = "; the channel axis looks last: use np.moveaxis(maps, -1, 0)"
        raise ValueError(
            f"{family} maps must have shape {expected}, got {arr.shape[0]} channels in shape "
            f"{arr.shape}{hint}"
        )
    arr = arr.astype(np.float32, copy=False)
    # NaN propagates through min/max and inf shows up in them: two reductions, no temporaries.
    if arr.size and not (np.isfinite(arr.min()) and np.isfinite(arr.max())):
        bad = [name for name, ch in zip(channels, arr, strict=True) if not np.isfinite(ch).all()]
        raise ValueError(
            f"{family} maps contain NaN or inf values in channel(s) {bad}; check the network "
            "outputs (e.g. np.nan_to_num(maps) if a few pixels are affected)"
        )
    return arr


def check_plane(name: str, array: np.ndarray, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Check that ``array`` is a 2-D real array without NaN (and of ``shape`` when given).

    Returns the array as ``float64`` (a converted copy unless it already is), never modified.
    """
    arr = np.asarray(array)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{name} must be a real-valued (H, W) array, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (H, W) array, got shape {arr.shape}")
    if shape is not None and arr.shape != tuple(shape):
        raise ValueError(f"{name} has shape {arr.shape} but must match the shape {tuple(shape)}")
    arr = arr.astype(np.float64, copy=False)
    if arr.size and not (np.isfinite(arr.min()) and np.isfinite(arr.max())):
        raise ValueError(
            f"{name} contains NaN or inf values; replace them first, e.g. np.nan_to_num({name})"
        )
    return arr


def check_mask(name: str, mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Check that ``mask`` is a 2-D boolean (or 0/1 integer) array of ``shape``; return it as bool."""
    arr = np.asarray(mask)
    if arr.shape != tuple(shape):
        raise ValueError(f"{name} has shape {arr.shape} but must match the shape {tuple(shape)}")
    if arr.dtype == bool:
        return arr
    if arr.dtype.kind in "iu" and arr.size and (arr.min() < 0 or arr.max() > 1):
        raise ValueError(
            f"{name} must be a boolean mask, got integer values outside {{0, 1}}; "
            f"pass e.g. {name} > 0"
        )
    if arr.dtype.kind not in "iub":
        raise TypeError(f"{name} must be a boolean (H, W) mask, got dtype {arr.dtype}")
    return arr.astype(bool)
