"""Fit a network's size model (:mod:`segmentation.inference.size_model`) on annotated images.

Each training image is shown at a few random scales (log-uniform between ``1 / zoom`` and
``zoom``): a window of it is prepared as the network sees it, resized, and its style is paired with
the log of the median nucleus diameter of its labels times the scale. A ridge regression maps the
styles to the log diameters; its strength is chosen by cross-validation over images (all scales of
one image in the same fold), and the cross-validated error is stored with the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from segmentation.datasets.sample_type import Sample
from segmentation.inference.size_model import STYLE_TILE, SizeModel, style_vector

#: Ridge strengths tried by cross-validation.
RIDGE_GRID = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)
#: Fewest nuclei an image needs to be used (its median diameter must mean something).
MIN_NUCLEI = 3


def size_examples(
    model: Any,
    samples: Sequence[Sample],
    *,
    scales: int = 4,
    zoom: float = 3.5,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Styles and log diameters of the samples at random scales.

    Args:
        model: the :class:`~segmentation.inference.model.SegmentationModel` whose network the
            size model is for (its view and normalisation prepare the images).
        samples: annotated images (those with fewer than :data:`MIN_NUCLEI` nuclei are skipped).
        scales: random scales per image.
        zoom: scales are drawn log-uniformly from ``[1 / zoom, zoom]``.
        seed: seed of the scales and windows.

    Returns:
        ``(styles (N, F) float64, log diameters (N,) float64, image index (N,) int64)``.
    """
    import cv2

    from segmentation.inference.diameter import estimate_diameter

    rng = np.random.default_rng(seed)
    styles, targets, owners = [], [], []
    for index, sample in enumerate(samples):
        diameter = estimate_diameter(sample.labels, min_nuclei=MIN_NUCLEI)
        if diameter is None:
            continue
        chw = model.prepare(sample.image)
        height, width = chw.shape[1:]
        for _ in range(scales):
            scale = float(np.exp(rng.uniform(-np.log(zoom), np.log(zoom))))
            side = int(np.ceil(STYLE_TILE / scale))  # the window that becomes STYLE_TILE pixels
            h, w = min(side, height), min(side, width)
            top, left = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
            window = chw[:, top : top + h, left : left + w].transpose(1, 2, 0)
            size = (max(32, round(w * scale)), max(32, round(h * scale)))
            mode = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            resized = cv2.resize(np.ascontiguousarray(window), size, interpolation=mode)
            styles.append(style_vector(model.members, resized.transpose(2, 0, 1), model.device))
            targets.append(np.log(diameter * scale))
            owners.append(index)
    if not styles:
        raise ValueError(f"no image with {MIN_NUCLEI} or more nuclei to fit a size model on")
    return np.stack(styles), np.asarray(targets), np.asarray(owners, np.int64)


def _ridge(x: np.ndarray, y: np.ndarray, strength: float) -> tuple[np.ndarray, np.ndarray, float]:
    mean, bias = x.mean(axis=0), float(y.mean())
    xc = x - mean
    gram = xc.T @ xc + strength * len(x) * np.eye(x.shape[1])
    return mean, np.linalg.solve(gram, xc.T @ (y - bias)), bias


def fit_size_model(
    styles: np.ndarray, log_diameters: np.ndarray, owners: np.ndarray, folds: int = 5
) -> SizeModel:
    """Ridge regression of log diameters on styles, its strength chosen by grouped K-fold.

    Args:
        styles: ``(N, F)`` float styles; ``log_diameters``: ``(N,)``; ``owners``: ``(N,)`` the
            image each example comes from (one image's examples share a fold).
        folds: cross-validation folds.

    Returns:
        The :class:`SizeModel` refitted on all examples with the best strength; ``fitted_on``
        holds the example count, the strength and the cross-validated median and 90th percentile
        of ``|estimate / truth - 1|``.
    """
    fold_of = np.random.default_rng(0).permutation(owners.max() + 1)[owners] % folds
    best = None
    for strength in RIDGE_GRID:
        errors = np.empty(len(styles))
        for k in range(folds):
            test = fold_of == k
            if not test.any() or test.all():
                continue
            mean, weights, bias = _ridge(styles[~test], log_diameters[~test], strength)
            errors[test] = (styles[test] - mean) @ weights + bias - log_diameters[test]
        relative = np.abs(np.expm1(errors))
        if best is None or np.median(relative) < best[1]:
            best = (strength, float(np.median(relative)), float(np.percentile(relative, 90)))
    strength, median_error, p90_error = best
    mean, weights, bias = _ridge(styles, log_diameters, strength)
    fitted_on = {
        "examples": int(len(styles)),
        "images": int(len(np.unique(owners))),
        "ridge": strength,
        "cv_median_relative_error": round(median_error, 4),
        "cv_p90_relative_error": round(p90_error, 4),
    }
    return SizeModel(mean, weights, bias, fitted_on)
