"""Inputs of segment(): channel choice, validation, whole-image normalisation, files, rescaling."""

import cv2
import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

from segmentation.datasets.dsb import default_dsb_root
from segmentation.datasets.io import read_image
from segmentation.datasets.normalize import prepare_image
from segmentation.datasets.synthetic import synthetic_nuclei
from segmentation.inference import (
    SegmentationModel,
    SegmentOptions,
    as_image_array,
    segment,
    segment_files,
)
from segmentation.inference.inputs import (
    intensity_range,
    normalized_window,
    resize_image,
    resize_labels,
)
from segmentation.inference.reference_nets import ReferenceUnet


@pytest.fixture(scope="module")
def model():
    return SegmentationModel("unet", [ReferenceUnet()], device="cpu")


@pytest.fixture(scope="module")
def sample():
    return synthetic_nuclei((120, 150), 30, seed=7, radius_range=(5, 11))


def test_channel_choice():
    rgba = np.random.default_rng(0).integers(0, 255, (8, 9, 4), dtype=np.uint8)
    assert as_image_array(rgba).shape == (8, 9, 3)  # alpha dropped
    np.testing.assert_array_equal(as_image_array(rgba), rgba[..., :3])
    assert as_image_array(rgba[..., 0]).shape == (8, 9, 1)  # gray
    five = np.random.default_rng(1).random((8, 9, 5), dtype=np.float32)
    np.testing.assert_array_equal(as_image_array(five, channel=3)[..., 0], five[..., 3])
    with pytest.raises(ValueError, match="SegmentOptions\\(channel=c\\)"):
        as_image_array(five)
    with pytest.raises(ValueError, match="channel 5 requested but the image has 5"):
        as_image_array(five, channel=5)


@pytest.mark.parametrize(
    "bad, error, message",
    [
        (np.zeros((5, 32, 32, 3), np.uint8), ValueError, "3-D stacks are not supported"),
        (np.zeros((0, 4), np.uint8), ValueError, "empty"),
        (np.full((4, 4), np.nan, np.float32), ValueError, "16 NaN or infinite"),
        (np.zeros((4, 4), bool), TypeError, "real numbers"),
        (np.zeros((4, 4), np.complex64), TypeError, "real numbers"),
        ([[1, 2], [3, 4]], TypeError, "numpy array or a file path"),
    ],
)
def test_invalid_arrays_are_refused_with_a_clear_error(bad, error, message):
    with pytest.raises(error, match=message):
        as_image_array(bad)


@pytest.mark.parametrize(
    "image",
    [
        np.random.default_rng(2).integers(0, 255, (40, 50, 3), dtype=np.uint8),
        np.random.default_rng(3).integers(0, 4000, (40, 50, 1), dtype=np.uint16),
        np.random.default_rng(4).normal(size=(40, 50)).astype(np.float32),
    ],
    ids=["rgb8", "gray16", "float"],
)
def test_window_normalisation_matches_training_normalisation(image):
    array = as_image_array(image)
    lo, hi = intensity_range(array, 1.0, 99.8)
    np.testing.assert_array_equal(
        normalized_window(array, lo, hi, 0, 0, 40, 50), prepare_image(image)
    )
    part = normalized_window(array, lo, hi, 8, 16, 16, 16)
    np.testing.assert_array_equal(part, prepare_image(image)[:, 8:24, 16:32])  # same statistics


def test_windows_beyond_the_image_are_mirrored():
    image = np.arange(12, dtype=np.float32).reshape(3, 4, 1)
    window = normalized_window(image, 0.0, 11.0, 0, 0, 5, 6)
    assert window.shape == (3, 5, 6)
    np.testing.assert_allclose(window[0, 3, :4], image[1, :, 0] / 11.0)  # row 3 mirrors row 1
    np.testing.assert_allclose(window[0, :3, 4], image[:, 2, 0] / 11.0)  # column 4 mirrors 2
    one = normalized_window(np.ones((1, 1, 1), np.uint8) * 7, 7.0, 7.0, 0, 0, 32, 32)
    assert one.shape == (3, 32, 32) and not one.any()  # constant image -> zeros, never NaN


def test_resizing_keeps_dtypes_and_labels_stay_labels():
    image16 = np.random.default_rng(5).integers(0, 60000, (30, 40, 1), dtype=np.uint16)
    assert resize_image(image16, (15, 20)).dtype == np.uint16
    assert resize_image(image16.astype(np.float64), (60, 80)).dtype == np.float32
    labels = np.arange(12, dtype=np.int32).reshape(3, 4)
    big = resize_labels(labels, (9, 12))
    assert big.dtype == np.int32 and np.array_equal(np.unique(big), np.arange(12))
    np.testing.assert_array_equal(resize_labels(big, (3, 4)), labels)


