"""Images going into the network: validation, channel choice, rescaling and normalisation.

Channel choice (:func:`as_image_array`, options ``channel`` and ``channel_axis`` of
:class:`~segmentation.inference.options.SegmentOptions`): a gray image is replicated to the
network's three input channels, RGB is used as is, alpha is dropped; with ``channel=c`` one channel
of a multi-channel image is used as gray; ``channel_axis`` says which axis holds the channels
(channels-first arrays, multi-page TIFFs). Three channels are colour only when stored as colour
pixels (an ``(H, W, 3)`` array, a file marked RGB); three channels of a channel axis (``(C, H, W)``,
an ImageJ/OME ``C`` axis) are stains of a microscope and need ``channel``, as do four channels
whose fourth is not alpha (alpha: 8-bit RGBA, or a constant channel).

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

from segmentation.datasets.io import is_alpha_channel, read_image_axes
from segmentation.datasets.normalize import CLIP_HIGH, CLIP_LOW

#: Dense networks need inputs whose sides are multiples of this (5 encoder stages).
INPUT_MULTIPLE = 32

_USE_CHANNEL = "segment(..., channel=c) or SegmentOptions(channel=c)"
_FIX_CHANNEL = (
    "e.g. segment(..., channel=0), or --channel 0 on the command line, when the nuclei are in "
    "channel 0"
)
_STACKS = "3-D stacks are not supported: segment one plane at a time"


def _channel_axis(
    shape: tuple[int, ...], channel_axis: int | None, axes: str | None, what: str
) -> int:
    """The axis (0..2) holding the channels of a 3-D image; errors name the fix."""
    if channel_axis is not None:
        if isinstance(channel_axis, bool) or not isinstance(channel_axis, int | np.integer):
            raise TypeError(f"channel_axis must be None or an int, got {channel_axis!r}")
        if not -3 <= channel_axis < 3:
            raise ValueError(
                f"channel_axis={channel_axis} is out of range for {what} of shape {shape}; use "
                "0 (channels first, (C, H, W)) or -1 (channels last, (H, W, C))"
            )
        axis = int(channel_axis) % 3
        if axes is not None and axes[axis] in "YX":
            others = [i for i, a in enumerate(axes) if a not in "YX"]
            raise ValueError(
                f"channel_axis={channel_axis} points at the {axes[axis]} axis of {what} (axes "
                f"{axes!r}, shape {shape}); its channels are axis {others[0]}: pass "
                f"channel_axis={others[0]}"
            )
        if axes is None:
            height, width = (shape[i] for i in range(3) if i != axis)
            if shape[axis] > min(height, width):
                raise ValueError(
                    f"channel_axis={channel_axis} makes {what} of shape {shape} a {height} x "
                    f"{width} image with {shape[axis]} channels, more channels than pixels along "
                    "a side; pass the axis that holds the channels (0 for (C, H, W), -1 for "
                    "(H, W, C))"
                )
        return axis
    if axes is not None:
        (axis,) = (i for i, a in enumerate(axes) if a not in "YX")
        if axes[axis] not in "SC":
            raise ValueError(
                f"{what} is a stack of {shape[axis]} planes along axis {axis} ({axes[axis]!r}: "
                f"axes {axes!r}, shape {shape}); if the planes are channels, pass "
                f"channel_axis={axis} (and channel=c to use one as the nuclear stain); else "
                f"{_STACKS}"
            )
        return axis
    if shape[0] < shape[2] and shape[2] not in (1, 3, 4):  # channels last is doubtful
        raise ValueError(
            f"{what} of shape {shape} is ambiguous: channels first (C, H, W) with {shape[0]} "
            f"channels, or channels last (H, W, C) with {shape[2]}? Pass channel_axis=0 for "
            "channels first or channel_axis=-1 for channels last (segment(..., channel_axis=0) "
            f"or SegmentOptions(channel_axis=0)); {_STACKS}"
        )
    return 2


def _stored_as_colour(axis: int, axes: str | None) -> bool:
    """Whether 3 channels along ``axis`` are the samples of colour pixels: the last axis of an
    array (``(H, W, 3)``, the layout of RGB pixels) or a file's ``S`` axis (marked RGB)."""
    return axis == 2 if axes is None else axes[axis] == "S"


def _three_channels_error(what: str, shape: tuple[int, ...], axis: int, axes: str | None) -> str:
    """The error for 3 channels that are not stored as colour (see :func:`_stored_as_colour`)."""
    if axes is None:
        layout = f"channels along axis {axis} (channels first is not how RGB pixels are stored)"
        photo = f"if it is an RGB photograph, pass np.moveaxis(image, {axis}, -1)"
    else:
        kind = "a channel axis" if axes[axis] == "C" else "pages"
        layout = f"{kind} ({axes[axis]!r}: axes {axes!r}), not the samples of an RGB file"
        photo = "if it is an RGB photograph, save it as RGB (photometric RGB, samples last)"
    return (
        f"{what} has 3 channels (shape {shape}, {layout}): separate channels of a microscope, "
        "e.g. fluorescence stains, not a colour photograph, and segmenting them as colour finds "
        "few of the nuclei. Choose the one to segment (the nuclear stain) with channel=c, c in "
        f"0..2 ({_USE_CHANNEL}), {_FIX_CHANNEL}; {photo}"
    )


