"""Channels of segment()'s inputs: channel choice, channels-first arrays and multi-channel TIFFs."""

import numpy as np
import pytest
import tifffile

from segmentation.datasets.synthetic import synthetic_nuclei
from segmentation.inference import SegmentationModel, SegmentOptions, as_image_array, segment
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


def _planes(gray, at, count):
    """``(count, H, W)`` with the nuclei in plane ``at`` and dim noise elsewhere."""
    noise = np.random.default_rng(0).integers(0, 20, (count, *gray.shape), dtype=np.uint8)
    noise[at] = gray
    return noise


def test_a_channels_first_array_is_an_error_naming_channel_axis(model, gray):
    chw = _planes(gray, 0, 3)
    for options in (SegmentOptions(), SegmentOptions(channel=0)):  # channel=0 gave (3, 96) labels
        with pytest.raises(ValueError, match=r"ambiguous.*channel_axis=0"):
            segment(chw, model, options=options)
    tiny = np.zeros((2, 2, 3), np.uint8)  # a last axis of 1, 3 or 4 values stays channels last
    assert as_image_array(tiny).shape == (2, 2, 3)


def test_channels_first_arrays_with_channel_axis(model, gray, expected):
    chw = _planes(gray, 1, 3)
    picked = SegmentOptions(channel_axis=0, channel=1)
    np.testing.assert_array_equal(segment(chw, model, options=picked), expected)
    with pytest.raises(ValueError, match=r"has 3 channels.*channel=0"):  # stains, not colour
        segment(chw, model, options=SegmentOptions(channel_axis=0))
    assert segment(np.moveaxis(chw, 0, -1), model).shape == gray.shape  # (H, W, 3): colour
    last = SegmentOptions(channel_axis=-1, channel=1)
    np.testing.assert_array_equal(segment(np.moveaxis(chw, 0, -1), model, options=last), expected)
    with pytest.raises(ValueError, match=r"has 4 channels.*channel=c, c in 0\.\.3"):
        segment(_planes(gray, 1, 4), model, options=SegmentOptions(channel_axis=0))
    with pytest.raises(ValueError, match="more channels than pixels along a side"):
        segment(chw, model, options=SegmentOptions(channel_axis=1, channel=0))


def test_multi_page_and_multi_channel_tiffs(model, gray, expected, tmp_path):
    pages = _planes(gray, 1, 3)
    tifffile.imwrite(tmp_path / "pages.tif", pages, photometric="minisblack")  # axes QYX
    tifffile.imwrite(tmp_path / "hyper.tif", pages, imagej=True, metadata={"axes": "CYX"})
    with pytest.raises(ValueError, match=r"pages\.tif is a stack of 3 planes.*channel_axis=0"):
        segment(tmp_path / "pages.tif", model)
    picked = SegmentOptions(channel_axis=0, channel=1)
    np.testing.assert_array_equal(segment(tmp_path / "pages.tif", model, options=picked), expected)
    hyper = SegmentOptions(channel=1)  # the file names its channel axis
    np.testing.assert_array_equal(segment(tmp_path / "hyper.tif", model, options=hyper), expected)
    with pytest.raises(ValueError, match=r"points at the Y axis.*pass channel_axis=0"):
        segment(tmp_path / "hyper.tif", model, options=SegmentOptions(channel_axis=1, channel=1))


def test_a_float32_tiff_is_read_like_the_float_array(model, gray, tmp_path):
    image = gray.astype(np.float32) / 255 + np.float32(0.25)
    tifffile.imwrite(tmp_path / "float.tif", image)
    np.testing.assert_array_equal(segment(tmp_path / "float.tif", model), segment(image, model))
