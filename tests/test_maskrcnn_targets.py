"""Mask R-CNN targets: boxes, labels and masks in torchvision's format, and their batching."""

import numpy as np
import pytest
import torch

from segmentation.models.maskrcnn.targets import collate, encode_targets


def _labels() -> np.ndarray:
    labels = np.zeros((10, 12), dtype=np.int32)
    labels[1:4, 2:6] = 3  # ids with gaps: 3, 7, 9
    labels[6, 8] = 7  # a one-pixel nucleus
    labels[5:9, 0:3] = 9
    return labels


def test_boxes_labels_masks_match_each_nucleus():
    labels = _labels()
    t = encode_targets(labels)
    assert t["boxes"].dtype == np.float32 and t["boxes"].shape == (3, 4)
    assert t["labels"].dtype == np.int64 and t["labels"].tolist() == [1, 1, 1]
    assert t["masks"].dtype == np.uint8 and t["masks"].shape == (3, 10, 12)
    # increasing id order, [x1, y1, x2, y2] with exclusive stops
    assert t["boxes"].tolist() == [[2, 1, 6, 4], [8, 6, 9, 7], [0, 5, 3, 9]]
    for mask, k in zip(t["masks"], [3, 7, 9], strict=True):
        np.testing.assert_array_equal(mask, labels == k)


def test_one_pixel_nucleus_gets_a_non_degenerate_box():
    labels = np.zeros((5, 5), dtype=np.uint16)
    labels[4, 4] = 1
    (box,) = encode_targets(labels)["boxes"]
    assert box[2] == box[0] + 1 and box[3] == box[1] + 1


def test_empty_label_image_gives_empty_targets():
    t = encode_targets(np.zeros((16, 8), dtype=np.int32))
    assert t["boxes"].shape == (0, 4) and t["labels"].shape == (0,)
    assert t["masks"].shape == (0, 16, 8)


def test_input_not_modified():
    labels = _labels()
    before = labels.copy()
    encode_targets(labels)
    np.testing.assert_array_equal(labels, before)


@pytest.mark.parametrize(
    ("labels", "error", "match"),
    [
        (np.zeros((4, 4), dtype=np.float32), TypeError, "integer"),
        (np.zeros((4, 4), dtype=bool), TypeError, "skimage.measure.label"),
        (np.zeros((2, 4, 4), dtype=np.int32), ValueError, "2-D"),
        (np.full((4, 4), -1, dtype=np.int32), ValueError, ">= 0"),
        ([[0, 1]], TypeError, "numpy array"),
    ],
)
def test_bad_labels_are_refused_with_a_fix(labels, error, match):
    with pytest.raises(error, match=match):
        encode_targets(labels)


def test_collate_gives_torchvision_tensors_per_image():
    batch = collate([encode_targets(_labels()), encode_targets(np.zeros((10, 12), np.int32))])
    assert len(batch) == 2
    assert batch[0]["boxes"].dtype == torch.float32 and batch[0]["boxes"].shape == (3, 4)
    assert batch[0]["labels"].dtype == torch.int64
    assert batch[0]["masks"].dtype == torch.uint8 and batch[0]["masks"].shape == (3, 10, 12)
    assert batch[1]["boxes"].shape == (0, 4) and batch[1]["masks"].shape == (0, 10, 12)


def test_collate_refuses_malformed_targets():
    with pytest.raises(ValueError, match="non-empty list"):
        collate([])
    good = encode_targets(_labels())
    with pytest.raises(ValueError, match="keys"):
        collate([{"boxes": good["boxes"]}])
    with pytest.raises(ValueError, match="inconsistent shapes"):
        collate([{**good, "labels": good["labels"][:1]}])
