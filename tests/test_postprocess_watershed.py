"""Seeded watershed, seed labelling and unseeded components; tiled flooding equals direct."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.segmentation import watershed as sk_watershed

from segmentation.postprocess import add_unseeded, label_seeds, seeded_watershed


def _two_basins():
    x = np.arange(21, dtype=np.float64)
    surface = np.tile(np.minimum(np.abs(x - 5), np.abs(x - 15)) * -1.0 + 5.0, (5, 1))
    seeds = np.zeros((5, 21), np.int32)
    seeds[2, 5], seeds[2, 15] = 1, 2
    return surface, seeds


def test_seeded_watershed_splits_at_the_ridge():
    surface, seeds = _two_basins()
    out = seeded_watershed(surface, seeds)
    assert out.dtype == np.int32
    assert (out[:, :10] == 1).all() and (out[:, 11:] == 2).all()


def test_seeded_watershed_stays_inside_the_mask_and_leaves_unseeded_parts_empty():
    surface, seeds = _two_basins()
    mask = np.ones(surface.shape, bool)
    mask[:, 8] = False  # cuts seed 1's basin: columns 0-7 are a seedless component
    seeds[2, 5] = 0
    seeds[2, 10] = 1
    out = seeded_watershed(surface, seeds, mask)
    assert (out[~mask] == 0).all()
    assert (out[:, :8] == 0).all()
    assert set(np.unique(out[:, 9:]).tolist()) == {1, 2}


def test_seeded_watershed_does_not_modify_inputs():
    surface, seeds = _two_basins()
    mask = surface < 4.5
    copies = [surface.copy(), seeds.copy(), mask.copy()]
    seeded_watershed(surface, seeds, mask)
    for a, b in zip((surface, seeds, mask), copies, strict=True):
        np.testing.assert_array_equal(a, b)


def test_seeded_watershed_without_seeds_is_empty():
    out = seeded_watershed(np.zeros((4, 5)), np.zeros((4, 5), np.int32))
    assert out.shape == (4, 5) and not out.any()


def test_seeded_watershed_errors_name_the_problem():
    surface, seeds = _two_basins()
    bad = surface.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        seeded_watershed(bad, seeds)
    with pytest.raises(ValueError, match=r"seeds have shape \(5, 20\).*\(5, 21\)"):
        seeded_watershed(surface, seeds[:, :20])
    with pytest.raises(ValueError, match=r"mask has shape"):
        seeded_watershed(surface, seeds, np.ones((3, 3), bool))
    with pytest.raises(ValueError, match="2-D"):
        seeded_watershed(surface[None], seeds)
    with pytest.raises(TypeError, match="astype"):
        seeded_watershed(surface, seeds.astype(np.float32))


def test_seeded_watershed_equals_scikit_image():
    rng = np.random.default_rng(0)
    size = 200
    yy, xx = np.mgrid[:size, :size]
    surface = np.zeros((size, size))
    seeds = np.zeros((size, size), np.int32)
    for k, (cy, cx) in enumerate(rng.uniform(0, size, (80, 2)), start=1):
        d = np.hypot(yy - cy, xx - cx)
        surface = np.maximum(surface, np.clip(1 - d / 14, 0, None))
        seeds[(d < 3)] = k  # seeds with interiors, which the flooding skips
    mask = surface > 0.05
    surface = -surface + rng.uniform(0, 1e-3, surface.shape)
    direct = sk_watershed(surface, np.where(mask, seeds, 0), mask=mask)
    np.testing.assert_array_equal(seeded_watershed(surface, seeds, mask), direct)


def test_label_seeds_drops_small_components_and_numbers_the_rest():
    mask = np.zeros((6, 10), bool)
    mask[1:4, 1:4] = True  # 9 px
    mask[1, 6] = True  # 1 px
    mask[4:6, 7:10] = True  # 6 px
    seeds = label_seeds(mask, min_size=2)
    assert seeds.dtype == np.int32
    assert sorted(np.unique(seeds).tolist()) == [0, 1, 2]
    assert seeds[1, 6] == 0
    diagonal = np.eye(3, dtype=bool)  # 4-connectivity: diagonal pixels are separate seeds
    assert label_seeds(diagonal).max() == 3


def test_add_unseeded_turns_seedless_components_into_new_seeds():
    mask = np.zeros((6, 12), bool)
    mask[1:5, 1:5] = True  # has a seed
    mask[1:5, 7:11] = True  # seedless, 16 px
    mask[0, 11] = True  # seedless, 1 px
    seeds = np.zeros((6, 12), np.int32)
    seeds[2, 2] = 5
    before = (seeds.copy(), mask.copy())
    out = add_unseeded(seeds, mask, min_size=2)
    assert out[2, 2] == 5 and (out[1:5, 7:11] == 6).all() and out[0, 11] == 0
    assert (out[1:5, 1:5][seeds[1:5, 1:5] == 0] == 0).all()
    np.testing.assert_array_equal(seeds, before[0])
    np.testing.assert_array_equal(mask, before[1])
