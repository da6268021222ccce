"""Mask R-CNN decode: score-ordered painting, dropping, thresholds, pasting and bad input."""

import copy
import dataclasses

import numpy as np
import pytest
import torch

from segmentation.models.maskrcnn.decode import MaskRCNNThresholds, decode
from segmentation.models.maskrcnn.paste import paste_box_mask

NO_CLEANUP = MaskRCNNThresholds(score_threshold=0.0, nms_iou=1.0, min_kept_fraction=0.0, min_size=0)


def _raw(masks, scores, boxes=None) -> dict:
    """Full-image raw outputs; boxes default to each mask's bounding box."""
    masks = np.asarray(masks, dtype=np.float32)
    if boxes is None:
        boxes = []
        for m in masks:
            rows, cols = np.nonzero(m > 0)
            boxes.append([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1])
    return {
        "boxes": np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        "scores": np.asarray(scores, dtype=np.float32),
        "masks": masks,
    }


def _square(shape, y0, x0, size, value=1.0):
    m = np.zeros(shape, dtype=np.float32)
    m[y0 : y0 + size, x0 : x0 + size] = value
    return m


def test_overlap_goes_to_the_best_score_and_ids_follow_scores():
    a = _square((20, 20), 2, 2, 8)  # 64 px
    b = _square((20, 20), 6, 6, 8)  # overlaps a on a 4x4 = 16 px corner
    c = _square((20, 20), 14, 0, 4)
    labels = decode(_raw([a, b, c], [0.6, 0.9, 0.7]), NO_CLEANUP)
    assert labels.dtype == np.int32 and labels.shape == (20, 20)
    assert (labels[6:10, 6:10] == 1).all()  # b scores best: id 1, keeps the overlap
    assert (labels == 1).sum() == 64 and (labels == 2).sum() == 16 and (labels == 3).sum() == 48
    assert labels[3, 3] == 3 and labels[15, 1] == 2


def test_ties_keep_the_input_order():
    a, b = _square((10, 10), 0, 0, 6), _square((10, 10), 3, 3, 6)
    labels = decode(_raw([a, b], [0.8, 0.8]), NO_CLEANUP)
    assert labels[4, 4] == 1 and labels[0, 0] == 1 and labels[8, 8] == 2


def test_instances_losing_too_much_area_are_dropped():
    big = _square((20, 20), 0, 0, 10)  # 100 px
    inner = _square((20, 20), 0, 0, 10)
    inner[:, 6:] = 0  # 60 px, all of them under `big`
    half = _square((20, 20), 0, 5, 10)  # 100 px, 50 of them under `big`
    raw = _raw([big, inner, half], [0.9, 0.8, 0.7])
    labels = decode(raw, dataclasses.replace(NO_CLEANUP, min_kept_fraction=0.5))
    assert labels.max() == 2  # inner (0 % free) dropped, half (50 % free) kept
    assert (labels == 2).sum() == 50
    labels = decode(raw, dataclasses.replace(NO_CLEANUP, min_kept_fraction=0.6))
    assert labels.max() == 1  # half now keeps too little


def test_score_mask_and_size_thresholds():
    a = _square((16, 16), 0, 0, 6, value=0.9)
    a[0, :6] = 0.3  # one row below a 0.5 mask threshold
    b = _square((16, 16), 10, 10, 2)  # 4 px
    c = _square((16, 16), 8, 0, 5)
    raw = _raw([a, b, c], [0.9, 0.8, 0.2])
    t = MaskRCNNThresholds(score_threshold=0.5, mask_threshold=0.5, nms_iou=1.0, min_size=5)
    labels = decode(raw, t)
    assert labels.max() == 1  # c below the score threshold, b below min_size
    assert (labels == 1).sum() == 30 and (labels[0] == 0).all()
    labels = decode(raw, dataclasses.replace(t, min_size=4))
    assert labels.max() == 2 and (labels == 2).sum() == 4


def test_nms_drops_duplicate_boxes_before_painting():
    a = _square((12, 12), 0, 0, 8)
    c = np.zeros_like(a)
    c[8:12, 0:8] = 1.0  # no pixel under a's mask, but a box almost equal to a's
    raw = _raw([a, c], [0.9, 0.8], boxes=[[0, 0, 8, 8], [0, 0, 8, 9]])
    assert decode(raw, NO_CLEANUP).max() == 2
    assert decode(raw, dataclasses.replace(NO_CLEANUP, nms_iou=0.5)).max() == 1


def test_empty_raw_gives_empty_labels_of_the_right_shape():
    empty_full = _raw(np.zeros((0, 7, 9)), [])
    assert decode(empty_full).shape == (7, 9) and decode(empty_full).max() == 0
    empty_box = {"boxes": np.zeros((0, 4)), "scores": np.zeros(0), "masks": np.zeros((0, 28, 28))}
    labels = decode({**empty_box, "image_shape": (5, 6)})
    assert labels.shape == (5, 6) and labels.dtype == np.int32 and labels.max() == 0
    all_low = _raw([_square((8, 8), 0, 0, 4)], [0.1])
    assert decode(all_low).max() == 0


