"""Automatic nucleus size: estimate the nuclei's diameter from a first segmentation pass.

``segment(image)`` without ``diameter`` or ``scale`` segments the image at its own scale, measures
the median equivalent diameter ``2 * sqrt(area / pi)`` of the nuclei it found, and, when the nuclei
are much smaller than the model's training diameter (below ``reference / BAND_SMALL``) or very much
larger (above ``reference * BAND_LARGE``), segments the image again rescaled to it (as Cellpose's
size model does with its regression). Images whose nuclei are near the training size cost a single
pass.

The rule is asymmetric because of how the model behaves (``benchmarks/bench_auto_diameter.py``
on the 77 validation images, docs/benchmarks.md "Automatic nucleus size"): the estimate is within
2 % of the true median diameter at half, full and double size; enlarging small nuclei helps (at
half size the estimate recovers 117 % of what the true diameter gains, +0.044), while shrinking
large nuclei to the training size hurts even with the true diameter (-0.003 at double size,
-0.044 at the images' own sizes), so large nuclei keep their scale up to :data:`BAND_LARGE` (a
guard beyond the measured range, where nuclei outgrow the training crops).
"""

from __future__ import annotations

import numpy as np

#: Segment again when the estimate is below ``reference / BAND_SMALL`` ...
BAND_SMALL = 1.6
#: ... or above ``reference * BAND_LARGE``.
BAND_LARGE = 4.0
#: Fewer nuclei than this give no estimate (the first pass is kept).
MIN_NUCLEI = 5
#: The second pass resizes by at most this factor either way (a first pass of fragments, e.g. from
#: an untrained model, must not blow a large image up).
MAX_ZOOM = 3.0


def estimate_diameter(labels: np.ndarray, min_nuclei: int = MIN_NUCLEI) -> float | None:
    """Median equivalent diameter of the nuclei of a label image.

    Args:
        labels: ``(H, W)`` integer label image, 0 = background.
        min_nuclei: fewest nuclei that give an estimate.

    Returns:
        The median of ``2 * sqrt(area / pi)`` over the nuclei, in pixels (float), or ``None``
        when there are fewer than ``min_nuclei``.
    """
    areas = np.bincount(np.asarray(labels).ravel())[1:]
    areas = areas[areas > 0]
    if len(areas) < min_nuclei:
        return None
    return float(np.median(2.0 * np.sqrt(areas / np.pi)))


def rescale_diameter(
    labels: np.ndarray,
    reference: float,
    small: float = BAND_SMALL,
    large: float = BAND_LARGE,
    min_nuclei: int = MIN_NUCLEI,
) -> float | None:
    """The diameter to segment again with, or ``None`` to keep this pass.

    Args:
        labels: ``(H, W)`` labels of the first pass, at the image's own scale.
        reference: the model's training diameter (pixels).
        small, large: keep the pass when the estimate lies within ``[reference / small,
            reference * large]``.
        min_nuclei: fewest nuclei that give an estimate.

    Returns:
        The estimated diameter in pixels, clipped to ``[reference / MAX_ZOOM, reference *
        MAX_ZOOM]``, when it lies outside that range, else ``None``.
    """
    estimate = estimate_diameter(labels, min_nuclei)
    if estimate is None or reference / small <= estimate <= reference * large:
        return None
    return float(np.clip(estimate, reference / MAX_ZOOM, reference * MAX_ZOOM))
