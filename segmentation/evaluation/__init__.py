"""Evaluation: instance matching, the DSB2018 score and F1 over IoU thresholds, data-set reports.

``match(gt, pred)`` scores one image at every threshold in one call, ``dsb_score(gt, pred)`` gives
the competition's per-image score, ``evaluate_dataset(pairs)`` the per-image table with both the
competition's and the pooled aggregation; ``segmentation.evaluation.report`` writes CSV, JSON and
plots; ``oracle(labels, family)`` decodes a family's perfect outputs (the ceiling of its
post-processing).
"""

from segmentation.evaluation.dataset import DatasetResult, evaluate_dataset
from segmentation.evaluation.matching import (
    DSB_THRESHOLDS,
    MatchResult,
    ThresholdResult,
    dsb_score,
    match,
)
from segmentation.evaluation.report import (
    format_summary_table,
    plot_threshold_curves,
    write_per_image_csv,
    write_summary_json,
)

__all__ = [
    "DSB_THRESHOLDS",
    "DatasetResult",
    "MatchResult",
    "ThresholdResult",
    "dsb_score",
    "evaluate_dataset",
    "format_summary_table",
    "match",
    "plot_threshold_curves",
    "write_per_image_csv",
    "write_summary_json",
    "oracle",
    "oracle_score",
]


def __getattr__(name: str):
    # the oracle needs the model families (torch): imported on first use only
    if name in ("oracle", "oracle_score"):
        import importlib

        return getattr(importlib.import_module("segmentation.evaluation.oracles"), name)
    raise AttributeError(f"module 'segmentation.evaluation' has no attribute {name!r}")