def test_16_bit_data_give_the_labels_of_the_same_8_bit_data(model, sample):
    image8 = sample.image
    image16 = image8.astype(np.uint16) * 257  # full 16-bit range, same picture
    labels8 = segment(image8, model, tile_size=160)
    assert labels8.max() > 10
    np.testing.assert_array_equal(segment(image16, model, tile_size=160), labels8)


def test_files_of_every_supported_kind_give_the_labels_of_the_array(model, sample, tmp_path):
    gray = sample.image[..., 0]
    expected = segment(gray, model, tile_size=160)
    rgb = np.repeat(gray[..., None], 3, axis=2)
    rgba = np.concatenate([rgb, np.full_like(gray, 255)[..., None]], axis=2)
    files = {
        "gray8.png": gray,
        "gray16.png": gray.astype(np.uint16) * 257,
        "rgb8.png": rgb,
        "rgba8.png": rgba,
    }
    for name, data in files.items():
        iio.imwrite(tmp_path / name, data)
    rgb16 = np.ascontiguousarray(rgb.astype(np.uint16)[..., ::-1] * 257)  # OpenCV writes BGR
    assert cv2.imwrite(str(tmp_path / "rgb16.png"), rgb16)
    tifffile.imwrite(tmp_path / "gray16.tif", gray.astype(np.uint16) * 257)
    for path in sorted(tmp_path.iterdir()):
        np.testing.assert_array_equal(
            segment(path, model, tile_size=160), expected, err_msg=path.name
        )
        np.testing.assert_array_equal(segment(str(path), model, tile_size=160), expected)


def test_scale_resizes_before_inference_and_labels_come_back_at_input_size(model):
    small = synthetic_nuclei((100, 120), 25, seed=8, radius_range=(5, 9))
    big = resize_image(small.image, (300, 360))  # nuclei three times the training size
    labels, details = segment(big, model, options=SegmentOptions(scale=1 / 3), return_details=True)
    assert labels.shape == (300, 360) and labels.dtype == np.int32
    assert details.scale == pytest.approx(1 / 3) and details.raw.shape == (3, 100, 120)
    at_scale = segment(resize_image(big, (100, 120)), model)
    np.testing.assert_array_equal(labels, resize_labels(at_scale, (300, 360)))
    assert labels.max() == len(np.unique(labels)) - 1  # 1..N without gaps
    by_diameter = SegmentOptions(diameter=3 * 18.0)  # 3x the reference diameter -> scale 1/3
    np.testing.assert_array_equal(segment(big, model, options=by_diameter), labels)


def test_enlarging_small_nuclei_keeps_labels_consecutive_and_scores_aligned(model, sample):
    labels, details = segment(
        sample.image, model, options=SegmentOptions(scale=2.0), return_details=True
    )
    assert labels.shape == sample.labels.shape and details.raw.shape == (3, 240, 300)
    n = int(labels.max())
    assert np.array_equal(np.unique(labels), np.arange(n + 1))
    assert len(details.nuclei) == n and np.isfinite(details.nuclei["score"]).all()


def test_bad_scale_options_are_refused():
    with pytest.raises(ValueError, match="not both"):
        SegmentOptions(scale=0.5, diameter=30)
    with pytest.raises(ValueError, match="diameter must be a finite number > 0"):
        SegmentOptions(diameter=0)


DSB_ROOT = default_dsb_root()


@pytest.mark.dsb
@pytest.mark.skipif(
    not DSB_ROOT.is_dir(),
    reason=f"DSB2018 stage1_train not found at {DSB_ROOT} (set $SEGMENTATION_DSB_ROOT)",
)
def test_real_dsb_files_of_several_sizes_and_kinds_segment_in_one_call(model):
    folders = sorted(p for p in DSB_ROOT.iterdir() if p.is_dir())[::83][:8]
    paths = [folder / "images" / f"{folder.name}.png" for folder in folders]
    results = list(segment_files(paths, model, batch_size=4))
    assert [r.error for r in results] == [None] * len(paths)
    shapes = {r.labels.shape for r in results}
    assert len(shapes) > 1  # several sizes in one run
    for path, result in zip(paths, results, strict=True):
        assert result.labels.shape == read_image(path).shape[:2]
        assert result.labels.dtype == np.int32 and result.image.shape[2] in (1, 3)
