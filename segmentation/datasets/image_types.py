"""A simple rule that sorts images into fluorescence, brightfield and histology.

Rule (on at most ~65,000 pixels sampled on a regular grid):

1. Colour: the mean spread between the largest and smallest channel of a pixel, divided by the
   image's range (99.9th minus 0.1st percentile of all values), is above ``COLOUR_SPREAD`` (0.04)
   -> ``"histology"`` (stained tissue such as H&E). Gray images and gray-as-RGB images have no
   spread.
2. Gray, bright background: the median (background dominates most images) sits in the upper part
   of that range (``(median - p0.1) / (p99.9 - p0.1) > BRIGHT_BACKGROUND``, 0.5) ->
   ``"brightfield"``.
3. Otherwise (dark background, bright nuclei) -> ``"fluorescence"``.

On DSB2018 stage1_train it gives 541 fluorescence, 16 brightfield and 107 histology images
(see ``tests/test_datasets_image_types.py``); the purple-stained brightfield images of that set
count as histology, which is what they look like to a network. The margins there are wide: the
colour spread is 0 for every gray image and at least 0.067 for every coloured one; the background
position is at most 0.19 for fluorescence and at least 0.86 for brightfield images.
"""

from __future__ import annotations

import numpy as np

IMAGE_TYPES = ("fluorescence", "brightfield", "histology")
COLOUR_SPREAD = 0.04
BRIGHT_BACKGROUND = 0.5
_MAX_PIXELS = 65_536


def image_type(image: np.ndarray) -> str:
    """Classify an image as ``"fluorescence"``, ``"brightfield"`` or ``"histology"``.

    Args:
        image: ``(H, W, C)`` (``C`` in ``{1, 3}``) or ``(H, W)`` array, any real dtype, as read
            from disk (not normalised, not inverted).

    Returns:
        One of :data:`IMAGE_TYPES`, by the rule in the module docstring. A constant image is
        ``"fluorescence"``.
    """
    if not isinstance(image, np.ndarray) or image.dtype.kind not in "uif":
        raise TypeError(
            f"image must be a numpy array of real numbers, got {getattr(image, 'dtype', type(image))}"
        )
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3) or image.size == 0:
        raise ValueError(f"image must be (H, W) or (H, W, C) with C in {{1, 3}}, got {image.shape}")
    spread, background = appearance(image)
    if spread > COLOUR_SPREAD:
        return "histology"
    if background > BRIGHT_BACKGROUND:
        return "brightfield"
    return "fluorescence"


def appearance(image: np.ndarray) -> tuple[float, float]:
    """The two numbers of the rule: colour spread and background position.

    Args:
        image: ``(H, W, C)`` array, ``C`` in ``{1, 3}``, any real dtype (checked by the caller).

    Returns:
        ``(spread, background)``: the mean per-pixel spread between the largest and smallest
        channel over the image's range (0 for gray images), and the position of the median
        intensity within that range (0 = dark background, 1 = bright). ``(0.0, 0.0)`` for a
        constant image.
    """
    step = max(1, int(np.ceil(np.sqrt(image.shape[0] * image.shape[1] / _MAX_PIXELS))))
    pixels = image[::step, ::step].reshape(-1, image.shape[2]).astype(np.float32)
    low, high = np.percentile(pixels, [0.1, 99.9])
    value_range = float(high - low)
    if value_range <= 0:
        return 0.0, 0.0
    spread = 0.0
    if pixels.shape[1] == 3:
        spread = float(np.mean(pixels.max(axis=1) - pixels.min(axis=1))) / value_range
    median = float(np.median(pixels.mean(axis=1)))
    return spread, (median - low) / value_range
