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

With a size model (:mod:`.size_model`: the diameter read from the network's features, which does
not believe fragments), the rule also catches the first pass that cuts large nuclei into pieces of
about the training size (:func:`choose_diameter`): when the masks' estimate is below the size
model's by more than :data:`FRAGMENTS` and the size model reads more than :data:`SIZE_FRAGMENTED`
times the training diameter, the image is segmented again at the size model's estimate, and that
pass is kept only when its nuclei confirm the fragments (:func:`fragments_confirmed`: they are
larger than the first pass's by more than :data:`FRAGMENTS`; a size model that misreads an unseen
kind of image then costs a pass at reduced size, not the result). Nuclei the first pass found
whole are shrunk from :data:`SIZE_LARGE` times the training diameter on. Chosen on the validation
images resized by 0.33-3 (``benchmarks/bench_size.py --sources validation``, docs/benchmarks.md
"Nucleus size from a third to three times").
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
#: With a size model: the first pass fragmented the nuclei when its masks' estimate is below the
#: size model's divided by this ...
FRAGMENTS = 1.25
#: ... and then the image is segmented again at the size model's estimate when it is above
#: ``reference * SIZE_FRAGMENTED``;
SIZE_FRAGMENTED = 2.0
#: whole nuclei are shrunk from ``reference * SIZE_LARGE`` on (instead of :data:`BAND_LARGE`).
SIZE_LARGE = 3.0


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
    return diameter_from_areas(areas[areas > 0], min_nuclei)


def diameter_from_areas(areas: np.ndarray, min_nuclei: int = MIN_NUCLEI) -> float | None:
    """Median equivalent diameter ``2 * sqrt(area / pi)`` of nuclei of these areas.

    Args:
        areas: ``(n,)`` pixel counts of the nuclei (any real dtype), e.g. gathered from the blocks
            of a whole slide.
        min_nuclei: fewest nuclei that give an estimate.

    Returns:
        The median diameter in pixels (float), or ``None`` under ``min_nuclei`` nuclei.
    """
    areas = np.asarray(areas, np.float64)
    if len(areas) < min_nuclei:
        return None
    return float(np.median(2.0 * np.sqrt(areas / np.pi)))


def choose_diameter(
    estimate: float | None,
    reference: float,
    size_estimate: float | None = None,
    small: float = BAND_SMALL,
    large: float = BAND_LARGE,
) -> float | None:
    """The diameter to segment again with, from the estimates, or ``None`` to keep the first pass.

    Args:
        estimate: the median diameter of the first pass's masks (``None``: too few nuclei).
        reference: the model's training diameter (pixels).
        size_estimate: the size model's estimate (``None``: the network has no size model).
        small, large: without a size model, keep the pass when ``estimate`` lies within
            ``[reference / small, reference * large]``; with one, ``large`` is
            :data:`SIZE_LARGE`.

    Returns:
        ``size_estimate`` when the first pass looks like fragments of large nuclei
        (:func:`fragments_suspected`; the caller keeps the new pass only when
        :func:`fragments_confirmed`), else ``estimate`` when it lies outside the band, clipped to
        ``[reference / MAX_ZOOM, reference * MAX_ZOOM]``; else ``None``.
    """
    low, high = reference / MAX_ZOOM, reference * MAX_ZOOM
    if fragments_suspected(estimate, reference, size_estimate):
        return float(np.clip(size_estimate, low, high))
    if size_estimate is not None:
        large = SIZE_LARGE
    if estimate is None or reference / small <= estimate <= reference * large:
        return None
    return float(np.clip(estimate, low, high))


def fragments_suspected(
    estimate: float | None, reference: float, size_estimate: float | None
) -> bool:
    """Whether :func:`choose_diameter` takes the size model's estimate (the first pass's masks
    look like fragments of larger nuclei); the second pass must then confirm it."""
    if size_estimate is None or not size_estimate > reference * SIZE_FRAGMENTED:
        return False
    return estimate is None or estimate < size_estimate / FRAGMENTS


def fragments_confirmed(first: float | None, second: float | None) -> bool:
    """Whether the pass at the size model's estimate found larger nuclei than the first pass (by
    more than :data:`FRAGMENTS`; both median diameters in the image's own pixels), so that the
    first pass's nuclei were fragments; ``None`` (too few nuclei) counts as no nuclei found."""
    if second is None:
        return False
    return first is None or second > first * FRAGMENTS
