"""Per-instance geometry of a label image, computed for all nuclei at once (no loop over objects).

Used by the target encoders of the dense families: where nuclei touch, how far each pixel lies from
its own nucleus's boundary, how large and where each nucleus is.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from segmentation.datasets.labels import validate_labels

# Half of the 8-neighbourhood: every neighbour pair is visited once, from its first pixel.
_HALF_NEIGHBOURS = ((0, 1), (1, 0), (1, 1), (1, -1))


def _pair_views(a: np.ndarray, dy: int, dx: int) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """Slices selecting every pixel and its neighbour at offset ``(dy, dx)``, ``dy >= 0``."""
    h, w = a.shape
    rows_a, rows_b = slice(0, h - dy), slice(dy, h)
    if dx >= 0:
        cols_a, cols_b = slice(0, w - dx), slice(dx, w)
    else:
        cols_a, cols_b = slice(-dx, w), slice(0, w + dx)
    return (rows_a, cols_a), (rows_b, cols_b)


def touching_pixels(labels: np.ndarray) -> np.ndarray:
    """Pixels of a nucleus that have an 8-neighbour belonging to a different nucleus.

    Args:
        labels: ``(H, W)`` integer label image, 0 = background.

    Returns:
        ``(H, W)`` bool array, True on both sides of every contact between two nuclei.
    """
    labels = validate_labels(labels)
    touch = np.zeros(labels.shape, dtype=bool)
    for dy, dx in _HALF_NEIGHBOURS:
        sa, sb = _pair_views(labels, dy, dx)
        a, b = labels[sa], labels[sb]
        differ = (a != b) & (a > 0) & (b > 0)
        touch[sa] |= differ
        touch[sb] |= differ
    return touch


def boundary_distance(labels: np.ndarray) -> np.ndarray:
    """Euclidean distance from each nucleus pixel to the nearest pixel outside its own nucleus.

    Pixels next to the background or to another nucleus get 1; background pixels get 0. Touching
    nuclei are measured separately: the distance to the other nucleus is taken as one more than the
    distance to the contact pixels, exact up to a pixel.

    Args:
        labels: ``(H, W)`` integer label image, 0 = background.

    Returns:
        ``(H, W)`` ``float32`` distances (pixels).
    """
    labels = validate_labels(labels)
    fg = labels > 0
    if not fg.any():
        return np.zeros(labels.shape, dtype=np.float32)
    dist = ndi.distance_transform_edt(fg)
    touch = touching_pixels(labels)
    if touch.any():
        dist = np.minimum(dist, ndi.distance_transform_edt(~touch) + 1.0)
    dist[~fg] = 0.0
    return dist.astype(np.float32)


def instance_max(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-pixel maximum of ``values`` over the pixel's nucleus (0 on the background).

    Args:
        values: ``(H, W)`` real array.
        labels: ``(H, W)`` integer label image of the same shape.

    Returns:
        ``(H, W)`` ``float64`` array holding, at every pixel of nucleus k, ``max(values[labels == k])``.
    """
    labels = validate_labels(labels)
    out = np.zeros(labels.shape, dtype=np.float64)
    fg = labels > 0
    if not fg.any():
        return out
    lab = labels[fg]
    maxima = np.full(int(lab.max()) + 1, -np.inf)
    np.maximum.at(maxima, lab, values[fg])
    out[fg] = maxima[lab]
    return out


def instance_centroids(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Area and centroid of every label value ``0..labels.max()`` (index = label value).

    Args:
        labels: ``(H, W)`` integer label image.

    Returns:
        ``(area, cy, cx)``: ``float64`` arrays of length ``labels.max() + 1``; rows/columns of the
        centroids (NaN for values not present).
    """
    labels = validate_labels(labels)
    n = int(labels.max()) + 1 if labels.size else 1
    rows, cols = np.indices(labels.shape)
    flat = labels.ravel()
    area = np.bincount(flat, minlength=n).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        cy = np.bincount(flat, weights=rows.ravel(), minlength=n) / area
        cx = np.bincount(flat, weights=cols.ravel(), minlength=n) / area
    return area, cy, cx
