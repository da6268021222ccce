"""Inputs segment() used to get silently wrong (issue 27, item 5): stains taken for colour, a 4th
stain dropped as alpha, nucleus sizes no image has. Each is now a ValueError that names the fix."""

import re

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image
from scipy import ndimage as ndi

from segmentation.cli import main
from segmentation.datasets.io import read_image_axes
from segmentation.datasets.synthetic import synthetic_nuclei
from segmentation.evaluation.matching import match
from segmentation.inference import SegmentOptions, as_image_array, segment, segment_files

SIDE = 128


@pytest.fixture(scope="module")
def sample():
    """21 nuclei in a ``(128, 128)`` image."""
    sample = synthetic_nuclei((SIDE, SIDE), 21, seed=1, radius_range=(6, 10))
    assert sample.labels.max() == 21
    return sample


@pytest.fixture(scope="module")
def stains(sample):
    """``(3, 128, 128)`` uint16 fluorescence: nuclei (channel 0), cytoplasm, a textured marker.
    Segmented as an RGB photograph (the old reading) it gave 0 of the 21 nuclei."""
    nuclei = sample.image[..., 0].astype(np.uint16) * 200
    cytoplasm = ndi.grey_dilation(sample.labels > 0, size=13).astype(np.uint16) * 9000 + 500
    noise = np.random.default_rng(0).random((SIDE, SIDE))
    marker = (ndi.gaussian_filter(noise, 4) * 60000).astype(np.uint16)
    return np.stack([nuclei, cytoplasm, marker])


def found(sample, labels) -> int:
    """Nuclei of ``sample`` matched at IoU 0.5."""
    return int(match(sample.labels, labels).tp[0])


def test_a_cyx_ome_or_imagej_tiff_of_stains_asks_for_channel(sample, stains, tmp_path):
    ome, imagej = tmp_path / "stains.ome.tif", tmp_path / "stains_ij.tif"
    tifffile.imwrite(ome, stains, ome=True, metadata={"axes": "CYX"})
    tifffile.imwrite(imagej, stains, imagej=True, metadata={"axes": "CYX"})
    for path in (ome, imagej):
        with pytest.raises(
            ValueError, match=r"has 3 channels .*axes 'CYX'.*channel=0.*--channel 0"
        ):
            segment(path)
    assert found(sample, segment(ome, channel=0)) >= 20  # the fix the error names


def test_three_channels_first_or_pages_ask_for_channel(stains, tmp_path):
    with pytest.raises(ValueError, match=r"has 3 channels .*axis 0.*channel=0.*moveaxis"):
        segment(stains, channel_axis=0)
    pages, planar = tmp_path / "pages.tif", tmp_path / "planar16.tif"
    tifffile.imwrite(pages, stains, photometric="minisblack")  # axes QYX
    # what tifffile.imwrite(path, stains) writes without photometric (with a DeprecationWarning)
    tifffile.imwrite(planar, stains, photometric="rgb", planarconfig="separate")
    with pytest.raises(ValueError, match=r"has 3 channels .*pages \('Q'"):
        as_image_array(pages, channel_axis=0)
    with pytest.raises(ValueError, match=r"has 3 channels .*axes 'YXC'.*channel=0"):
        as_image_array(planar)
    np.testing.assert_array_equal(as_image_array(planar, channel=2)[..., 0], stains[2])


def test_colour_photographs_stay_colour(tmp_path):
    he = synthetic_nuclei((64, 80), 8, seed=2, modality="histology").image  # (H, W, 3) uint8
    assert he.dtype == np.uint8 and he.shape == (64, 80, 3)
    Image.fromarray(he).save(tmp_path / "he.png")
    Image.fromarray(he).save(tmp_path / "he.jpg", quality=95)
    tifffile.imwrite(tmp_path / "he.tif", he, photometric="rgb")
    tifffile.imwrite(tmp_path / "ome_rgb.ome.tif", he, ome=True, photometric="rgb")
    tifffile.imwrite(tmp_path / "ij_rgb.tif", he, imagej=True, photometric="rgb")
    planar = np.moveaxis(he, -1, 0)
    tifffile.imwrite(tmp_path / "planar8.tif", planar, photometric="rgb", planarconfig="separate")
    for name in ("he.png", "he.tif", "ome_rgb.ome.tif", "ij_rgb.tif", "planar8.tif"):
        np.testing.assert_array_equal(as_image_array(tmp_path / name), he, err_msg=name)
    assert as_image_array(tmp_path / "he.jpg").shape == he.shape
    for array in (he, he.astype(np.uint16) * 257, he.astype(np.float32) / 255):
        assert as_image_array(array).shape == he.shape  # (H, W, 3) arrays: colour pixels
        assert as_image_array(array, channel_axis=-1).shape == he.shape
    np.testing.assert_array_equal(segment(tmp_path / "he.png"), segment(he))


