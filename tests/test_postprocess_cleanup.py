"""Clean-up of label images: small objects, holes, renumbering; inputs never modified."""

from __future__ import annotations

import numpy as np
import pytest

from segmentation.postprocess import fill_holes, object_sizes, relabel, remove_small_objects


def _labels():
    labels = np.zeros((12, 12), np.int32)
    labels[1:6, 1:6] = 4  # 25 px
    labels[8:10, 8:10] = 9  # 4 px
    labels[0, 11] = 2  # 1 px
    return labels


def test_object_sizes_counts_every_present_label():
    values, counts = object_sizes(_labels())
    assert values.tolist() == [2, 4, 9]
    assert counts.tolist() == [1, 25, 4]


def test_object_sizes_handles_huge_label_values():
    labels = np.zeros((4, 4), np.int64)
    labels[0, 0] = 2**31 - 1
    values, counts = object_sizes(labels)
    assert values.tolist() == [2**31 - 1] and counts.tolist() == [1]


def test_remove_small_objects_drops_only_small_ones_and_keeps_values():
    labels = _labels()
    before = labels.copy()
    out = remove_small_objects(labels, 4)
    assert out.dtype == np.int32
    assert sorted(np.unique(out).tolist()) == [0, 4, 9]
    assert (out[labels == 4] == 4).all()
    np.testing.assert_array_equal(labels, before)
    assert remove_small_objects(labels, 0) is not labels
    np.testing.assert_array_equal(remove_small_objects(labels, 0), labels)


@pytest.mark.parametrize("bad", [-1, 2.5, True, "3"])
def test_remove_small_objects_rejects_bad_min_size(bad):
    with pytest.raises(ValueError, match="min_size"):
        remove_small_objects(_labels(), bad)


def test_fill_holes_fills_holes_owned_by_one_object_only():
    labels = np.zeros((12, 20), np.int32)
    labels[1:8, 1:8] = 1
    labels[3:5, 3:5] = 0  # hole inside object 1
    # A hole enclosed by two touching objects (2 on the left, 3 on the right) stays background.
    labels[1:8, 10:14] = 2
    labels[1:8, 14:18] = 3
    labels[3:5, 13:15] = 0
    # A notch open to the image border is not a hole.
    labels[9:12, 1:8] = 5
    labels[10:12, 3:5] = 0
    before = labels.copy()
    out = fill_holes(labels)
    assert (out[3:5, 3:5] == 1).all()
    assert (out[3:5, 13:15] == 0).all()
    assert (out[10:12, 3:5] == 0).all()
    np.testing.assert_array_equal(labels, before)
    np.testing.assert_array_equal(out[out != labels], 1)


def test_fill_holes_without_holes_returns_an_equal_copy():
    labels = _labels()
    out = fill_holes(labels)
    assert out is not labels
    np.testing.assert_array_equal(out, labels)


def test_relabel_numbers_objects_one_to_n_in_value_order():
    labels = _labels()
    before = labels.copy()
    out = relabel(labels)
    assert out.dtype == np.int32
    assert (out[labels == 2] == 1).all() and (out[labels == 4] == 2).all()
    assert (out[labels == 9] == 3).all() and (out[labels == 0] == 0).all()
    np.testing.assert_array_equal(labels, before)


@pytest.mark.parametrize("func", [relabel, fill_holes, lambda x: remove_small_objects(x, 2)])
def test_cleanup_rejects_float_and_3d_labels_with_a_fix(func):
    with pytest.raises(TypeError, match="astype"):
        func(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match=r"2-D \(H, W\).*\(2, 4, 4\)"):
        func(np.zeros((2, 4, 4), np.int32))


@pytest.mark.parametrize("func", [relabel, fill_holes, lambda x: remove_small_objects(x, 2)])
def test_cleanup_of_an_empty_image_is_empty(func):
    out = func(np.zeros((5, 7), np.int32))
    assert out.shape == (5, 7) and out.dtype == np.int32 and not out.any()
