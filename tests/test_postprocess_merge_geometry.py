"""Per-instance geometry (touching pixels, boundary distance) and merging of split regions."""

from __future__ import annotations

import numpy as np
import pytest

from segmentation.models.fpn.targets import encode_targets as fpn_targets
from segmentation.postprocess.geometry import (
    boundary_distance,
    instance_centroids,
    instance_max,
    touching_pixels,
)
from segmentation.postprocess.merge import (
    boundary_flow,
    boundary_means,
    merge_converging,
    merge_pairs,
    merge_weak_boundaries,
    region_flow,
)


def _touching_pair():
    labels = np.zeros((10, 16), np.int32)
    labels[2:8, 2:8] = 1
    labels[2:8, 8:14] = 2
    return labels


def test_touching_pixels_mark_both_sides_of_a_contact_only():
    labels = _touching_pair()
    touch = touching_pixels(labels)
    assert touch[2:8, 7].all() and touch[2:8, 8].all()
    assert touch.sum() == 12


def test_boundary_distance_of_a_square_and_of_touching_squares():
    labels = np.zeros((9, 9), np.int32)
    labels[2:7, 2:7] = 3
    dist = boundary_distance(labels)
    assert dist.dtype == np.float32
    assert dist[4, 4] == 3 and dist[2, 4] == 1 and dist[3, 4] == 2 and dist[0, 0] == 0
    pair = boundary_distance(_touching_pair())
    # Each square of a touching pair is measured against its own boundary: the contact column is 1.
    np.testing.assert_array_equal(pair[4, 2:8], [1, 2, 3, 3, 2, 1])
    np.testing.assert_array_equal(pair[4, 8:14], [1, 2, 3, 3, 2, 1])


def test_instance_max_and_centroids():
    labels = _touching_pair()
    values = np.arange(labels.size, dtype=np.float64).reshape(labels.shape)
    peak = instance_max(values, labels)
    assert peak[2, 2] == values[7, 7] and peak[3, 9] == values[7, 13] and peak[0, 0] == 0
    area, cy, cx = instance_centroids(labels)
    assert area[1:].tolist() == [36, 36]
    assert cy[1] == pytest.approx(4.5) and cx[1] == pytest.approx(4.5) and cx[2] == 10.5


def test_boundary_means_and_merge_weak_boundaries():
    labels = np.zeros((6, 9), np.int32)
    labels[:, 0:3], labels[:, 3:6], labels[:, 6:9] = 1, 2, 3
    values = np.zeros(labels.shape)
    values[:, 5:7] = 1.0  # a strong boundary between 2 and 3, none between 1 and 2
    pairs, means = boundary_means(labels, values)
    assert pairs.tolist() == [[1, 2], [2, 3]]
    np.testing.assert_allclose(means, [0.0, 1.0])
    before = labels.copy()
    merged = merge_weak_boundaries(labels, values, 0.5)
    assert (merged[:, :6] == 1).all() and (merged[:, 6:] == 3).all()
    np.testing.assert_array_equal(labels, before)


def test_merge_pairs_is_transitive_and_keeps_the_smallest_label():
    labels = np.array([[1, 2, 3, 4]], np.int32)
    out = merge_pairs(labels, np.array([[2, 3], [3, 4]]))
    assert out.tolist() == [[1, 2, 2, 2]]
    assert merge_pairs(labels, np.zeros((0, 2))).tolist() == labels.tolist()


def test_boundary_flow_tells_touching_nuclei_from_a_nucleus_cut_in_two():
    yy, xx = np.mgrid[:40, :70]
    two = np.zeros((40, 70), np.int32)
    two[(yy - 20) ** 2 + (xx - 22) ** 2 < 12**2] = 1
    two[((yy - 20) ** 2 + (xx - 44) ** 2 < 12**2) & (two == 0)] = 2
    maps = fpn_targets(two)
    _, means = boundary_flow(two, maps[2], maps[3])
    assert means[0] < -0.8
    assert merge_converging(two, maps[2], maps[3]).max() == 2
    _, towards = region_flow(two, maps[2], maps[3])
    assert abs(towards[0]) < 0.2, "a whole nucleus has no net flow"
    # One elongated nucleus cut into thirds by a watershed: the direction field runs across the
    # cuts towards the one centre, and the pieces merge back.
    one = ((yy - 20) ** 2 / 10**2 + (xx - 35) ** 2 / 30**2 < 1).astype(np.int32)
    maps = fpn_targets(one)
    cut = one.copy()
    cut[(one == 1) & (xx >= 25)] = 2
    cut[(one == 1) & (xx >= 45)] = 3
    _, means = boundary_flow(cut, maps[2], maps[3])
    assert (means > 0).all()
    _, towards = region_flow(cut, maps[2], maps[3])
    assert (towards > 0.5).all()
    merged = merge_converging(cut, maps[2], maps[3])
    assert np.unique(merged[one == 1]).tolist() == [1]