def test_inputs_not_modified():
    rng = np.random.default_rng(0)
    box_level = {
        "boxes": np.array([[1, 1, 9, 9], [4, 4, 12, 14]], dtype=np.float32),
        "scores": np.array([0.7, 0.9], dtype=np.float32),
        "masks": rng.random((2, 28, 28)).astype(np.float32),
        "image_shape": (16, 16),
    }
    full = _raw([_square((16, 16), 1, 1, 8), _square((16, 16), 4, 4, 8)], [0.7, 0.9])
    for raw in (box_level, full):
        before = copy.deepcopy(raw)
        decode(raw, MaskRCNNThresholds(min_size=0))
        for key in raw:
            np.testing.assert_array_equal(raw[key], before[key])


def test_box_level_masks_decode_like_their_pasted_full_masks():
    rng = np.random.default_rng(1)
    boxes = np.array([[2.3, 1.0, 11.6, 9.2], [6.0, 5.5, 17.0, 15.0], [-3, 12, 6, 21]], np.float32)
    masks = (rng.random((3, 14, 14)) > 0.3).astype(np.float32)
    raw = {"boxes": boxes, "scores": np.array([0.9, 0.8, 0.7], np.float32), "masks": masks}
    full = np.zeros((3, 18, 20), dtype=np.float32)
    for i in range(3):
        y0, x0, probs = paste_box_mask(masks[i], boxes[i], (18, 20))
        full[i, y0 : y0 + probs.shape[0], x0 : x0 + probs.shape[1]] = probs
    expected = decode({**raw, "masks": full}, NO_CLEANUP)
    np.testing.assert_array_equal(decode({**raw, "image_shape": (18, 20)}, NO_CLEANUP), expected)
    assert expected.max() == 3


def test_paste_covers_the_box_and_clips_to_the_image():
    ones = np.ones((28, 28), dtype=np.float32)
    y0, x0, probs = paste_box_mask(ones, np.array([3, 2, 10, 6]), (20, 20))
    assert (y0, x0, probs.shape) == (2, 3, (5, 8))  # stop pixel included: the RoI's last sample
    np.testing.assert_allclose(probs, 1.0, rtol=1e-6)
    y0, x0, probs = paste_box_mask(ones, np.array([-4, 15, 6, 30]), (20, 20))
    assert (y0, x0, probs.shape) == (15, 0, (5, 7))
    assert paste_box_mask(ones, np.array([30, 30, 40, 40]), (20, 20))[2].size == 0


def test_paste_inverts_a_left_right_ramp():
    ramp = np.tile(np.linspace(0, 1, 28, dtype=np.float32), (28, 1))
    _, _, probs = paste_box_mask(ramp, np.array([0, 0, 27, 27]), (28, 28))
    assert np.all(np.diff(probs, axis=1) >= 0) and np.allclose(probs[0], probs[-1])
    assert probs[0, 0] == pytest.approx(0.0, abs=0.02) and probs[0, -1] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ([1, 2], "keys"),
        ({"boxes": np.zeros((1, 4)), "scores": np.ones(1)}, "keys"),
        (
            {"boxes": np.zeros((2, 4)), "scores": np.ones(1), "masks": np.zeros((1, 4, 4))},
            "inconsistent",
        ),
        (
            {"boxes": np.zeros((1, 4)), "scores": np.ones(1), "masks": np.zeros((1, 1, 4, 4))},
            "squeeze",
        ),
        (
            {"boxes": np.zeros((1, 4)), "scores": [np.nan], "masks": np.zeros((1, 4, 4))},
            "finite",
        ),
    ],
)
def test_bad_raw_outputs_are_refused(raw, match):
    with pytest.raises(ValueError, match=match):
        decode(raw)


def test_thresholds_are_validated_and_frozen():
    with pytest.raises(ValueError, match="score_threshold"):
        MaskRCNNThresholds(score_threshold=1.5)
    with pytest.raises(ValueError, match="mask_threshold"):
        MaskRCNNThresholds(mask_threshold=0.0)
    with pytest.raises(ValueError, match="min_size"):
        MaskRCNNThresholds(min_size=2.5)
    with pytest.raises(TypeError, match="number"):
        MaskRCNNThresholds(nms_iou="0.5")
    assert MaskRCNNThresholds(min_size=4.0).min_size == 4
    with pytest.raises(dataclasses.FrozenInstanceError):
        MaskRCNNThresholds().score_threshold = 0.1
    with pytest.raises(TypeError, match="MaskRCNNThresholds"):
        decode(_raw(np.zeros((0, 4, 4)), []), {"score_threshold": 0.5})


def test_bucketed_nms_equals_torchvision_nms():
    from torchvision.ops import nms

    from segmentation.models.maskrcnn.decode import _BoxGrid

    rng = np.random.default_rng(3)
    xy = rng.uniform(-20, 300, size=(400, 2))
    wh = np.where(
        rng.random((400, 1)) < 0.1, rng.uniform(60, 200, (400, 2)), rng.uniform(1, 30, (400, 2))
    )
    boxes = np.concatenate([xy, xy + wh], axis=1)
    scores = rng.random(400)
    for iou in (0.3, 0.5, 0.7):
        expected = nms(torch.from_numpy(boxes), torch.from_numpy(scores), iou).numpy()
        grid = _BoxGrid(len(boxes), cell=64.0)
        kept = [i for i in np.argsort(-scores) if not grid.suppresses(boxes[i], iou)]
        assert kept == expected.tolist()
