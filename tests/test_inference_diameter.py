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
    choose_diameter,
    estimate_diameter,
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
    assert choose_diameter(estimate_diameter(_disks(reference / 2)), reference) is None
    small = _disks(reference / 2 / (BAND_SMALL * 1.25))
    assert choose_diameter(estimate_diameter(small), reference) == pytest.approx(
        estimate_diameter(small)
    )
    twice = _disks(reference)  # twice the reference: the model keeps large nuclei's scale
    assert choose_diameter(estimate_diameter(twice), reference) is None
    huge = _disks(reference / 2 * BAND_LARGE * 1.25, size=330)  # 50 px, clipped to 3 x 10
    assert estimate_diameter(huge) > reference * BAND_LARGE
    assert choose_diameter(estimate_diameter(huge), reference) == pytest.approx(
        reference * MAX_ZOOM
    )


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
    assert choose_diameter(estimate_diameter(fragments), 18.0) == pytest.approx(18.0 / MAX_ZOOM)


def test_with_a_size_model_fragments_of_large_nuclei_are_caught():
    from segmentation.inference.diameter import (
        FRAGMENTS,
        SIZE_FRAGMENTED,
        SIZE_LARGE,
        choose_diameter,
    )

    ref = 18.0
    # without a size model: pieces of the training size keep the first pass
    assert choose_diameter(20.0, ref) is None
    # the size model reads 50 px where the masks found 20 px pieces: segmented again at 50
    assert choose_diameter(20.0, ref, 50.0) == pytest.approx(50.0)
    # masks and size model agree on large, whole nuclei: kept up to SIZE_LARGE, shrunk beyond
    assert choose_diameter(45.0, ref, 50.0) is None
    assert choose_diameter(ref * SIZE_LARGE * 1.05, ref, 50.0) == pytest.approx(ref * MAX_ZOOM)
    # a size model that reads nuclei below SIZE_FRAGMENTED x never shrinks: the masks decide
    assert choose_diameter(10.0, ref, ref * SIZE_FRAGMENTED * 0.95) == pytest.approx(10.0)
    assert choose_diameter(14.0, ref, ref * SIZE_FRAGMENTED) is None
    # no nucleus found but large ones read: the size model's estimate, clipped
    assert choose_diameter(None, ref, 500.0) == pytest.approx(ref * MAX_ZOOM)
    assert choose_diameter(50.0 / FRAGMENTS + 0.1, ref, 50.0) is None  # not fragments: agree


def _sized(model_file, tmp_path, diameter: float):
    """``model_file`` with a size model that reads every image as nuclei of ``diameter`` px."""
    from segmentation.inference import load_model
    from segmentation.inference.size_model import SizeModel
    from segmentation.modelfile import atomic_save, read_checkpoint

    ckpt = read_checkpoint(model_file)
    ckpt["size_model"] = SizeModel(np.zeros(192), np.zeros(192), np.log(diameter), {}).to_dict()
    return load_model(atomic_save(ckpt, tmp_path / "sized.pt"), "cpu")


def test_segment_shrinks_fragmented_large_nuclei_by_the_size_model(model_file, tmp_path):
    # the seeded untrained network finds specks; a size model that reads 54 px nuclei says the
    # specks are fragments: the image is segmented again, shrunk to the training size
    image = synthetic_nuclei((128, 128), 12, seed=3).image
    large = _sized(model_file, tmp_path, 54.0)
    _, details = segment(image, large, return_details=True)
    assert details.scale == pytest.approx(18.0 / 54.0)
    _, given = segment(image, large, diameter=18.0, return_details=True)
    assert given.scale == 1.0  # the user's diameter wins
    _, off = segment(image, large, options=SegmentOptions(auto_diameter=False), return_details=True)
    assert off.scale == 1.0
    near = _sized(model_file, tmp_path, 20.0)  # near the training size: the masks decide, as
    _, kept = segment(image, near, return_details=True)  # for a model without a size model
    _, unsized = segment(image, model_file, return_details=True)
    assert kept.scale == unsized.scale


def test_a_second_pass_that_does_not_confirm_the_fragments_is_dropped(
    model_file, tmp_path, monkeypatch
):
    from segmentation.inference import batches
    from segmentation.inference.diameter import fragments_confirmed

    assert fragments_confirmed(20.0, 40.0) and not fragments_confirmed(20.0, 22.0)
    assert fragments_confirmed(None, 30.0) and not fragments_confirmed(20.0, None)
    image = synthetic_nuclei((128, 128), 12, seed=3).image
    large = _sized(model_file, tmp_path, 54.0)
    own = segment(image, large, options=SegmentOptions(auto_diameter=False))
    monkeypatch.setattr(batches, "fragments_confirmed", lambda first, second: False)
    labels, details = segment(image, large, return_details=True)
    assert details.scale == 1.0  # the size model misread the image: the first pass stays
    np.testing.assert_array_equal(labels, own)
