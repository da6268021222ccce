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
