"""Merge adjacent regions of a label image that the network's maps say belong to one nucleus.

Two seeds inside one nucleus (a dumbbell-shaped nucleus whose core splits in two) give two
watershed regions. Where they meet, the maps look unlike a real contact between two nuclei:

* U-Net: the contact probability along the shared boundary is low (:func:`boundary_means`).
* FPN: the direction field of at least one region runs towards the shared boundary, to the centre
  the two halves share (:func:`region_flow`), and it does not point apart across the boundary
  (:func:`boundary_flow`); a whole nucleus has vectors from all sides and no net flow.

The public functions validate their inputs; the ``_``-prefixed cores expect validated arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from segmentation.datasets.labels import validate_labels
from segmentation.postprocess.checks import check_plane

# (rows, cols of pixel a, offset (dy, dx) from a to its neighbour b) -> value per pixel pair.
_PairFn = Callable[[np.ndarray, np.ndarray, tuple[int, int]], np.ndarray]


def _pair_means(
    labels: np.ndarray, pair_values: Sequence[_PairFn]
) -> tuple[np.ndarray, np.ndarray]:
    """Means of each ``pair_values`` function over the 4-neighbour pixel pairs of every two regions.

    Returns ``(pairs (P, 2) int64 with a < b, means (len(pair_values), P) float64)``.
    """
    keys_lo, keys_hi, totals = [], [], []
    height, width = labels.shape
    for dy, dx in ((0, 1), (1, 0)):
        a, b = labels[: height - dy, : width - dx], labels[dy:, dx:]
        rows, cols = np.nonzero((a != b) & (a > 0) & (b > 0))
        if rows.size == 0:
            continue
        la, lb = a[rows, cols].astype(np.int64), b[rows, cols].astype(np.int64)
        keys_lo.append(np.minimum(la, lb))
        keys_hi.append(np.maximum(la, lb))
        totals.append(np.stack([fn(rows, cols, (dy, dx)) for fn in pair_values]))
    if not keys_lo:
        return np.zeros((0, 2), np.int64), np.zeros((len(pair_values), 0), np.float64)
    lo, hi = np.concatenate(keys_lo), np.concatenate(keys_hi)
    total = np.concatenate(totals, axis=1)
    pairs, inverse = np.unique(np.stack([lo, hi], axis=1), axis=0, return_inverse=True)
    inverse = inverse.ravel()
    count = np.bincount(inverse)
    means = np.stack([np.bincount(inverse, weights=t) / count for t in total])
    return pairs, means


def boundary_means(labels: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``values`` along the boundary between every two 4-adjacent regions.

    Args:
        labels: ``(H, W)`` integer label image, 0 = background.
        values: ``(H, W)`` real array (e.g. a contact probability); each neighbour pair ``(p, q)``
            across a boundary contributes ``(values[p] + values[q]) / 2``.

    Returns:
        ``(pairs, means)``: ``(P, 2)`` ``int64`` label pairs ``a < b`` and their ``(P,)``
        ``float64`` boundary means.
    """
    labels = validate_labels(labels)
    values = check_plane("values", values, labels.shape)
    return _boundary_means(labels, values)


