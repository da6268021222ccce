"""Search of the post-processing thresholds on the validation split (as StarDist's
``optimize_thresholds``): coordinate ascent over each family's grid, maximising the mean
competition score of the decoded validation images."""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any

from segmentation.datasets.sample_type import Sample
from segmentation.training.engine import score_raw


def tune_thresholds(
    family: Any, raws: list[Any], samples: list[Sample], *, rounds: int = 2
) -> tuple[dict[str, Any], dict[str, float]]:
    """Coordinate ascent over ``family.threshold_grid()``.

    Args:
        family: the family (its ``Thresholds`` defaults are the starting point).
        raws: raw outputs of the validation images (computed once).
        samples: the validation samples (labels are the ground truth).
        rounds: passes over all fields.

    Returns:
        ``(best thresholds as a dict, metrics at those thresholds)``.
    """
    best = family.Thresholds()
    best_metrics = score_raw(family, raws, samples, best)
    grid = family.threshold_grid()
    for _ in range(rounds):
        improved = False
        for name, values in grid.items():
            for value in values:
                if getattr(best, name) == value:
                    continue
                candidate = replace(best, **{name: value})
                metrics = score_raw(family, raws, samples, candidate)
                if metrics["score"] > best_metrics["score"] + 1e-9:
                    best, best_metrics, improved = candidate, metrics, True
        if not improved:
            break
    return asdict(best), best_metrics


def tune_model_thresholds(
    model: Any, samples: list[Sample], *, rounds: int = 2
) -> tuple[dict[str, Any], dict[str, float]]:
    """Tune a loaded model's thresholds on ``samples``, each seen as the model sees it.

    Used for a network that serves one kind of image (a model's route for stained tissue): its
    thresholds are tuned on the validation images of that kind, not on every image it trained on.

    Args:
        model: a :class:`~segmentation.inference.SegmentationModel` (its own network; routes are
            not followed).
        samples: annotated images (``(H, W, C)`` images, ``(H, W)`` labels), at least one.
        rounds: passes of :func:`tune_thresholds`.

    Returns:
        ``(thresholds dict, metrics)`` as :func:`tune_thresholds`; ``metrics`` also holds the
        score at the model's current thresholds (``score_before``).

    Raises:
        ValueError: no samples.
    """
    if not samples:
        raise ValueError("no images to tune the thresholds on")
    raws = [model.predict_raw(model.prepare(s.image)) for s in samples]
    before = score_raw(model.family, raws, samples, model.thresholds)["score"]
    thresholds, metrics = tune_thresholds(model.family, raws, samples, rounds=rounds)
    return thresholds, {**metrics, "score_before": before}