def as_image_array(
    image: np.ndarray | str | os.PathLike,
    channel: int | None = None,
    channel_axis: int | None = None,
) -> np.ndarray:
    """A path or array -> ``(H, W, C)`` array with ``C`` in ``{1, 3}``: the image as segmented.

    Which axis holds the channels:

    - ``(H, W)``: none (gray); ``channel_axis`` is ignored, so that one setting serves a folder
      of gray and multi-channel files.
    - A 3-D array: ``channel_axis`` when given (``0``: ``(C, H, W)``, ``-1``: ``(H, W, C)``), else
      the last axis, unless that is doubtful: a last axis longer than the first that holds
      other than 1, 3 or 4 values (``(3, 512, 512)``: channels first, or a stack?) is an error
      asking for ``channel_axis``.
    - A file (:func:`~segmentation.datasets.io.read_image_axes`): the axis its metadata names as
      colour samples (``S``: RGB, planar RGB) or channels (``C``: ImageJ/OME hyperstacks); other
      stacks (``QYX``: plain multi-page TIFFs, ``ZYX``, ``TYX``) need ``channel_axis``, which
      counts the axes as stored (``CYX`` or ``QYX``: 0) and may not point at Y or X.

    Which channels are used:

    - ``channel=c``: channel ``c`` (from 0) as a gray image (e.g. the DNA stain); any number of
      channels.
    - ``channel=None``: 1 channel is gray; 3 are colour (RGB order) when stored as colour
      pixels: an array's last axis (``(H, W, 3)``) or a file's colour samples (``S``: marked
      RGB); 4 channels last (``(H, W, 4)``, the layout of RGBA pixels) are RGBA, alpha dropped,
      when the 4th is alpha: 8-bit (uint8) pixels, or a constant 4th channel. Anything else is
      an error asking for ``channel``: 3 channels of a channel axis (a ``(C, H, W)`` array with
      ``channel_axis=0``, an ImageJ/OME ``C`` axis, pages) are stains of a microscope, not a
      colour photograph; 4 channels whose 4th varies and is not 8-bit; 2, 5 or more channels.
      (Cellpose 4 uses the first three channels and drops the rest; here nothing is dropped
      silently.)

    Args:
        image: an array of integer or float dtype, or a PNG/TIFF path (8/16-bit, float32,
            gray/RGB/RGBA, multi-page or multi-channel TIFF).
        channel: ``None`` or the channel to use as a gray image.
        channel_axis: ``None`` or the axis of the array (as stored, for a file) holding the
            channels.

    Returns:
        ``(H, W, C)`` array, ``C`` in ``{1, 3}`` (a view of the input where possible; never
        modified), same dtype.

    Raises:
        TypeError: not an array or path, or a bool/complex/object dtype.
        ValueError: an ambiguous shape without ``channel_axis``, a stack or 4-D array, an empty
            image, NaN or infinite values, a channel index out of range, channels that need
            ``channel`` (a count other than 1 or 3, 3 channels not stored as colour, 4 channels
            whose 4th is not alpha).
        FileNotFoundError: a path that does not exist.
    """
    axes, what = None, "the image"
    if isinstance(image, str | os.PathLike):
        what = str(image)
        image, axes = read_image_axes(Path(image))
        if len(axes) != image.ndim or "Y" not in axes or "X" not in axes:
            axes = None  # no usable names: read like an array
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array or a file path, got {type(image).__name__}")
    if image.dtype.kind not in "uif":
        raise TypeError(
            f"image must hold real numbers (uint8, uint16, float32...), got {image.dtype}; "
            "convert with image.astype(np.float32)"
        )
    shape = tuple(image.shape)
    if image.ndim == 2:
        image, axis = image[:, :, None], 2
    elif image.ndim == 3:
        axis = _channel_axis(shape, channel_axis, axes, what)
        image = np.moveaxis(image, axis, -1)
    else:
        named = "" if axes is None else f" (axes {axes!r})"
        raise ValueError(
            f"{what} must be (H, W), or have one channel axis ((H, W, C), or (C, H, W) with "
            f"channel_axis=0), got shape {shape}{named}; {_STACKS}"
        )
    if min(image.shape[:2]) < 1:
        raise ValueError(f"image is empty (shape {shape})")
    count = image.shape[2]
    if channel is not None:
        if channel >= count:
            raise ValueError(
                f"channel {channel} requested but the image has {count} channel(s) "
                f"(shape {shape}, channels along axis {axis}); channels are numbered from 0"
            )
        image = image[:, :, channel : channel + 1]
    elif count == 4 and axis == 2 and axes is None and is_alpha_channel(image[:, :, 3]):
        image = image[:, :, :3]  # RGBA pixels: alpha dropped
    elif count == 4 and axis == 2 and axes is None:
        raise ValueError(
            f"{what} has 4 channels (shape {shape}, {image.dtype}, channels last) and the 4th is "
            "not alpha (alpha is the 4th channel of 8-bit RGBA pixels, or a constant one): these "
            "are 4 separate channels, e.g. fluorescence stains. Choose the one to segment (the "
            f"nuclear stain) with channel=c, c in 0..3 ({_USE_CHANNEL}), {_FIX_CHANNEL}; for "
            "an RGBA photograph of more than 8 bits, pass image[..., :3]"
        )
    elif count == 3 and not _stored_as_colour(axis, axes):
        raise ValueError(_three_channels_error(what, shape, axis, axes))
    elif count not in (1, 3):
        raise ValueError(
            f"{what} has {count} channels (shape {shape}, channels along axis {axis}); choose "
            f"the one to segment (the nuclear stain) with channel=c, c in 0..{count - 1} "
            f"({_USE_CHANNEL}), {_FIX_CHANNEL}: only 1 (gray), 3 (RGB) or RGBA pixels are used "
            "without a choice"
        )
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
