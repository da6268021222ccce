"""The oracle round trip: what a family's decoding reaches on perfect network outputs.

``oracle(labels, family)`` encodes a label image into the raw outputs a perfect network would give
(``family.oracle_raw``: the target maps for ``unet`` and ``fpn``, instance masks resampled through
the mask head's 28x28 resolution for ``maskrcnn``) and decodes them back with the family's
post-processing. Its score against the truth caps every model of the family that will ever be
trained.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from segmentation.datasets.labels import validate_labels
from segmentation.evaluation.matching import dsb_score
from segmentation.models.registry import get_family


def oracle(labels: np.ndarray, family: str, thresholds: Any = None) -> np.ndarray:
    """Decode the perfect raw outputs of ``family`` for ``labels``.

    Args:
        labels: ``(H, W)`` integer label image, 0 = background.
        family: registry name, e.g. ``"unet"``, ``"fpn"``, ``"maskrcnn"``.
        thresholds: the family's thresholds object (or a dict of its fields, or ``None`` for the
            defaults).

    Returns:
        ``(H, W)`` ``int32`` label image. An empty label image gives an empty one. The input is
        not modified.

    Raises:
        ValueError: unknown family (the message lists the valid names) or invalid labels.

    Example:
        >>> import numpy as np
        >>> labels = np.zeros((32, 32), np.int32); labels[4:12, 4:12] = 1; labels[12:20, 4:12] = 2
        >>> int(oracle(labels, "unet").max())
        2
    """
    labels = validate_labels(labels)
    fam = get_family(family)
    return np.asarray(fam.decode(fam.oracle_raw(labels), thresholds), dtype=np.int32)


def oracle_score(labels: np.ndarray, family: str, thresholds: Any = None) -> float:
    """DSB2018 score (mean over IoU thresholds 0.5-0.95) of :func:`oracle` against ``labels``.

    Args:
        labels: ``(H, W)`` integer label image, 0 = background.
        family: registry name.
        thresholds: as for :func:`oracle`.

    Returns:
        Score in [0, 1]; 1.0 for an empty label image (nothing to find, nothing found).
    """
    labels = validate_labels(labels)
    return float(dsb_score(labels, oracle(labels, family, thresholds)))
