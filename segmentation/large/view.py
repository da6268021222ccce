"""The nuclear view of a whole image, decided once before its blocks are segmented.

``segment()`` decides per image what the network sees (:mod:`segmentation.datasets.nuclear_view`:
a fluorescence composite through its blue channel, stained tissue as the model was trained). A
block of a whole slide is not an image: a block of dense tissue can look like a dark-background
composite. So ``segment_large`` decides once, from patches spread over the whole image, and the
blocks follow that decision (they skip the per-image rule).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from segmentation.inference.options import SegmentOptions
from segmentation.large.grid import BlockGrid, Box
from segmentation.large.source import ImageSource, read_window

#: Patches (at most this many, spread over the grid) and their side, in pixels.
PATCHES = 16
PATCH_SIDE = 256


def sample_pixels(source: ImageSource, grid: BlockGrid) -> np.ndarray:
    """``(N, 3)`` pixels of up to :data:`PATCHES` patches at the centres of evenly spread blocks.

    Args:
        source: a colour image (3 or 4 channels; alpha dropped).
        grid: its block grid.

    Returns:
        The patches' pixels, the source's dtype, ``N <= PATCHES * PATCH_SIDE ** 2``.
    """
    cores = list(grid.indices())
    pick = np.linspace(0, len(cores) - 1, min(PATCHES, len(cores))).round().astype(int)
    pixels = []
    for i in sorted(set(pick.tolist())):
        core = grid.core(cores[i])
        cy, cx = (core.y0 + core.y1) // 2, (core.x0 + core.x1) // 2
        half = PATCH_SIDE // 2
        y0, x0 = max(core.y0, cy - half), max(core.x0, cx - half)
        box = Box(y0, min(core.y1, y0 + PATCH_SIDE), x0, min(core.x1, x0 + PATCH_SIDE))
        pixels.append(read_window(source, box, None).reshape(-1, 3))
    return np.concatenate(pixels)


def whole_image_view(
    source: ImageSource, grid: BlockGrid, options: SegmentOptions, recipe: dict[str, Any] | None
) -> SegmentOptions:
    """``options`` with the whole image's view decided (the blocks then skip the per-image rule).

    Args:
        source: the image.
        grid: its block grid (for where to sample).
        options: the caller's options.
        recipe: the model's recipe (its ``data.stained_view``).

    Returns:
        ``options`` unchanged (gray images, a channel already chosen, stained tissue seen as
        RGB, a composite without blue signal) or with ``channel=2`` (a fluorescence composite:
        its blue channel).

    Raises:
        ValueError: stained tissue to be seen as haematoxylin density, which ``segment_large``
            cannot yet normalise over a whole image.
    """
    from segmentation.datasets.nuclear_view import (
        MIN_BLUE,
        recipe_stained_view,
        view_kind,
    )

    if options.channel is not None or source.channels < 3:
        return options
    pixels = sample_pixels(source, grid)
    side = math.isqrt(len(pixels))
    kind = view_kind(pixels[: side * side].reshape(side, side, 3))
    if kind == "composite":
        peaks = np.percentile(pixels, 99.9, axis=0)
        if peaks[2] >= MIN_BLUE * max(float(peaks.max()), 1e-12):
            return replace(options, channel=2)
    stained_view = options.stained_view or recipe_stained_view(recipe)
    if kind == "stained" and stained_view == "hematoxylin":
        raise ValueError(
            f"{source.path} is stained tissue and the model sees it as haematoxylin density, "
            "which segment_large cannot normalise over a whole image yet; use "
            "options=SegmentOptions(stained_view='rgb') (CLI: --stained-view rgb) or segment() "
            "on crops"
        )
    return options
