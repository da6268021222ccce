"""U-Net training targets: nucleus body, border band and contact maps (the DSB2018 winners' recipe).

Channels, in order (``CHANNELS``):

* ``body``: 1 on every nucleus pixel.
* ``border``: 1 on a band along the inside of each nucleus's boundary. The band is
  ``clip(round(r / 4), 1, border_width)`` pixels wide, ``r`` being the nucleus's equivalent radius
  ``sqrt(area / pi)``: with the default ``border_width=3``, 1 px below ~110 px area, 2 px up to
  ~310 px, 3 px beyond, so that small nuclei keep a core for their seed.
* ``contact``: 1 on every pixel (nucleus or background) that has at least two different nuclei
  within ``contact_width`` pixels (Euclidean): both sides of a contact between touching nuclei
  and the background gaps up to ``2 * floor(contact_width) - 1`` pixels wide between nuclei
  (1 px and diagonal gaps with the default 1.5, as the DSB2018 winners marked them).

All maps are binary ``float32`` (for BCE + Dice); computed on the whole image with distance
transforms and rank filters, no loop over nuclei.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from segmentation.datasets.labels import relabel_sequential
from segmentation.postprocess.geometry import boundary_distance, instance_centroids

#: Names of the target (and raw output) channels, in order.
CHANNELS = ("body", "border", "contact")

_SENTINEL = np.iinfo(np.int32).max


def contact_map(labels: np.ndarray, contact_width: float = 1.5) -> np.ndarray:
    """Pixels with at least two different nuclei within ``contact_width`` pixels.

    Args:
        labels: ``(H, W)`` int32 label image numbered 1..N, 0 = background.
        contact_width: radius (pixels) of the disk searched around each pixel, ``>= 1``; 1.5
            covers the 3x3 neighbourhood.

    Returns:
        ``(H, W)`` bool array.
    """
    reach = int(np.floor(contact_width))
    dy, dx = np.mgrid[-reach : reach + 1, -reach : reach + 1]
    footprint = dy**2 + dx**2 <= contact_width**2
    high = ndi.maximum_filter(labels, footprint=footprint, mode="constant", cval=0)
    low = ndi.minimum_filter(
        np.where(labels > 0, labels, _SENTINEL),
        footprint=footprint,
        mode="constant",
        cval=_SENTINEL,
    )
    return (high > 0) & (low != _SENTINEL) & (high != low)


def border_map(labels: np.ndarray, border_width: int = 3) -> np.ndarray:
    """Band along the inside of each nucleus's boundary, wider for larger nuclei.

    Args:
        labels: ``(H, W)`` int32 label image numbered 1..N, 0 = background.
        border_width: the widest band (pixels), reached at an equivalent radius of about
            ``4 * border_width - 2``; ``>= 1``.

    Returns:
        ``(H, W)`` bool array, a subset of ``labels > 0``.
    """
    area, _, _ = instance_centroids(labels)
    radius = np.sqrt(area / np.pi)
    width = np.clip(np.round(radius / 4.0), 1, border_width)
    width[0] = 0
    return (labels > 0) & (boundary_distance(labels) < width[labels] + 0.5)


def encode_targets(
    labels: np.ndarray, *, border_width: int = 3, contact_width: float = 1.5
) -> np.ndarray:
    """Label image -> the three U-Net target maps.

    Args:
        labels: ``(H, W)`` integer label image, 0 = background, any positive values per nucleus.
        border_width: widest border band in pixels (see the module docstring), ``>= 1``.
        contact_width: search radius for the contact map in pixels, in [1, 10].

    Returns:
        ``(3, H, W)`` ``float32`` array of 0/1 values, channels ``(body, border, contact)``. An
        empty label image gives all zeros. The input is not modified.

    Example:
        >>> import numpy as np
        >>> labels = np.zeros((8, 8), np.int32); labels[1:4, 1:7] = 1; labels[4:7, 1:7] = 2
        >>> maps = encode_targets(labels)
        >>> maps.shape, maps.dtype, bool(maps[2, 3, 3]), bool(maps[2, 0, 0])
        ((3, 8, 8), dtype('float32'), True, False)
    """
    if isinstance(border_width, bool) or not isinstance(border_width, (int, np.integer)):
        raise TypeError(f"border_width must be an integer (pixels), got {border_width!r}")
    if border_width < 1:
        raise ValueError(f"border_width must be >= 1 (pixels), got {border_width}")
    if isinstance(contact_width, bool) or not isinstance(contact_width, (int, float, np.number)):
        raise TypeError(f"contact_width must be a number (pixels), got {contact_width!r}")
    if not 1 <= contact_width <= 10:
        raise ValueError(f"contact_width must lie in [1, 10] pixels, got {contact_width}")
    labels = relabel_sequential(labels)
    out = np.zeros((3, *labels.shape), dtype=np.float32)
    if not labels.any():
        return out
    out[0] = labels > 0
    out[1] = border_map(labels, border_width)
    out[2] = contact_map(labels, contact_width)
    return out
