"""Seeded watershed and seed helpers.

The flooding skips what it cannot change: a connected component of the mask that holds a single
seed goes to that seed whole, and seed interiors (seed pixels whose four neighbours carry the same
seed) keep their label. The priority queue then holds only the seeds' rims and the unseeded pixels
of components shared by several seeds, with the same result as flooding everything.

The public functions validate their inputs; the ``_``-prefixed cores expect validated arrays.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import watershed as _sk_watershed

from segmentation.datasets.labels import validate_labels
from segmentation.postprocess.checks import check_mask, check_plane
from segmentation.postprocess.cleanup import _check_min_size, _relabel

_CROSS = ndi.generate_binary_structure(2, 1)


def label_seeds(seed_mask: np.ndarray, min_size: int = 1) -> np.ndarray:
    """Connected components (4-connected) of a seed mask, small ones dropped, numbered 1..N.

    Args:
        seed_mask: ``(H, W)`` bool array, True where a pixel may be a seed.
        min_size: components of fewer pixels are dropped.

    Returns:
        ``(H, W)`` ``int32`` seed label image, 0 = no seed.
    """
    if np.ndim(seed_mask) != 2:
        raise ValueError(f"seed_mask must be a 2-D (H, W) array, got shape {np.shape(seed_mask)}")
    seed_mask = check_mask("seed_mask", seed_mask, np.shape(seed_mask))
    return _label_seeds(seed_mask, _check_min_size(min_size))


def _label_seeds(seed_mask: np.ndarray, min_size: int) -> np.ndarray:
    seeds, n = ndi.label(seed_mask, structure=_CROSS, output=np.int32)
    if n and min_size > 1:
        seeds = _relabel(seeds, min_size)
    return seeds


def add_unseeded(seeds: np.ndarray, mask: np.ndarray, min_size: int = 1) -> np.ndarray:
    """Turn every connected component of ``mask`` that holds no seed into a seed of its own.

    Without this step a watershed leaves such components (typically small, isolated nuclei whose
    core is too thin to give a seed) as background.

    Args:
        seeds: ``(H, W)`` integer seed labels, 0 = no seed.
        mask: ``(H, W)`` bool mask of the pixels the watershed may flood.
        min_size: seedless components smaller than this stay background.

    Returns:
        ``(H, W)`` ``int32`` seed labels: the input seeds plus one new label (numbered after
        ``seeds.max()``) per seedless component of at least ``min_size`` pixels.
    """
    seeds = validate_labels(seeds)
    mask = check_mask("mask", mask, seeds.shape)
    return _add_unseeded(seeds, mask, _check_min_size(min_size))


def _components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """4-connected components of a mask (the connectivity the watershed floods with)."""
    return ndi.label(mask, structure=_CROSS, output=np.int32)


def _add_unseeded(
    seeds: np.ndarray, mask: np.ndarray, min_size: int, components=None
) -> np.ndarray:
    comp, n = _components(mask) if components is None else components
    out = seeds.copy()
    if n == 0:
        return out
    seeded = np.zeros(n + 1, dtype=bool)
    seeded[comp[seeds > 0]] = True
    sizes = np.bincount(comp.ravel(), minlength=n + 1)
    new = ~seeded & (sizes >= max(min_size, 1))
    new[0] = False
    if not new.any():
        return out
    lut = np.zeros(n + 1, dtype=np.int32)
    start = int(seeds.max()) if seeds.size else 0
    lut[new] = np.arange(start + 1, start + 1 + int(new.sum()), dtype=np.int32)
    extra = lut[comp]
    np.copyto(out, extra, where=extra > 0)
    return out


def seeded_watershed(
    surface: np.ndarray, seeds: np.ndarray, mask: np.ndarray | None = None
) -> np.ndarray:
    """Flood ``surface`` from ``seeds`` (4-connected), restricted to ``mask``.

    Args:
        surface: ``(H, W)`` real array; low values are flooded first (e.g. ``1 - probability`` or
            ``-energy``). Must be free of NaN.
        seeds: ``(H, W)`` integer seed labels, 0 = no seed; seeds outside ``mask`` are ignored.
        mask: ``(H, W)`` bool array of the pixels that may be labelled; ``None`` floods everywhere.

    Returns:
        ``(H, W)`` ``int32`` label image: every mask pixel connected to a seed takes the label of the
        seed whose basin it falls in (as ``skimage.segmentation.watershed``); other pixels are 0.
        Inputs are not modified.

    Example:
        >>> import numpy as np
        >>> surface = np.array([[0.0, 0.5, 1.0, 0.2, 0.0]])
        >>> seeds = np.array([[1, 0, 0, 0, 2]])
        >>> seeded_watershed(surface, seeds).tolist()
        [[1, 1, 2, 2, 2]]
    """
    surface = check_plane("surface", surface)
    seeds = validate_labels(seeds)
    if seeds.shape != surface.shape:
        raise ValueError(
            f"seeds have shape {seeds.shape} but surface has shape {surface.shape}; they must match"
        )
    mask = np.ones(surface.shape, bool) if mask is None else check_mask("mask", mask, surface.shape)
    return _seeded_watershed(surface, seeds, mask)


def _seeded_watershed(
    surface: np.ndarray, seeds: np.ndarray, mask: np.ndarray, components=None
) -> np.ndarray:
    markers = np.where(mask, seeds, 0)
    has = markers > 0
    if not has.any():
        return np.zeros(surface.shape, dtype=np.int32)
    comp, n = _components(mask) if components is None else components
    # Smallest and largest seed label in every mask component: equal means a single seed.
    low = np.full(n + 1, np.iinfo(np.int32).max, dtype=np.int32)
    high = np.zeros(n + 1, dtype=np.int32)
    np.minimum.at(low, comp[has], markers[has])
    np.maximum.at(high, comp[has], markers[has])
    single = (high > 0) & (low == high)
    single[0] = False
    out = np.where(single[comp], high[comp], 0).astype(np.int32)
    shared = (high > 0) & ~single
    shared[0] = False
    if shared.any():
        region = shared[comp]
        inner = _interior(markers) & region
        flood = region & ~inner
        flooded = _sk_watershed(surface, np.where(flood, markers, 0), mask=flood)
        np.copyto(out, np.where(inner, markers, flooded), where=region, casting="unsafe")
    return out


def _interior(seeds: np.ndarray) -> np.ndarray:
    """Seed pixels whose four neighbours (inside the image) carry the same seed."""
    inner = seeds > 0
    inner[1:, :] &= seeds[1:, :] == seeds[:-1, :]
    inner[:-1, :] &= seeds[:-1, :] == seeds[1:, :]
    inner[:, 1:] &= seeds[:, 1:] == seeds[:, :-1]
    inner[:, :-1] &= seeds[:, :-1] == seeds[:, 1:]
    return inner
