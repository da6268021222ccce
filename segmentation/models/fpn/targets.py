"""FPN (distance/angle) training targets: foreground, normalised energy and direction to the centre.

Channels, in order (``CHANNELS``):

* ``foreground``: 1 on every nucleus pixel.
* ``energy``: distance from the pixel to the boundary of its own nucleus (touching nuclei measured
  separately, see :func:`~segmentation.postprocess.geometry.boundary_distance`), divided by the
  largest such distance within the nucleus: in (0, 1] inside each nucleus, exactly 1 at its
  innermost pixels, 0 on the background.
* ``cos``, ``sin``: the unit vector from the pixel towards its nucleus's centroid, as
  ``(dx, dy) / |(dx, dy)|`` with x along columns (to the right) and y along rows (downwards).
  Zero on the background and on pixels within half a pixel of the centroid (no direction there).

Everything is computed on the whole image with two distance transforms and per-label sums, no loop
over nuclei.
"""

from __future__ import annotations

import numpy as np

from segmentation.datasets.labels import relabel_sequential
from segmentation.postprocess.geometry import boundary_distance, instance_centroids, instance_max

#: Names of the target (and raw output) channels, in order.
CHANNELS = ("foreground", "energy", "cos", "sin")


def energy_map(labels: np.ndarray) -> np.ndarray:
    """Distance to the own nucleus's boundary, normalised to a maximum of 1 per nucleus.

    Args:
        labels: ``(H, W)`` integer label image, 0 = background.

    Returns:
        ``(H, W)`` ``float32`` array in [0, 1]: (0, 1] on nuclei, 0 on the background.
    """
    dist = boundary_distance(labels).astype(np.float64)
    peak = instance_max(dist, labels)
    energy = np.divide(dist, peak, out=np.zeros_like(dist), where=peak > 0)
    return energy.astype(np.float32)


def direction_maps(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit vector from each nucleus pixel towards its nucleus's centroid.

    Args:
        labels: ``(H, W)`` integer label image numbered 1..N, 0 = background.

    Returns:
        ``(cos, sin)``: two ``(H, W)`` ``float32`` arrays, the x (column) and y (row) components;
        zero on the background and within half a pixel of a centroid.
    """
    _, cy, cx = instance_centroids(labels)
    cos = np.zeros(labels.shape, dtype=np.float32)
    sin = np.zeros(labels.shape, dtype=np.float32)
    fg = labels > 0
    if not fg.any():
        return cos, sin
    rows, cols = np.nonzero(fg)
    lab = labels[fg]
    dy = cy[lab] - rows
    dx = cx[lab] - cols
    norm = np.hypot(dx, dy)
    ok = norm > 0.5
    cos[rows[ok], cols[ok]] = dx[ok] / norm[ok]
    sin[rows[ok], cols[ok]] = dy[ok] / norm[ok]
    return cos, sin


def encode_targets(labels: np.ndarray) -> np.ndarray:
    """Label image -> the four FPN target maps.

    Args:
        labels: ``(H, W)`` integer label image, 0 = background, any positive values per nucleus.

    Returns:
        ``(4, H, W)`` ``float32`` array, channels ``(foreground, energy, cos, sin)``: foreground in
        {0, 1}, energy in [0, 1], cos and sin in [-1, 1]. An empty label image gives all zeros.
        The input is not modified.

    Example:
        >>> import numpy as np
        >>> labels = np.zeros((9, 9), np.int32); labels[2:7, 2:7] = 1
        >>> maps = encode_targets(labels)
        >>> float(maps[1, 4, 4]), float(maps[2, 4, 2]), float(maps[3, 4, 4])
        (1.0, 1.0, 0.0)
    """
    labels = relabel_sequential(labels)
    out = np.zeros((4, *labels.shape), dtype=np.float32)
    if not labels.any():
        return out
    out[0] = labels > 0
    out[1] = energy_map(labels)
    out[2], out[3] = direction_maps(labels)
    return out