def test_four_stains_channels_last_ask_for_channel(sample, stains, tmp_path):
    four = np.concatenate([stains, stains[2:, ::-1]]).transpose(1, 2, 0)  # (128, 128, 4) uint16
    with pytest.raises(ValueError, match=r"has 4 channels .*uint16.*not alpha.*channel=0"):
        segment(four)
    assert found(sample, segment(four, channel=0)) >= 20
    # files that mark a 4th stain as alpha: tifffile's and OpenCV's default for (H, W, 4)
    tifffile.imwrite(tmp_path / "four.tif", four)
    cv2.imwrite(str(tmp_path / "four.png"), four[..., [2, 1, 0, 3]])  # BGRA
    for name in ("four.tif", "four.png"):
        assert read_image_axes(tmp_path / name)[1] == "YXC", name
        with pytest.raises(ValueError, match=r"has 4 channels .*channel=0"):
            as_image_array(tmp_path / name)
        np.testing.assert_array_equal(
            as_image_array(tmp_path / name, channel=3)[..., 0], four[..., 3]
        )


def test_alpha_is_dropped_where_it_is_alpha(tmp_path):
    rng = np.random.default_rng(3)
    rgba8 = rng.integers(0, 256, (20, 24, 4), dtype=np.uint8)  # 8-bit RGBA: any alpha
    np.testing.assert_array_equal(as_image_array(rgba8), rgba8[..., :3])
    opaque16 = rng.integers(0, 4000, (20, 24, 4), dtype=np.uint16)
    opaque16[..., 3] = 65535  # a constant 4th channel: an opaque image's alpha
    np.testing.assert_array_equal(as_image_array(opaque16), opaque16[..., :3])
    float_rgba = np.dstack([rng.random((20, 24, 3), dtype=np.float32), np.ones((20, 24))])
    assert as_image_array(float_rgba.astype(np.float32)).shape == (20, 24, 3)  # plt.imread's RGBA
    tifffile.imwrite(tmp_path / "opaque16.tif", opaque16)
    image, axes = read_image_axes(tmp_path / "opaque16.tif")
    assert axes == "YXS"
    np.testing.assert_array_equal(image, opaque16[..., :3])


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"diameter": 1e6}, r"diameter=1e\+06 px gives a rescale factor of 1\.8e-05"),
        ({"diameter": 1}, r"diameter=1 px gives a rescale factor of 18 .*324x the pixels"),
        ({"diameter": 2}, r"diameter=2 px gives a rescale factor of 9 "),
        ({"scale": 100.0}, r"scale=100 is out of range"),
        ({"scale": 0.01}, r"scale=0\.01 is out of range"),
        ({"diameter": 400, "reference_diameter": 10}, r"diameter=400 px .*factor of 0\.025 "),
    ],
)
def test_sizes_outside_the_allowed_range_are_refused(settings, message):
    with pytest.raises(ValueError, match=message) as err:
        SegmentOptions(**settings)
    assert "allowed factors are 1/32 .. 8" in str(err.value)
    assert "diameter=d), CLI --diameter d)" in str(err.value)  # the fix


def test_sizes_are_refused_before_any_work(sample):
    image = sample.image[..., 0]
    for diameter in (1e6, 1):  # gave 0 nuclei, and 713 objects after 28 s
        with pytest.raises(ValueError, match=rf"{re.escape(f'diameter={diameter:g}')} px .*1/32"):
            segment(image, diameter=diameter)
    for limit in ({"diameter": 2.25}, {"diameter": 576}, {"scale": 8}, {"scale": 1 / 32}):
        assert SegmentOptions(**limit).resize_factor in (8, 1 / 32)  # the limits are allowed


def test_a_diameter_wider_than_the_image_is_refused(sample):
    image = sample.image[..., 0]
    with pytest.raises(ValueError, match=r"diameter=200 px .*12 x 12 px.*at most 128"):
        segment(image, diameter=200)
    with pytest.raises(ValueError, match=r"scale=0\.1 shrinks.*use scale >= 0\.1406"):
        segment(image, options=SegmentOptions(scale=0.1))
    assert segment(image, diameter=128).shape == image.shape  # one nucleus the image's size
    bad, good = segment_files([image, np.pad(image, 40)], diameter=150)  # a list: per image
    assert "at most 128" in bad.error and good.error is None


def test_cli_diameter_out_of_range(sample, tmp_path, capsys):
    Image.fromarray(sample.image[..., 0]).save(tmp_path / "cells.png")
    argv = ["segment", str(tmp_path / "cells.png"), "--output", str(tmp_path / "out")]
    assert main([*argv, "--device", "cpu", "--diameter", "1e6"]) == 2
    err = capsys.readouterr().err
    assert "diameter=1e+06 px gives a rescale factor of 1.8e-05" in err and "--diameter d" in err
