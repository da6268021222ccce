"""Instance matching of two label images: TP/FP/FN, F1 and the DSB2018 score at IoU thresholds.

One pass over the pixels finds the overlap of every (ground truth, prediction) pair: the two label
images are run-length encoded together in raster order (consecutive pixels mostly belong to the same
pair), and the runs are summed per pair. The IoU of every overlapping pair follows, and TP/FP/FN at
every threshold come from that sparse pair list without a loop over objects.

Hit rule: a prediction hits a ground-truth nucleus when their IoU is strictly greater than the
threshold (the competition's rule, ``inclusive=False``); StarDist and Cellpose count IoU equal to the
threshold as a hit (``inclusive=True``). The comparison is exact: IoU is a ratio of pixel counts and
each threshold is taken as the decimal it prints as (0.6 is 3/5), compared in integer arithmetic.

Uniqueness: an IoU above 0.5 means the intersection covers more than half of both objects, so each
nucleus has at most one such partner and no assignment problem arises. Below that (and at exactly
0.5 with ``inclusive=True``) one nucleus can hit several, and an optimal one-to-one assignment
(``scipy.optimize.linear_sum_assignment``, most matches first, then the largest summed IoU, as in
StarDist) is solved within each connected group of candidate pairs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

#: The competition's IoU thresholds 0.5, 0.55, ..., 0.95 as exact decimals.
DSB_THRESHOLDS: tuple[float, ...] = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))

_THRESHOLD_DECIMALS = 10


@dataclass(frozen=True)
class ThresholdResult:
    """Counts and ratios of one image (or one data set) at one IoU threshold."""

    threshold: float
    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float
    score: float


def ratios(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and competition score from count arrays of equal shape.

    ``score = TP / (TP + FP + FN)`` (the DSB2018 per-threshold score), ``f1 = 2TP / (2TP + FP + FN)``,
    ``precision = TP / (TP + FP)``, ``recall = TP / (TP + FN)``, all float64 arrays of the input
    shape. Empty cases: when there is nothing to find and nothing was predicted (TP = FP = FN = 0)
    every ratio is 1.0; any other 0/0 (no predictions for precision, no ground truth for recall) is
    0.0, so an image where exactly one side is empty scores 0 on every measure.
    """
    tp, fp, fn = (np.asarray(a, dtype=np.float64) for a in (tp, fp, fn))
    both_empty = (tp + fp + fn) == 0

    def safe(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        out = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
        out[both_empty] = 1.0
        return out

    return {
        "precision": safe(tp, tp + fp),
        "recall": safe(tp, tp + fn),
        "f1": safe(2 * tp, 2 * tp + fp + fn),
        "score": safe(tp, tp + fp + fn),
    }


def validate_thresholds(thresholds) -> tuple[float, ...]:
    """Return ``thresholds`` as a tuple of floats rounded to 10 decimals, after checking them.

    Rounding makes ``np.arange(0.5, 1, 0.05)`` (0.6000000000000001, ...) mean the decimals it was
    meant to. Raises ValueError for an empty sequence, values outside [0, 1], NaN or duplicates.
    """
    if isinstance(thresholds, (int, float, np.number)):
        thresholds = (thresholds,)
    try:
        values = tuple(round(float(t), _THRESHOLD_DECIMALS) for t in thresholds)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"thresholds must be a sequence of numbers in [0, 1], got {thresholds!r}"
        ) from err
    if not values:
        raise ValueError("thresholds is empty; pass at least one IoU threshold, e.g. (0.5,)")
    bad = [t for t in values if not 0.0 <= t <= 1.0]
    if bad:
        raise ValueError(f"IoU thresholds must lie in [0, 1], got {bad}")
    if len(set(values)) != len(values):
        raise ValueError(f"thresholds contain duplicates: {values}; pass each threshold once")
    return values


def _threshold_index(thresholds: tuple[float, ...], threshold: float) -> int:
    t = round(float(threshold), _THRESHOLD_DECIMALS)
    if t not in thresholds:
        raise ValueError(
            f"threshold {threshold} was not evaluated; evaluated thresholds: {thresholds}. "
            "Pass it in thresholds= when matching."
        )
    return thresholds.index(t)


