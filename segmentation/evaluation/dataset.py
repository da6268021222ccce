"""Evaluation over a data set: per-image results and the two usual aggregations.

- The competition's: the mean over images of each image's score (every image weighs the same).
- Pooled (StarDist's ``matching_dataset``): TP, FP and FN summed over all images, then precision,
  recall, F1 and TP / (TP + FP + FN) from the sums (every nucleus weighs the same).

F1 at IoU 0.7 is the figure of the DSB2018 paper (Caicedo et al., Nature Methods 2019):
``f1_at(0.7)`` gives it pooled, ``mean_image_f1_at(0.7)`` averaged per image.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from segmentation.evaluation.matching import (
    DSB_THRESHOLDS,
    MatchResult,
    ThresholdResult,
    _readonly,
    _threshold_index,
    match,
    ratios,
    validate_thresholds,
)


@dataclass(frozen=True)
class DatasetResult:
    """Per-image matches of a data set and their aggregations.

    Attributes:
        names: image names, in evaluation order.
        images: one :class:`MatchResult` per image, same order.
        thresholds: the IoU thresholds (exact decimals), ``T`` of them.
        inclusive: whether IoU equal to a threshold counted as a hit.
        tp, fp, fn: pooled ``int64 (T,)`` counts (sums over images).
        n_true, n_pred: total ground-truth and predicted objects.
        precision, recall, f1, score: pooled ``float64 (T,)`` ratios of the summed counts.
        image_score, image_f1: ``float64 (T,)`` means over images of the per-image score and F1.
        mean_score: the competition's data-set score, the mean of per-image scores (equal to the
            mean of ``image_score`` over thresholds).
    """

    names: tuple[str, ...]
    images: tuple[MatchResult, ...]
    thresholds: tuple[float, ...]
    inclusive: bool = False
    tp: np.ndarray = field(init=False, repr=False)
    fp: np.ndarray = field(init=False, repr=False)
    fn: np.ndarray = field(init=False, repr=False)
    precision: np.ndarray = field(init=False, repr=False)
    recall: np.ndarray = field(init=False, repr=False)
    f1: np.ndarray = field(init=False, repr=False)
    score: np.ndarray = field(init=False, repr=False)
    image_score: np.ndarray = field(init=False, repr=False)
    image_f1: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.images:
            raise ValueError("a DatasetResult needs at least one image")
        if len(self.names) != len(self.images):
            raise ValueError(f"{len(self.names)} names for {len(self.images)} images")
        for r in self.images:
            if r.thresholds != self.thresholds:
                raise ValueError(
                    f"all images must use the same thresholds, got {r.thresholds} and "
                    f"{self.thresholds}"
                )
        values = {
            k: np.sum([getattr(r, k) for r in self.images], axis=0) for k in ("tp", "fp", "fn")
        }
        values.update(ratios(values["tp"], values["fp"], values["fn"]))
        values["image_score"] = np.mean([r.score for r in self.images], axis=0)
        values["image_f1"] = np.mean([r.f1 for r in self.images], axis=0)
        for name, arr in values.items():
            object.__setattr__(self, name, _readonly(arr))

    @property
    def n_images(self) -> int:
        """Number of images evaluated."""
        return len(self.images)

    @property
    def n_true(self) -> int:
        """Ground-truth objects over all images."""
        return sum(r.n_true for r in self.images)

    @property
    def n_pred(self) -> int:
        """Predicted objects over all images."""
        return sum(r.n_pred for r in self.images)

    @property
    def mean_score(self) -> float:
        """The competition score: mean over images of each image's mean over thresholds."""
        return float(np.mean([r.mean_score for r in self.images]))

    @property
    def mean_f1(self) -> float:
        """Pooled F1 averaged over the thresholds."""
        return float(self.f1.mean())

    def f1_at(self, threshold: float) -> float:
        """Pooled F1 at one evaluated threshold (``f1_at(0.7)`` is the DSB2018 paper's figure)."""
        return float(self.f1[_threshold_index(self.thresholds, threshold)])

    def mean_image_f1_at(self, threshold: float) -> float:
        """Mean over images of the per-image F1 at one evaluated threshold."""
        return float(self.image_f1[_threshold_index(self.thresholds, threshold)])

    def at(self, threshold: float) -> ThresholdResult:
        """Pooled counts and ratios at one evaluated threshold."""
        i = _threshold_index(self.thresholds, threshold)
        return ThresholdResult(
            threshold=self.thresholds[i],
            tp=int(self.tp[i]),
            fp=int(self.fp[i]),
            fn=int(self.fn[i]),
            precision=float(self.precision[i]),
            recall=float(self.recall[i]),
            f1=float(self.f1[i]),
            score=float(self.score[i]),
        )


def evaluate_dataset(
    pairs: Iterable[tuple[np.ndarray, np.ndarray]],
    thresholds=DSB_THRESHOLDS,
    names: Sequence[str] | None = None,
    *,
    inclusive: bool = False,
) -> DatasetResult:
    """Match every (ground truth, prediction) pair of a data set.

    Args:
        pairs: iterable of ``(gt, pred)``, each an ``(H, W)`` integer label image (sizes may differ
            between images, not within a pair). Consumed once, lazily: a generator that reads
            images one at a time keeps memory flat.
        thresholds: IoU thresholds, default the competition's 0.5, ..., 0.95.
        names: one name per pair (default ``"0", "1", ...``); errors name the image.
        inclusive: count IoU equal to the threshold as a hit (see :func:`match`).

    Returns:
        :class:`DatasetResult`: per-image results, the competition's ``mean_score``, pooled
        counts and ratios, ``f1_at(t)`` and ``mean_image_f1_at(t)``.

    Raises:
        ValueError: no pairs, a pair that is not two label images, a number of names that differs
        from the number of pairs, or an invalid image (the message starts with its name).
    """
    thresholds = validate_thresholds(thresholds)
    names = None if names is None else [str(n) for n in names]
    if names is not None and len(set(names)) != len(names):
        raise ValueError("names contain duplicates; give each image a distinct name")
    results: list[MatchResult] = []
    for i, pair in enumerate(pairs):
        name = str(i) if names is None else (names[i] if i < len(names) else None)
        if name is None:
            raise ValueError(f"more pairs than names ({len(names)}); pass one name per pair")
        try:
            gt, pred = pair
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"image {name!r}: each item of pairs must be a (gt, pred) tuple of label images"
            ) from err
        try:
            results.append(match(gt, pred, thresholds, inclusive=inclusive))
        except ValueError as err:
            raise ValueError(f"image {name!r}: {err}") from err
    if not results:
        raise ValueError("pairs is empty; pass at least one (gt, pred) pair of label images")
    if names is not None and len(names) != len(results):
        raise ValueError(f"{len(names)} names for {len(results)} pairs; pass one name per pair")
    return DatasetResult(
        names=tuple(names) if names is not None else tuple(str(i) for i in range(len(results))),
        images=tuple(results),
        thresholds=thresholds,
        inclusive=inclusive,
    )
