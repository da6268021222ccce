"""Instance clean-up on label images: drop small objects, fill holes, renumber 1..N.

All functions take an ``(H, W)`` integer label image (0 = background), return a new ``int32`` label
image and never modify their input. The public functions validate their input; the ``_``-prefixed
cores behind them expect validated ``int32`` label images and are used by the decoders, which
validate once up front.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from segmentation.datasets.labels import relabel_sequential, validate_labels

_CROSS = ndi.generate_binary_structure(2, 1)


def _check_min_size(min_size) -> int:
    if isinstance(min_size, bool) or not isinstance(min_size, (int, np.integer)) or min_size < 0:
        raise ValueError(f"min_size must be an integer >= 0 (pixels), got {min_size!r}")
    return int(min_size)


def _is_compact(labels: np.ndarray) -> bool:
    """Whether a per-value lookup table (size ``labels.max() + 1``) stays small."""
    return labels.size == 0 or int(labels.max()) <= 4 * labels.size + 1024


def object_sizes(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel count of every label value present.

    Args:
        labels: ``(H, W)`` integer label image.

    Returns:
        ``(values, counts)``: ``int64`` arrays of the nonzero label values present, ascending, and
        their pixel counts.
    """
    labels = validate_labels(labels)
    if labels.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if _is_compact(labels):
        counts = np.bincount(labels.ravel())
        values = np.flatnonzero(counts)
        values = values[values > 0]
        return values.astype(np.int64), counts[values].astype(np.int64)
    values, counts = np.unique(labels, return_counts=True)
    keep = values > 0
    return values[keep].astype(np.int64), counts[keep].astype(np.int64)


def remove_small_objects(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Set objects of fewer than ``min_size`` pixels to background.

    Args:
        labels: ``(H, W)`` integer label image, 0 = background.
        min_size: objects with an area (pixel count) below this are removed; ``<= 1`` keeps all.

    Returns:
        ``(H, W)`` ``int32`` label image; kept objects keep their values (call :func:`relabel` to
        renumber them 1..N).

    Example:
        >>> import numpy as np
        >>> labels = np.array([[1, 1, 0, 2]])
        >>> remove_small_objects(labels, 2).tolist()
        [[1, 1, 0, 0]]
    """
    labels = validate_labels(labels)
    min_size = _check_min_size(min_size)
    values, counts = object_sizes(labels)
    small = values[counts < min_size]
    if small.size == 0:
        return labels.copy()
    return np.where(np.isin(labels, small), 0, labels).astype(np.int32)


def fill_holes(labels: np.ndarray) -> np.ndarray:
    """Fill background holes that lie entirely inside one object.

    A hole is a 4-connected background region that does not reach the image border. It takes the
    label of the object around it when exactly one object surrounds it; holes enclosed by several
    touching objects are left as background (no object owns them).

    Args:
        labels: ``(H, W)`` integer label image, 0 = background.

    Returns:
        ``(H, W)`` ``int32`` label image with the holes filled.
    """
    return _fill_holes(validate_labels(labels))


def _fill_holes(labels: np.ndarray) -> np.ndarray:
    out = labels.copy()
    if labels.size == 0:
        return out
    background, n_regions = ndi.label(labels == 0, structure=_CROSS)
    if n_regions == 0:
        return out
    # Background regions touching the image border are not holes.
    is_hole = np.ones(n_regions + 1, dtype=bool)
    is_hole[0] = False
    for edge in (background[0], background[-1], background[:, 0], background[:, -1]):
        is_hole[edge] = False
    if not is_hole.any():
        return out
    holes = np.where(is_hole[background], background, 0)
    # (hole, neighbouring object) pairs over the four neighbour directions, as one int64 key each.
    scale = int(labels.max()) + 1
    keys = []
    for a, b in (
        (holes[:, :-1], labels[:, 1:]),
        (holes[:, 1:], labels[:, :-1]),
        (holes[:-1, :], labels[1:, :]),
        (holes[1:, :], labels[:-1, :]),
    ):
        sel = (a > 0) & (b > 0)
        keys.append(a[sel].astype(np.int64) * scale + b[sel])
    pairs = np.unique(np.concatenate(keys))
    hole_of, owner_of = pairs // scale, (pairs % scale).astype(np.int32)
    n_owners = np.bincount(hole_of, minlength=n_regions + 1)
    owner = np.zeros(n_regions + 1, dtype=np.int32)
    single = n_owners[hole_of] == 1
    owner[hole_of[single]] = owner_of[single]
    fill = owner[holes]
    np.copyto(out, fill, where=fill > 0)
    return out


def relabel(labels: np.ndarray, *, min_size: int = 0) -> np.ndarray:
    """Renumber the objects to ``1..N`` in the order of their current values.

    Args:
        labels: ``(H, W)`` integer label image, 0 = background.
        min_size: objects of fewer pixels are dropped first (0 keeps all).

    Returns:
        New ``(H, W)`` ``int32`` label image where the k-th smallest kept label becomes k.

    Example:
        >>> import numpy as np
        >>> relabel(np.array([[7, 7, 0, 3, 9]]), min_size=2).tolist()
        [[1, 1, 0, 0, 0]]
    """
    labels = validate_labels(labels)
    min_size = _check_min_size(min_size)
    if not _is_compact(labels):
        labels = relabel_sequential(labels)
    return _relabel(labels, min_size)


def _relabel(labels: np.ndarray, min_size: int = 0) -> np.ndarray:
    """Drop objects below ``min_size`` and renumber 1..N; ``labels`` int32, compact values."""
    if labels.size == 0:
        return labels.copy()
    counts = np.bincount(labels.ravel())
    keep = counts >= max(min_size, 1)
    keep[0] = False
    lut = np.zeros(len(counts), dtype=np.int32)
    lut[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    return lut[labels]
