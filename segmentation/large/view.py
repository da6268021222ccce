"""The nuclear view of a whole image, decided once before its blocks are segmented.

``segment()`` decides per image what the network sees (:mod:`segmentation.datasets.nuclear_view`:
a fluorescence composite through its blue channel, stained tissue as the model was trained) and
which network sees it (a model's route for stained tissue). A block of a whole slide is not an
image: a block of dense tissue can look like a dark-background composite. So ``segment_large``
decides once, from patches spread over the whole image, and the blocks follow that decision (they
skip the per-image rule). Stained tissue seen as haematoxylin density is normalised by the whole
image's density, estimated from the same patches (the background level and the percentile range
of the density; exact when the patches cover the image, up to 16 blocks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
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


@dataclass(frozen=True)
class ImageView:
    """What the blocks of one image show which network (decided once, :func:`whole_image_view`).

    Attributes:
        options: the caller's options, with ``channel=2`` for a fluorescence composite.
        route: the kind of image (``"stained"``) whose network of its own segments the blocks
            (:attr:`~segmentation.inference.SegmentationModel.routes`), or ``None``: the model's.
        density_offset: stained tissue seen as haematoxylin density: the whole image's background
            density subtracted in every block (:func:`~segmentation.datasets.nuclear_view.
            hematoxylin`); ``None``: the pixels as read.
        intensity: the view's normalisation range ``(lo, hi)`` estimated from the sampled
            patches, where the view is not the pixels as read (``None``: the statistics pass's).
    """

    options: SegmentOptions
    route: str | None = None
    density_offset: float | None = None
    intensity: tuple[float, float] | None = None


def whole_image_view(
    source: ImageSource, grid: BlockGrid, options: SegmentOptions, model: Any
) -> ImageView:
    """The whole image's view and network (the blocks then skip the per-image rule).

    Args:
        source: the image.
        grid: its block grid (for where to sample).
        options: the caller's options.
        model: the :class:`~segmentation.inference.SegmentationModel` (its routes, and the
            ``data.stained_view`` and normalisation of the network chosen).

    Returns:
        An :class:`ImageView`: ``options`` unchanged (gray images, a channel already chosen,
        stained tissue seen as RGB, a composite without blue signal) or with ``channel=2`` (a
        fluorescence composite: its blue channel); for stained tissue, the network that
        ``segment()`` would pick for it, and the haematoxylin density's background and
        normalisation range when that network sees the density.
    """
    from segmentation.datasets.nuclear_view import (
        MIN_BLUE,
        hematoxylin_offset,
        raw_hematoxylin,
        recipe_stained_view,
        view_kind,
    )
    from segmentation.inference.inputs import intensity_range

    if options.channel is not None or source.channels < 3:
        return ImageView(options)
    pixels = sample_pixels(source, grid)
    side = math.isqrt(len(pixels))
    square = pixels[: side * side].reshape(side, side, 3)
    kind = view_kind(square)
    if kind == "composite":
        peaks = np.percentile(pixels, 99.9, axis=0)
        if peaks[2] >= MIN_BLUE * max(float(peaks.max()), 1e-12):
            return ImageView(replace(options, channel=2))
    if kind != "stained":
        return ImageView(options)
    network = model.for_image(square, options.stained_view)
    route = kind if network is not model else None
    if (options.stained_view or recipe_stained_view(network.recipe)) != "hematoxylin":
        return ImageView(options, route)
    density = raw_hematoxylin(pixels.reshape(-1, 1, 3))
    offset = hematoxylin_offset(density)
    seen = np.clip(density - np.float32(offset), 0.0, None)
    lo, hi = intensity_range(seen, network.normalization["low"], network.normalization["high"])
    return ImageView(options, route, offset, (lo, hi))
