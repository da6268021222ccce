"""Channels of segment()'s inputs: channel choice, channels-first arrays and multi-channel TIFFs."""

import numpy as np
import pytest
import tifffile

from segmentation.datasets.synthetic import synthetic_nuclei
from segmentation.inference import SegmentationModel, SegmentOptions, segment
from segmentation.inference.reference_nets import ReferenceUnet


@pytest.fixture(scope="module")
def model():
    return SegmentationModel("unet", [ReferenceUnet()], device="cpu")


@pytest.fixture(scope="module")
def gray():
    """``(80, 96)`` uint8 nuclei, and an empty plane to hide them among."""
    return synthetic_nuclei((80, 96), 12, seed=3, radius_range=(5, 9)).image[..., 0]


@pytest.fixture(scope="module")
def expected(model, gray):
    return segment(gray, model)


def test_a_channel_of_one_image_is_picked_once(model, gray, expected, tmp_path):
    rgb = np.stack([np.zeros_like(gray), gray, np.zeros_like(gray)], axis=-1)
    one = SegmentOptions(channel=1)
    np.testing.assert_array_equal(segment(rgb, model, options=one), expected)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    labels, details = segment(tmp_path / "rgb.tif", model, options=one, return_details=True)
    np.testing.assert_array_equal(labels, expected)
    assert len(details.nuclei) == expected.max() > 5

    with pytest.raises(ValueError, match="channel 3 requested but the image has 3"):
        segment(rgb, model, options=SegmentOptions(channel=3), return_details=True)
