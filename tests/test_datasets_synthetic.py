"""Synthetic nuclei: exact, connected labels; touching and overlapping; looks; speed."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy import ndimage

from segmentation.datasets.image_types import image_type
from segmentation.datasets.synthetic import synthetic_nuclei


def _every_label_connected(labels):
    objects = ndimage.find_objects(labels)
    for k, box in enumerate(objects, start=1):
        if box is None or ndimage.label(labels[box] == k)[1] != 1:
            return False
    return True


@pytest.mark.parametrize("modality", ["fluorescence", "brightfield", "histology"])
def test_shapes_dtypes_and_labels(modality):
    sample = synthetic_nuclei((128, 160), 25, seed=2, modality=modality)
    channels = 3 if modality == "histology" else 1
    assert sample.image.shape == (128, 160, channels) and sample.image.dtype == np.uint8
    assert sample.labels.shape == (128, 160) and sample.labels.dtype == np.int32
    assert sample.labels.max() == 25
    assert np.array_equal(np.unique(sample.labels), np.arange(26))  # every label present
    assert _every_label_connected(sample.labels)
    assert image_type(sample.image) == modality


def test_same_seed_same_sample_other_seed_other_sample():
    a = synthetic_nuclei(seed=4)
    b = synthetic_nuclei(seed=4)
    c = synthetic_nuclei(seed=5)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.labels, c.labels)


def _touching_pairs(labels):
    """Number of distinct label pairs that share a 4-connected edge."""
    pairs = set()
    for a, b in ((labels[:, :-1], labels[:, 1:]), (labels[:-1], labels[1:])):
        both = (a > 0) & (b > 0) & (a != b)
        pairs |= {tuple(sorted(p)) for p in zip(a[both].tolist(), b[both].tolist(), strict=True)}
    return len(pairs)


def test_touching_nuclei_touch_and_separated_ones_do_not():
    touching = synthetic_nuclei((256, 256), 60, seed=1, touching=True)
    apart = synthetic_nuclei((256, 256), 30, seed=1, touching=False)
    assert _touching_pairs(touching.labels) >= 10
    assert _touching_pairs(apart.labels) == 0
    # at least 2 pixels of background between nuclei: no 3x3 window sees two different labels
    big = apart.labels.max() + 1
    highest = ndimage.grey_dilation(apart.labels, size=3)
    lowest = ndimage.grey_erosion(np.where(apart.labels == 0, big, apart.labels), size=3)
    assert not np.any((lowest < big) & (highest != lowest))


def test_overlap_lets_earlier_nuclei_cover_part_of_later_ones():
    from skimage.measure import regionprops

    def solidity(overlap):
        sample = synthetic_nuclei((256, 256), 80, seed=3, overlap=overlap)
        return np.array([r.solidity for r in regionprops(sample.labels)])

    # without overlap every nucleus is a whole (slightly wavy) ellipse: nearly convex; with
    # overlap, nuclei partly hidden under earlier ones get a bite taken out of them
    assert solidity(0.0).min() > 0.9
    assert (solidity(0.3) < 0.9).sum() >= 3


def test_too_many_nuclei_warn_and_return_what_fits():
    with pytest.warns(UserWarning, match="too full"):
        sample = synthetic_nuclei((32, 32), 200, seed=0)
    assert 0 < sample.labels.max() < 200
    assert _every_label_connected(sample.labels)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"shape": (4, 4)},
        {"n_nuclei": -1},
        {"modality": "confocal"},
        {"radius_range": (10, 5)},
        {"overlap": 0.7},
    ],
)
def test_bad_arguments_are_refused(kwargs):
    with pytest.raises(ValueError):
        synthetic_nuclei(**kwargs)


@pytest.mark.slow
def test_large_image_is_fast():
    start = time.perf_counter()
    sample = synthetic_nuclei((3000, 3000), 9000, seed=0)
    elapsed = time.perf_counter() - start
    assert sample.labels.max() == 9000
    assert elapsed < 20, f"3000x3000 with 9000 nuclei took {elapsed:.1f} s (about 2 s expected)"