def _boundary_means(labels: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    def mean(rows, cols, offset):
        dy, dx = offset
        return (values[rows, cols] + values[rows + dy, cols + dx]) / 2.0

    pairs, means = _pair_means(labels, [mean])
    return pairs, means[0]


def _flow_across(cos: np.ndarray, sin: np.ndarray) -> _PairFn:
    def across(rows, cols, offset):
        dy, dx = offset
        comp = cos if dx else sin
        return (comp[rows, cols] - comp[rows + dy, cols + dx]) / 2.0

    return across


def boundary_flow(
    labels: np.ndarray, cos: np.ndarray, sin: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """How strongly a direction field converges across the boundary between every two regions.

    For a neighbour pair ``p -> q`` (unit offset ``e``) across a boundary the value is
    ``(v[p] . e - v[q] . e) / 2``: about -1 when the vectors point apart (two touching nuclei,
    each vector towards its own centre, away from the boundary), about 0 when they are parallel
    (both towards one centre further away: one nucleus cut in two), +1 when they point at each
    other (the shared centre lies on the boundary).

    Args:
        labels: ``(H, W)`` integer label image, 0 = background.
        cos, sin: ``(H, W)`` x (column) and y (row) components of the direction field.

    Returns:
        ``(pairs, means)``: ``(P, 2)`` ``int64`` label pairs ``a < b`` and their ``(P,)``
        ``float64`` mean values in [-1, 1].
    """
    labels = validate_labels(labels)
    cos = check_plane("cos", cos, labels.shape)
    sin = check_plane("sin", sin, labels.shape)
    pairs, means = _pair_means(labels, [_flow_across(cos, sin)])
    return pairs, means[0]


def region_flow(
    labels: np.ndarray, cos: np.ndarray, sin: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """How much either of two adjacent regions' direction field runs towards their boundary.

    For each region the mean direction vector is projected on the unit vector from the region's
    centroid to the middle of the shared boundary; the value of a pair is the larger of its two
    regions'. A whole nucleus has vectors from all sides (mean near 0); half of a nucleus cut in
    two has all its vectors towards the shared centre, across the cut (near +1).

    Args:
        labels: ``(H, W)`` integer label image, 0 = background.
        cos, sin: ``(H, W)`` x (column) and y (row) components of the direction field.

    Returns:
        ``(pairs, values)``: ``(P, 2)`` ``int64`` label pairs ``a < b`` and ``(P,)`` ``float64``
        values in [-1, 1].
    """
    labels = validate_labels(labels)
    cos = check_plane("cos", cos, labels.shape)
    sin = check_plane("sin", sin, labels.shape)
    pairs, _, towards = _flows(labels, cos, sin)
    return pairs, towards


def _flows(
    labels: np.ndarray, cos: np.ndarray, sin: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Label pairs with their boundary flow and region flow (see the public functions)."""
    pairs, (across, mid_y, mid_x) = _pair_means(
        labels,
        [
            _flow_across(cos, sin),
            lambda rows, cols, offset: rows + offset[0] / 2.0,
            lambda rows, cols, offset: cols + offset[1] / 2.0,
        ],
    )
    if pairs.size == 0:
        return pairs, across, across
    n = int(labels.max()) + 1
    rows, cols = np.nonzero(labels)
    lab = labels[rows, cols]
    count = np.maximum(np.bincount(lab, minlength=n), 1).astype(np.float64)
    mean_x = np.bincount(lab, cos[rows, cols], n) / count
    mean_y = np.bincount(lab, sin[rows, cols], n) / count
    cy = np.bincount(lab, rows, n) / count
    cx = np.bincount(lab, cols, n) / count
    towards = np.full(len(pairs), -np.inf)
    for side in (0, 1):
        r = pairs[:, side]
        dx, dy = mid_x - cx[r], mid_y - cy[r]
        norm = np.maximum(np.hypot(dx, dy), 1e-9)
        towards = np.maximum(towards, (mean_x[r] * dx + mean_y[r] * dy) / norm)
    return pairs, across, towards


def merge_pairs(labels: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Merge the regions of each label pair (transitively).

    Args:
        labels: ``(H, W)`` integer label image, 0 = background.
        pairs: ``(P, 2)`` integer array of labels to merge.

    Returns:
        ``(H, W)`` ``int32`` label image; each merged group takes the smallest label of the group.
    """
    labels = validate_labels(labels)
    return _merge_pairs(labels, np.asarray(pairs, dtype=np.int64).reshape(-1, 2))


def _merge_pairs(labels: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    if pairs.size == 0:
        return labels.copy()
    n = int(labels.max()) + 1
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, group = connected_components(graph, directed=False)
    smallest = np.full(group.max() + 1, n, dtype=np.int64)
    np.minimum.at(smallest, group, np.arange(n))
    return smallest[group].astype(np.int32)[labels]


def merge_weak_boundaries(labels: np.ndarray, values: np.ndarray, threshold: float) -> np.ndarray:
    """Merge 4-adjacent regions whose shared boundary has a mean of ``values`` below ``threshold``.

    Args:
        labels: ``(H, W)`` integer label image, 0 = background.
        values: ``(H, W)`` real array, high where two objects really meet (e.g. contact).
        threshold: pairs with a boundary mean strictly below it are merged.

    Returns:
        ``(H, W)`` ``int32`` label image (see :func:`merge_pairs`).
    """
    labels = validate_labels(labels)
    values = check_plane("values", values, labels.shape)
    return _merge_weak_boundaries(labels, values, threshold)


def _merge_weak_boundaries(labels: np.ndarray, values: np.ndarray, threshold: float) -> np.ndarray:
    pairs, means = _boundary_means(labels, values)
    return _merge_pairs(labels, pairs[means < threshold])


def merge_converging(
    labels: np.ndarray,
    cos: np.ndarray,
    sin: np.ndarray,
    region_threshold: float = 0.5,
    boundary_threshold: float = -0.3,
) -> np.ndarray:
    """Merge 4-adjacent regions that a direction field shows to be parts of one nucleus.

    A pair merges when its :func:`region_flow` is above ``region_threshold`` (one region's
    vectors run towards the shared boundary) and its :func:`boundary_flow` is above
    ``boundary_threshold`` (the vectors do not point apart across it, as they do between two
    touching nuclei).

    Args:
        labels: ``(H, W)`` integer label image, 0 = background.
        cos, sin: ``(H, W)`` components of the vector towards each pixel's nucleus centre.
        region_threshold: in [-1, 1]; 1 merges nothing.
        boundary_threshold: in [-1, 1]; -1 drops the boundary condition.

    Returns:
        ``(H, W)`` ``int32`` label image (see :func:`merge_pairs`).
    """
    labels = validate_labels(labels)
    cos = check_plane("cos", cos, labels.shape)
    sin = check_plane("sin", sin, labels.shape)
    return _merge_converging(labels, cos, sin, region_threshold, boundary_threshold)


def _merge_converging(
    labels: np.ndarray,
    cos: np.ndarray,
    sin: np.ndarray,
    region_threshold: float,
    boundary_threshold: float,
) -> np.ndarray:
    pairs, across, towards = _flows(labels, cos, sin)
    return _merge_pairs(labels, pairs[(towards > region_threshold) & (across > boundary_threshold)])
