"""Automatic nucleus size: the estimate, the rescaling rule, and segment() with and without it."""

import cv2
import numpy as np
import pytest

from segmentation import SegmentOptions, segment
from segmentation.datasets.synthetic import synthetic_nuclei
from segmentation.inference.diameter import (
    BAND_LARGE,
    BAND_SMALL,
    MAX_ZOOM,
    estimate_diameter,
    rescale_diameter,
)


def _disks(radius: float, n: int = 9, size: int = 200) -> np.ndarray:
    labels = np.zeros((size, size), np.int32)
    yy, xx = np.mgrid[:size, :size]
    step = size // 3
    for k in range(n):
        cy, cx = step // 2 + step * (k // 3), step // 2 + step * (k % 3)
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2] = k + 1
    return labels


@pytest.mark.parametrize("radius", [4, 10, 25])
def test_estimate_is_the_median_equivalent_diameter(radius):
    assert estimate_diameter(_disks(radius)) == pytest.approx(2 * radius, rel=0.05)


def test_too_few_nuclei_give_no_estimate():
    assert estimate_diameter(_disks(10, n=4)) is None
    assert estimate_diameter(np.zeros((20, 20), np.int32)) is None
    assert estimate_diameter(_disks(10, n=4), min_nuclei=4) == pytest.approx(20, rel=0.05)


def test_rescale_only_outside_the_band():
    reference = 10.0
    assert rescale_diameter(_disks(reference / 2), reference) is None
    small = _disks(reference / 2 / (BAND_SMALL * 1.25))
    assert rescale_diameter(small, reference) == pytest.approx(estimate_diameter(small))
    twice = _disks(reference)  # twice the reference: the model keeps large nuclei's scale
    assert rescale_diameter(twice, reference) is None
    huge = _disks(reference / 2 * BAND_LARGE * 1.25, size=330)  # 50 px, clipped to 3 x 10
    assert estimate_diameter(huge) > reference * BAND_LARGE
    assert rescale_diameter(huge, reference) == pytest.approx(reference * MAX_ZOOM)


def test_segment_rescales_small_nuclei_and_the_users_diameter_wins():
    sample = synthetic_nuclei((128, 128), 12, seed=3, radius_range=(8, 10), touching=False)
    small = cv2.resize(sample.image, (64, 64), interpolation=cv2.INTER_AREA)[..., None]
    small = small if small.ndim == 3 else small[..., None]
    _, auto = segment(small, return_details=True)
    _, fixed = segment(small, options=SegmentOptions(auto_diameter=False), return_details=True)
    _, given = segment(small, options=SegmentOptions(diameter=18.0), return_details=True)
    assert fixed.scale == 1.0 and given.scale == 1.0
    assert auto.scale > BAND_SMALL  # nuclei of ~9 px: segmented again, enlarged to ~18 px
    labels = segment(small)
    assert labels.shape == small.shape[:2] and labels.dtype == np.int32


def test_the_second_pass_never_zooms_more_than_max_zoom():
    fragments = _disks(1.0, n=9, size=60)  # an untrained model's specks: estimate ~2 px
    assert rescale_diameter(fragments, 18.0) == pytest.approx(18.0 / MAX_ZOOM)
