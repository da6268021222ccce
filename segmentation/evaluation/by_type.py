"""Scores of a segmenter on a set of samples, overall and per image type, with its speed."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from segmentation.datasets.sample_type import Sample


def score_by_image_type(
    samples: Sequence[Sample], predict: Callable[[np.ndarray], np.ndarray]
) -> dict[str, dict[str, Any]]:
    """Run ``predict`` on every sample's image and score it against the labels.

    Args:
        samples: annotated samples (images ``(H, W, C)``, labels ``(H, W)``).
        predict: ``image -> (H, W)`` int label image (e.g. ``functools.partial(segment, model=model)``).

    Returns:
        ``{"all": row, "<image type>": row, ...}``; a row holds ``score`` (competition score, the
        mean of per-image scores), ``f1_0.7`` (pooled), ``images``, and for ``all`` also
        ``seconds_per_image`` and ``seconds_per_megapixel`` of ``predict``. Scores are rounded
        to 4 decimals.
    """
    from segmentation.datasets.image_types import image_type
    from segmentation.evaluation.dataset import evaluate_dataset

    if not samples:
        raise ValueError("no samples to score")
    start = time.perf_counter()
    preds = [predict(s.image) for s in samples]
    seconds = time.perf_counter() - start
    megapixels = sum(s.image.shape[0] * s.image.shape[1] for s in samples) / 1e6
    groups: dict[str, list[int]] = {"all": list(range(len(samples)))}
    for i, s in enumerate(samples):
        groups.setdefault(image_type(s.image), []).append(i)
    out: dict[str, dict[str, Any]] = {}
    for name, members in groups.items():
        result = evaluate_dataset([(samples[i].labels, preds[i]) for i in members])
        out[name] = {
            "score": round(result.mean_score, 4),
            "f1_0.7": round(result.f1_at(0.7), 4),
            "images": len(members),
        }
    out["all"]["seconds_per_image"] = round(seconds / len(samples), 4)
    out["all"]["seconds_per_megapixel"] = round(seconds / megapixels, 4)
    return out
