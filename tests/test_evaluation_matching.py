"""Known-answer tests of segmentation.evaluation.matching: match, MatchResult, dsb_score."""

from fractions import Fraction

import numpy as np
import pytest

from segmentation.evaluation.matching import DSB_THRESHOLDS, MatchResult, dsb_score, match


def disk(shape, center, radius):
    yy, xx = np.indices(shape)
    return (yy - center[0]) ** 2 + (xx - center[1]) ** 2 <= radius**2


def rect(shape, rows, cols, value=1, out=None):
    out = np.zeros(shape, np.int32) if out is None else out
    out[rows[0] : rows[1], cols[0] : cols[1]] = value
    return out


def test_dsb_thresholds_are_exact_decimals():
    assert DSB_THRESHOLDS == (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
    assert match(np.ones((2, 2), np.int32), np.ones((2, 2), np.int32)).thresholds == DSB_THRESHOLDS


@pytest.mark.parametrize("shift", range(0, 21, 2))
def test_shifted_disks_hit_disappears_at_the_counted_iou(shift):
    shape = (80, 110)
    a = disk(shape, (40, 40), 20)
    b = disk(shape, (40, 40 + shift), 20)
    iou = Fraction(int((a & b).sum()), int((a | b).sum()))  # direct pixel count
    thresholds = tuple(round(0.01 * i, 2) for i in range(100))
    strict = match(a.astype(np.int32), b.astype(np.int32) * 3, thresholds)
    inclusive = match(a.astype(np.int32), b.astype(np.int32) * 3, thresholds, inclusive=True)
    expected_strict = [int(iou > Fraction(str(t))) for t in thresholds]
    expected_incl = [int(iou >= Fraction(str(t))) for t in thresholds]
    assert strict.tp.tolist() == expected_strict
    assert inclusive.tp.tolist() == expected_incl
    # the last threshold that still hits is the largest one below the counted IoU
    last_hit = max((t for t in thresholds if Fraction(str(t)) < iou), default=None)
    if last_hit is not None:
        assert strict.at(last_hit).tp == 1
    assert strict.fp.tolist() == [1 - v for v in expected_strict]
    assert strict.fn.tolist() == [1 - v for v in expected_strict]
    if strict.tp[0]:
        assert strict.mean_matched_iou == pytest.approx(float(iou))


def test_shifted_disks_known_values():
    a = disk((80, 80), (40, 40), 15).astype(np.int32)
    assert dsb_score(a, a) == 1.0
    far = np.roll(a, 30, axis=1)  # no overlap at all
    r = match(a, far)
    assert r.tp.sum() == 0 and (r.fp == 1).all() and (r.fn == 1).all()
    assert r.mean_score == 0.0 and r.mean_matched_iou == 0.0


@pytest.mark.parametrize(
    ("width", "shift", "iou"),
    [(20, 5, Fraction(3, 5)), (15, 5, Fraction(1, 2)), (17, 3, Fraction(7, 10))],
)
def test_iou_equal_to_threshold_strict_vs_inclusive(width, shift, iou):
    gt = rect((10, 40), (0, 10), (0, width))
    pred = rect((10, 40), (0, 10), (shift, width + shift))
    t = float(iou)
    assert match(gt, pred, (t,)).tp.tolist() == [0]  # the competition: IoU > t
    assert match(gt, pred, (t,), inclusive=True).tp.tolist() == [1]  # StarDist/Cellpose: >=
    # arange artefacts (0.6000000000000001) are read as the decimal they stand for
    assert match(gt, pred, (t + 1e-16,), inclusive=True).tp.tolist() == [1]


def test_arange_thresholds_equal_exact_ones():
    gt = rect((10, 40), (0, 10), (0, 20))
    pred = rect((10, 40), (0, 10), (5, 25))
    a = match(gt, pred, np.arange(0.5, 1.0, 0.05), inclusive=True)
    b = match(gt, pred, DSB_THRESHOLDS, inclusive=True)
    assert a.thresholds == DSB_THRESHOLDS
    assert a.tp.tolist() == b.tp.tolist() == [1, 1, 1, 0, 0, 0, 0, 0, 0, 0]


def test_split_nucleus():
    gt = rect((10, 30), (0, 10), (0, 20))
    pred = rect((10, 30), (0, 10), (0, 12), 1)
    rect((10, 30), (0, 10), (12, 20), 2, out=pred)  # the larger part has IoU 120/200 = 0.6
    r = match(gt, pred)
    assert r.n_true == 1 and r.n_pred == 2
    assert r.tp.tolist() == [1, 1] + [0] * 8
    assert r.fp.tolist() == [1, 1] + [2] * 8
    assert r.fn.tolist() == [0, 0] + [1] * 8
    assert r.at(0.55).score == pytest.approx(0.5)
    assert r.mean_score == pytest.approx((0.5 + 0.5) / 10)
    even = rect((10, 30), (0, 10), (0, 10), 1)
    rect((10, 30), (0, 10), (10, 20), 2, out=even)  # halves: IoU exactly 0.5, not > 0.5
    assert match(gt, even).tp.sum() == 0


def test_merged_pair():
    gt = rect((10, 30), (0, 10), (0, 12), 1)
    rect((10, 30), (0, 10), (12, 20), 2, out=gt)
    pred = rect((10, 30), (0, 10), (0, 20), 4)
    r = match(gt, pred)
    assert (r.n_true, r.n_pred) == (2, 1)
    assert r.tp.tolist() == [1, 1] + [0] * 8
    assert r.fn.tolist() == [1, 1] + [2] * 8
    assert r.fp.tolist() == [0, 0] + [1] * 8
    assert r.at(0.5).precision == 1.0 and r.at(0.5).recall == 0.5
    assert r.at(0.5).f1 == pytest.approx(2 / 3)


def test_empty_prediction_and_empty_truth():
    gt = rect((20, 20), (0, 5), (0, 5), 1)
    rect((20, 20), (10, 15), (10, 15), 2, out=gt)
    empty = np.zeros_like(gt)
    r = match(gt, empty)
    assert (r.tp == 0).all() and (r.fp == 0).all() and (r.fn == 2).all()
    for values in (r.precision, r.recall, r.f1, r.score):
        assert (values == 0).all()
    r = match(empty, gt)
    assert (r.fp == 2).all() and (r.fn == 0).all() and r.mean_score == 0 and r.mean_f1 == 0
    assert (r.precision == 0).all() and (r.recall == 0).all()


def test_both_empty_scores_one():
    empty = np.zeros((16, 16), np.uint8)
    r = match(empty, empty)
    assert (r.n_true, r.n_pred) == (0, 0)
    for values in (r.precision, r.recall, r.f1, r.score):
        assert (values == 1.0).all()
    assert dsb_score(empty, empty) == 1.0


def _random_labels(seed, shape=(64, 64), n=12):
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, np.int32)
    for k in range(1, n + 1):
        y, x = rng.integers(0, shape[0] - 8), rng.integers(0, shape[1] - 8)
        h, w = rng.integers(3, 12, size=2)
        labels[y : y + h, x : x + w] = k
    return labels


