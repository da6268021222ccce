"""The seeded-watershed instance pipeline shared by the dense families' decoders."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from segmentation.postprocess.checks import check_mask, check_plane
from segmentation.postprocess.cleanup import _check_min_size, _fill_holes, _relabel
from segmentation.postprocess.watershed import (
    _add_unseeded,
    _components,
    _label_seeds,
    _seeded_watershed,
)


def watershed_instances(
    surface: np.ndarray,
    seed_mask: np.ndarray,
    mask: np.ndarray,
    *,
    min_seed_size: int = 1,
    min_size: int = 0,
    unseeded: bool = True,
    fill_holes: bool = True,
    merge: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """Seeds, watershed and clean-up in one call.

    Steps: seeds = 4-connected components of ``seed_mask & mask`` of at least ``min_seed_size``
    pixels; if ``unseeded``, every mask component without a seed (of at least ``min_size``
    pixels) becomes a seed too; watershed of ``surface`` from the seeds inside ``mask``; then
    ``merge(labels)`` when given; hole filling when ``fill_holes``; objects below ``min_size``
    dropped and the rest numbered 1..N.

    Args:
        surface: ``(H, W)`` real array flooded from low to high values, free of NaN.
        seed_mask: ``(H, W)`` bool, where seeds may lie.
        mask: ``(H, W)`` bool, the pixels that belong to some object.
        min_seed_size: smaller seeds are dropped (pixels).
        min_size: smaller objects are dropped (pixels).
        unseeded: make seedless mask components objects of their own.
        fill_holes: fill background holes enclosed by one object.
        merge: ``(H, W) int32 labels -> (H, W) int32 labels`` applied after the watershed, e.g.
            :func:`~segmentation.postprocess.merge.merge_weak_boundaries` with its maps bound.

    Returns:
        ``(H, W)`` ``int32`` label image numbered 1..N, 0 = background. Inputs are not modified.
    """
    surface = check_plane("surface", surface)
    seed_mask = check_mask("seed_mask", seed_mask, surface.shape)
    mask = check_mask("mask", mask, surface.shape)
    min_seed_size = _check_min_size(min_seed_size)
    min_size = _check_min_size(min_size)
    seeds = _label_seeds(seed_mask & mask, min_seed_size)
    components = _components(mask)
    if unseeded:
        seeds = _add_unseeded(seeds, mask, min_size, components)
    labels = _seeded_watershed(surface, seeds, mask, components)
    if merge is not None:
        labels = merge(labels)
    if fill_holes:
        labels = _fill_holes(labels)
    return _relabel(labels, min_size)