def _readonly(a) -> np.ndarray:
    a = np.array(a)
    a.flags.writeable = False
    return a


@dataclass(frozen=True)
class MatchResult:
    """Matching of one ground-truth label image against one predicted label image.

    Attributes:
        thresholds: the IoU thresholds, as exact decimals.
        tp, fp, fn: ``int64`` arrays of shape ``(T,)``, one count per threshold.
        n_true, n_pred: number of ground-truth and predicted objects (``tp + fn == n_true`` and
            ``tp + fp == n_pred`` at every threshold).
        sum_matched_iou: summed IoU of the pairs matched at ``thresholds[0]``.
        inclusive: whether IoU equal to a threshold counted as a hit.
        precision, recall, f1, score: ``float64`` arrays of shape ``(T,)`` (see :func:`ratios`;
            ``score`` is the competition's TP / (TP + FP + FN)).
        mean_f1, mean_score: their means over the thresholds; ``mean_score`` with the default
            thresholds is the DSB2018 score of the image.
        mean_matched_iou: mean IoU of the pairs matched at ``thresholds[0]``; 0.0 when none matched
            (as StarDist's ``mean_matched_score``).

    Empty images: the competition's formula TP / (TP + FP + FN) is 0/0 when an image has no
    ground-truth object and no prediction. Here every ratio and score is then 1.0: nothing was to be
    found and nothing was wrongly found, and a perfect segmenter must score 1 on every image, empty
    ones included (with 0 it would be penalised for being right; with NaN one empty image would
    turn a data-set mean into NaN). When exactly one side is empty, TP = 0 and every ratio and score
    is 0.0 (all predictions false positives, or all nuclei missed).
    """

    thresholds: tuple[float, ...]
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    n_true: int
    n_pred: int
    sum_matched_iou: float = 0.0
    inclusive: bool = False
    precision: np.ndarray = field(init=False, repr=False)
    recall: np.ndarray = field(init=False, repr=False)
    f1: np.ndarray = field(init=False, repr=False)
    score: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        counts = {
            k: _readonly(np.asarray(getattr(self, k), dtype=np.int64)) for k in "tp fp fn".split()
        }
        for name, arr in counts.items():
            if arr.shape != (len(self.thresholds),):
                raise ValueError(
                    f"{name} must have one count per threshold ({len(self.thresholds)}), "
                    f"got shape {arr.shape}"
                )
            object.__setattr__(self, name, arr)
        for name, arr in ratios(counts["tp"], counts["fp"], counts["fn"]).items():
            object.__setattr__(self, name, _readonly(arr))

    @property
    def mean_f1(self) -> float:
        """F1 averaged over the thresholds."""
        return float(self.f1.mean())

    @property
    def mean_score(self) -> float:
        """Competition score averaged over the thresholds (the image's DSB score by default)."""
        return float(self.score.mean())

    @property
    def mean_matched_iou(self) -> float:
        """Mean IoU of the pairs matched at ``thresholds[0]``; 0.0 when none matched."""
        tp0 = int(self.tp[0])
        return self.sum_matched_iou / tp0 if tp0 else 0.0

    def at(self, threshold: float) -> ThresholdResult:
        """The counts and ratios at one of the evaluated thresholds (ValueError if not evaluated)."""
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


def _validate_labels(name: str, labels) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer) or arr.ndim != 2:
        hint = f"convert with {name}.astype(np.int32)"
        if arr.dtype == bool:
            hint = (
                f"a binary mask is not a label image; label it with skimage.measure.label({name})"
            )
        elif arr.ndim == 3:
            hint = (
                "if it is a stack of N binary masks (N, H, W), convert with "
                f"(np.arange(1, N + 1)[:, None, None] * {name}).max(axis=0)"
            )
        raise ValueError(
            f"{name} must be a 2-D integer label image (0 = background, k = object k), "
            f"got {arr.dtype} with shape {arr.shape}; {hint}"
        )
    return arr