def test_permuted_ids_and_gaps_do_not_change_the_result():
    gt = _random_labels(0)
    pred = np.roll(_random_labels(0), (1, 2), axis=(0, 1))
    pred[:5] = 0
    base = match(gt, pred, (0.1, 0.3) + DSB_THRESHOLDS)
    rng = np.random.default_rng(1)
    perm_g = np.concatenate(([0], rng.permutation(np.arange(1, gt.max() + 1))))
    perm_p = np.concatenate(([0], rng.permutation(np.arange(1, pred.max() + 1))))
    for g, p in [
        (perm_g[gt], perm_p[pred]),
        (gt * 4, pred * 9 + (pred > 0)),  # gaps: 4, 8, ... and 10, 19, ...
        (np.where(gt > 0, gt + 10**9, 0), pred.astype(np.uint64) * np.uint64(2**59)),  # huge ids
    ]:
        r = match(g, p, (0.1, 0.3) + DSB_THRESHOLDS)
        assert r.tp.tolist() == base.tp.tolist()
        assert r.fp.tolist() == base.fp.tolist() and r.fn.tolist() == base.fn.tolist()
        assert r.mean_matched_iou == pytest.approx(base.mean_matched_iou)


def test_labels_with_gaps_known_answer():
    gt = np.zeros((10, 40), np.uint16)
    gt[:, 0:10], gt[:, 15:25], gt[:, 30:40] = 1, 5, 9
    pred = gt.copy()
    pred[:, 30:40] = 0
    r = match(gt, pred)
    assert (r.n_true, r.n_pred) == (3, 2)
    assert (r.tp == 2).all() and (r.fn == 1).all() and (r.fp == 0).all()
    assert r.mean_score == pytest.approx(2 / 3)


