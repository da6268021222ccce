"""Property tests of segmentation.evaluation.match against an independent per-object reference."""

from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_bipartite_matching

from segmentation.evaluation.matching import DSB_THRESHOLDS, match

THRESHOLDS = (0.0, 0.1, 0.25, 0.4, 0.5) + DSB_THRESHOLDS[1:]


@st.composite
def label_pairs(draw):
    """Two label images of one shape: a few labels (with gaps), blocky so objects overlap."""
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    ids = st.sampled_from([0, 0, 0, 1, 2, 3, 5, 9])
    a = draw(arrays(np.int32, (h, w), elements=ids))
    b = draw(arrays(np.int32, (h, w), elements=ids))
    if draw(st.booleans()):  # correlated prediction: a copy with a few pixels changed
        b = a.copy()
        flat = b.reshape(-1)
        for i in draw(st.lists(st.integers(0, h * w - 1), max_size=6)):
            flat[i] = draw(ids)
    return a, b


def reference_tp(gt, pred, threshold, inclusive):
    """TP by a per-object loop and a maximum bipartite matching on the hit graph."""
    g_ids = [k for k in np.unique(gt) if k]
    p_ids = [k for k in np.unique(pred) if k]
    hits = np.zeros((len(g_ids), len(p_ids)), dtype=np.int8)
    t = Fraction(str(threshold))
    for i, g in enumerate(g_ids):
        gm = gt == g
        for j, p in enumerate(p_ids):
            pm = pred == p
            inter, union = int((gm & pm).sum()), int((gm | pm).sum())
            if inter:
                iou = Fraction(inter, union)
                hits[i, j] = iou >= t if inclusive else iou > t
    if not hits.any():
        return 0
    matching = maximum_bipartite_matching(csr_matrix(hits), perm_type="column")
    return int((matching >= 0).sum())


@settings(max_examples=150, deadline=None, derandomize=True)
@given(label_pairs(), st.booleans())
def test_tp_equals_reference_at_every_threshold(pair, inclusive):
    gt, pred = pair
    r = match(gt, pred, THRESHOLDS, inclusive=inclusive)
    expected = [reference_tp(gt, pred, t, inclusive) for t in THRESHOLDS]
    assert r.tp.tolist() == expected


@settings(max_examples=150, deadline=None, derandomize=True)
@given(label_pairs(), st.booleans())
def test_counts_add_up_to_object_numbers(pair, inclusive):
    gt, pred = pair
    r = match(gt, pred, THRESHOLDS, inclusive=inclusive)
    n_true = len(set(np.unique(gt).tolist()) - {0})
    n_pred = len(set(np.unique(pred).tolist()) - {0})
    assert (r.n_true, r.n_pred) == (n_true, n_pred)
    assert ((r.tp + r.fn) == n_true).all() and ((r.tp + r.fp) == n_pred).all()
    assert (r.tp >= 0).all() and (r.fp >= 0).all() and (r.fn >= 0).all()
    assert (np.diff(r.tp) <= 0).all()  # thresholds ascend, so hits can only disappear
    assert ((r.score >= 0) & (r.score <= 1)).all() and (r.score <= r.f1 + 1e-12).all()


@settings(max_examples=150, deadline=None, derandomize=True)
@given(label_pairs(), st.booleans())
def test_swapping_gt_and_pred_swaps_fp_and_fn(pair, inclusive):
    gt, pred = pair
    ab = match(gt, pred, THRESHOLDS, inclusive=inclusive)
    ba = match(pred, gt, THRESHOLDS, inclusive=inclusive)
    assert ab.tp.tolist() == ba.tp.tolist()
    assert ab.fp.tolist() == ba.fn.tolist() and ab.fn.tolist() == ba.fp.tolist()
    np.testing.assert_allclose(ab.score, ba.score)
    np.testing.assert_allclose(ab.f1, ba.f1)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(label_pairs())
def test_identical_inputs_score_one_everywhere(pair):
    gt, _ = pair
    for inclusive in (False, True):
        r = match(gt, gt.copy(), THRESHOLDS, inclusive=inclusive)
        assert (r.score == 1.0).all() and (r.f1 == 1.0).all()
        assert (r.fp == 0).all() and (r.fn == 0).all()
        assert r.mean_matched_iou == (1.0 if r.n_true else 0.0)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(label_pairs(), st.sampled_from([np.uint8, np.uint16, np.int16, np.int64, np.uint64]))
def test_integer_dtype_does_not_matter(pair, dtype):
    gt, pred = pair
    base = match(gt, pred, THRESHOLDS)
    other = match(gt.astype(dtype), pred.astype(dtype), THRESHOLDS)
    assert base.tp.tolist() == other.tp.tolist()
    assert base.mean_matched_iou == other.mean_matched_iou


@settings(max_examples=60, deadline=None, derandomize=True)
@given(label_pairs())
def test_transposed_and_non_contiguous_views(pair):
    gt, pred = pair
    base = match(gt, pred, THRESHOLDS)
    assert match(gt.T, pred.T, THRESHOLDS).tp.tolist() == base.tp.tolist()
    assert match(gt[:, ::-1], pred[:, ::-1], THRESHOLDS).tp.tolist() == base.tp.tolist()