def _compact(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Map label values to 0 (background) and 1..n in increasing order of label; return (ids, n)."""
    vmax = int(values.max())
    if vmax <= 4 * values.size + 1024:  # a lookup table is cheaper than sorting
        present = np.zeros(vmax + 1, dtype=bool)
        present[values] = True
        present[0] = False
        lut = np.cumsum(present, dtype=np.int64)
        lut[0] = 0
        return lut[values], int(lut[-1])
    ids, inverse = np.unique(values, return_inverse=True)
    if ids[0] == 0:
        return inverse.astype(np.int64), ids.size - 1
    return inverse.astype(np.int64) + 1, ids.size


def _overlaps(gt: np.ndarray, pred: np.ndarray):
    """Areas and pairwise intersections from one run-length pass over both images.

    Returns (area_true (n_true + 1,), area_pred (n_pred + 1,), pair_true, pair_pred, intersection),
    the last three 1-D int64 arrays over the overlapping pairs (compact ids 1..n).
    """
    g = gt.ravel()
    p = pred.ravel()
    if g.size == 0:
        empty = np.zeros(0, np.int64)
        return np.zeros(1, np.int64), np.zeros(1, np.int64), empty, empty, empty
    change = g[1:] != g[:-1]
    change |= p[1:] != p[:-1]
    starts = np.flatnonzero(change)
    starts += 1
    starts = np.concatenate(([0], starts))
    lengths = np.diff(np.append(starts, g.size))
    run_g, run_p = g[starts], p[starts]
    for name, run in (("gt", run_g), ("pred", run_p)):
        if np.issubdtype(run.dtype, np.signedinteger) and run.min() < 0:
            raise ValueError(
                f"{name} has negative labels (min {run.min()}); labels must be 0 (background) "
                "or positive object ids"
            )
    cg, n_g = _compact(run_g)
    cp, n_p = _compact(run_p)
    area_g = np.bincount(cg, weights=lengths, minlength=n_g + 1).astype(np.int64)
    area_p = np.bincount(cp, weights=lengths, minlength=n_p + 1).astype(np.int64)
    both = (cg > 0) & (cp > 0)
    keys = cg[both] * (n_p + 1) + cp[both]
    pair_keys, inverse = np.unique(keys, return_inverse=True)
    inter = np.bincount(inverse, weights=lengths[both]).astype(np.int64)
    return area_g, area_p, pair_keys // (n_p + 1), pair_keys % (n_p + 1), inter


def _hits(inter: np.ndarray, union: np.ndarray, threshold: float, inclusive: bool) -> np.ndarray:
    """Exact ``inter / union > threshold`` (or ``>=``) in integer arithmetic."""
    frac = Fraction(str(threshold))
    num, den = frac.numerator, frac.denominator
    if union.size and int(union.max()) * den >= 2**62:  # would overflow int64: use Python ints
        lhs = inter.astype(object) * den
        rhs = union.astype(object) * num
    else:
        lhs, rhs = inter * den, union * num
    return np.asarray(lhs >= rhs if inclusive else lhs > rhs, dtype=bool)


def _assign(
    pg: np.ndarray, pp: np.ndarray, iou: np.ndarray, n_true: int, n_pred: int
) -> np.ndarray:
    """Optimal one-to-one matching among candidate pairs; returns a bool mask of chosen pairs.

    Most matches first, then the largest summed IoU (StarDist's cost). Solved separately on each
    connected group of candidates; a group of one pair is matched directly.
    """
    chosen = np.zeros(pg.size, dtype=bool)
    if pg.size == 0:
        return chosen
    graph = coo_matrix((np.ones(pg.size), (pg - 1, n_true + pp - 1)), shape=(n_true + n_pred,) * 2)
    _, node_group = connected_components(graph, directed=False)
    group = node_group[pg - 1]
    edges_per_group = np.bincount(group)
    single = edges_per_group[group] == 1
    chosen[single] = True
    order = np.flatnonzero(~single)
    order = order[np.argsort(group[order], kind="stable")]
    bounds = np.flatnonzero(np.diff(group[order])) + 1
    for edges in np.split(order, bounds) if order.size else []:
        rows, r_idx = np.unique(pg[edges], return_inverse=True)
        cols, c_idx = np.unique(pp[edges], return_inverse=True)
        cost = np.zeros((rows.size, cols.size))
        cost[r_idx, c_idx] = -1.0 - iou[edges] / (2 * min(rows.size, cols.size))
        r, c = linear_sum_assignment(cost)
        taken = np.full((rows.size, cols.size), -1, dtype=np.int64)
        taken[r_idx, c_idx] = edges
        picked = taken[r, c]
        chosen[picked[picked >= 0]] = True
    return chosen


def match(gt, pred, thresholds=DSB_THRESHOLDS, *, inclusive: bool = False) -> MatchResult:
    """Match a predicted label image against the ground truth at every IoU threshold in one call.

    Args:
        gt: ``(H, W)`` integer label image, 0 = background, k > 0 = nucleus k. Labels need not be
            consecutive (1, 5, 9 is fine) and any integer dtype works; never modified.
        pred: ``(H, W)`` integer label image of the prediction, same rules.
        thresholds: IoU thresholds in [0, 1]; default the competition's 0.5, 0.55, ..., 0.95.
        inclusive: False (default, the competition): a hit needs IoU > threshold. True
            (StarDist/Cellpose): IoU >= threshold.

    Returns:
        :class:`MatchResult` with ``tp, fp, fn`` (``int64 (T,)``), ``precision, recall, f1, score``
        (``float64 (T,)``), their means and the mean matched IoU.

    Raises:
        ValueError: not 2-D, not an integer dtype (bool or float included), shapes differ, negative
        labels, bad thresholds.

    Example:
        >>> import numpy as np
        >>> gt = np.zeros((4, 8), np.int32); gt[:, :4] = 1; gt[:, 4:] = 2
        >>> pred = np.zeros((4, 8), np.int32); pred[:, :3] = 7  # IoU 12/16 with gt nucleus 1
        >>> r = match(gt, pred, thresholds=(0.5, 0.75))
        >>> r.tp.tolist(), r.fp.tolist(), r.fn.tolist()
        ([1, 0], [0, 1], [1, 2])
    """
    gt = _validate_labels("gt", gt)
    pred = _validate_labels("pred", pred)
    if gt.shape != pred.shape:
        raise ValueError(
            f"gt and pred must have the same shape, got {gt.shape} and {pred.shape}; "
            "predict on the full image (or crop both to the same window)"
        )
    thresholds = validate_thresholds(thresholds)
    area_g, area_p, pg, pp, inter = _overlaps(gt, pred)
    n_true, n_pred = area_g.size - 1, area_p.size - 1
    union = area_g[pg] + area_p[pp] - inter
    iou = inter / np.maximum(union, 1)
    tp = np.zeros(len(thresholds), dtype=np.int64)
    sum_iou = 0.0
    for i, t in enumerate(thresholds):
        hit = _hits(inter, union, t, inclusive)
        chosen = np.flatnonzero(hit)
        if t < 0.5 or (t == 0.5 and inclusive):  # a nucleus may hit several: assign one-to-one
            chosen = chosen[_assign(pg[chosen], pp[chosen], iou[chosen], n_true, n_pred)]
        tp[i] = chosen.size
        if i == 0:
            sum_iou = float(iou[chosen].sum())
    return MatchResult(
        thresholds=thresholds,
        tp=tp,
        fp=n_pred - tp,
        fn=n_true - tp,
        n_true=n_true,
        n_pred=n_pred,
        sum_matched_iou=sum_iou,
        inclusive=inclusive,
    )


def dsb_score(gt, pred) -> float:
    """The DSB2018 score of one image: mean over IoU > 0.5, 0.55, ..., 0.95 of TP / (TP + FP + FN).

    ``gt`` and ``pred`` are ``(H, W)`` integer label images (see :func:`match`). Returns a float in
    [0, 1]; 1.0 when both are empty, 0.0 when exactly one is.
    """
    return match(gt, pred).mean_score