def test_low_threshold_uses_optimal_one_to_one_assignment():
    # IoU: gt1-pred1 8/16, gt1-pred2 4/12, gt2-pred1 4/16. Greedy by IoU pairs gt1-pred1 and
    # leaves gt 2 unmatched; the optimal assignment (gt1-pred2, gt2-pred1) matches both.
    gt = np.zeros((10, 30), np.int32)
    gt[:, 0:12], gt[:, 12:20] = 1, 2
    pred = np.zeros_like(gt)
    pred[:, 4:16], pred[:, 0:4] = 1, 2
    r = match(gt, pred, (0.1, 0.2, 0.5), inclusive=True)
    assert r.tp.tolist() == [2, 2, 1]  # at 0.5 only gt 1 - pred 1 (IoU 8/16) remains
    assert r.fp.tolist() == [0, 0, 1] and r.fn.tolist() == [0, 0, 1]
    assert match(gt, pred, (0.5,)).tp.tolist() == [0]


def test_inclusive_at_one_half_is_one_to_one():
    # one gt of 2 pixels, two 1-pixel predictions with IoU exactly 1/2 each
    gt = np.array([[1, 1]], np.int32)
    pred = np.array([[1, 2]], np.int32)
    assert match(gt, pred, (0.5,), inclusive=True).tp.tolist() == [1]
    assert match(gt, pred, (0.5,)).tp.tolist() == [0]


def test_inputs_not_modified_and_result_read_only():
    gt, pred = _random_labels(2), _random_labels(3)
    gt_copy, pred_copy = gt.copy(), pred.copy()
    r = match(gt, pred, (0.2, 0.5))
    np.testing.assert_array_equal(gt, gt_copy)
    np.testing.assert_array_equal(pred, pred_copy)
    with pytest.raises(ValueError):
        r.tp[0] = 5
    with pytest.raises(AttributeError):
        r.n_true = 3


def test_at_returns_the_threshold_record():
    gt = rect((10, 40), (0, 10), (0, 20))
    pred = rect((10, 40), (0, 10), (5, 25))  # IoU 0.6
    r = match(gt, pred)
    rec = r.at(0.55)
    assert (rec.threshold, rec.tp, rec.fp, rec.fn) == (0.55, 1, 0, 0)
    assert (rec.precision, rec.recall, rec.f1, rec.score) == (1.0, 1.0, 1.0, 1.0)
    assert r.at(0.6).score == 0.0
    with pytest.raises(ValueError, match="0.72 was not evaluated"):
        r.at(0.72)


def test_match_result_checks_count_shapes():
    with pytest.raises(ValueError, match="one count per threshold"):
        MatchResult(thresholds=(0.5, 0.6), tp=[1], fp=[0], fn=[0], n_true=1, n_pred=1)


@pytest.mark.parametrize(
    ("gt", "pred", "message"),
    [
        (np.zeros((4, 4), np.float32), np.zeros((4, 4), np.int32), "float32 .*astype"),
        (np.zeros((4, 4), bool), np.zeros((4, 4), np.int32), "skimage.measure.label"),
        (np.zeros((2, 4, 4), np.int32), np.zeros((2, 4, 4), np.int32), "stack of N binary masks"),
        (np.zeros(4, np.int32), np.zeros(4, np.int32), "2-D integer label image"),
        (np.zeros((4, 4), np.int32), np.zeros((4, 5), np.int32), r"same shape.*\(4, 4\).*\(4, 5\)"),
        (np.full((4, 4), -1, np.int32), np.zeros((4, 4), np.int32), "gt has negative labels"),
        (np.zeros((4, 4), np.int32), np.full((4, 4), -3, np.int64), "pred has negative labels"),
    ],
)
def test_bad_label_images_raise_clear_errors(gt, pred, message):
    with pytest.raises(ValueError, match=message):
        match(gt, pred)


@pytest.mark.parametrize(
    ("thresholds", "message"),
    [
        ((), "empty"),
        ((0.5, 1.5), r"\[0, 1\]"),
        ((0.5, 0.5), "duplicates"),
        ((float("nan"),), r"\[0, 1\]"),
    ],
)
def test_bad_thresholds_raise(thresholds, message):
    with pytest.raises(ValueError, match=message):
        match(np.zeros((3, 3), np.int32), np.zeros((3, 3), np.int32), thresholds)


def test_threshold_must_be_numbers():
    with pytest.raises(TypeError, match="sequence of numbers"):
        match(np.zeros((3, 3), np.int32), np.zeros((3, 3), np.int32), ("high",))
