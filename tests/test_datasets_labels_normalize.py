"""Label validation, relabelling, percentile normalisation and the network input layout."""

from __future__ import annotations

import numpy as np
import pytest

from segmentation.datasets.labels import relabel_sequential, validate_labels
from segmentation.datasets.normalize import (
    CLIP_HIGH,
    CLIP_LOW,
    normalize_image,
    prepare_image,
    to_model_input,
)

RNG = np.random.default_rng(1)


def test_validate_labels_converts_integers_to_int32():
    labels = np.array([[0, 1], [2, 300]], dtype=np.uint16)
    out = validate_labels(labels, image_shape=(2, 2, 3))
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, labels)


@pytest.mark.parametrize(
    ("labels", "error", "message"),
    [
        (np.zeros((4, 4), np.float32), TypeError, r"float32.*astype\(np.int32\)"),
        (np.zeros((4, 4), bool), TypeError, "skimage.measure.label"),
        (np.zeros((2, 4, 4, 1), np.int32), ValueError, "2-D"),
        (np.zeros((4, 4, 1), np.int32), ValueError, r"labels\[\.\.\., 0\]"),
        (np.array([[0, -1]], np.int32), ValueError, ">= 0"),
        (np.array([[0, 2**40]], np.int64), ValueError, "int32"),
        ([[0, 1]], TypeError, "numpy array"),
    ],
)
def test_validate_labels_rejects_bad_input(labels, error, message):
    with pytest.raises(error, match=message):
        validate_labels(labels)


def test_validate_labels_rejects_shape_mismatch_naming_both_shapes():
    with pytest.raises(ValueError, match=r"\(4, 5\).*\(4, 6, 3\)"):
        validate_labels(np.zeros((4, 5), np.int32), image_shape=(4, 6, 3))


def test_relabel_sequential_keeps_order_and_input():
    labels = np.array([[0, 7, 7], [3, 0, 100], [3, 3, 0]], dtype=np.int64)
    before = labels.copy()
    out = relabel_sequential(labels)
    np.testing.assert_array_equal(out, [[0, 2, 2], [1, 0, 3], [1, 1, 0]])
    assert out.dtype == np.int32
    np.testing.assert_array_equal(labels, before)


def test_relabel_sequential_sparse_huge_values_use_the_sorting_path():
    labels = np.array([[0, 2**30], [5, 2**30]], dtype=np.int64)
    np.testing.assert_array_equal(relabel_sequential(labels), [[0, 2], [1, 2]])
    np.testing.assert_array_equal(relabel_sequential(labels + 1), [[1, 3], [2, 3]])


def test_normalize_maps_percentiles_to_unit_range_and_keeps_input():
    image = RNG.integers(0, 256, (64, 64, 1), dtype=np.uint8)
    before = image.copy()
    out = normalize_image(image, low=0.0, high=100.0)
    assert out.dtype == np.float32 and out.shape == image.shape
    assert out.min() == pytest.approx(0.0) and out.max() == pytest.approx(1.0)
    np.testing.assert_array_equal(image, before)


def test_normalize_16bit_with_hot_pixels_is_robust():
    image = RNG.normal(1000, 50, (128, 128, 1)).clip(0).astype(np.uint16)
    image[0, :5] = 65535  # a few hot pixels
    out = normalize_image(image)
    assert out.max() == pytest.approx(CLIP_HIGH)  # hot pixels are clipped ...
    assert np.percentile(out, 50) == pytest.approx(0.5, abs=0.1)  # ... and do not squash the rest


def test_normalize_is_joint_over_channels_so_colour_balance_stays():
    image = np.zeros((32, 32, 3), np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = 200, 100, 50
    image[:16] //= 2
    out = normalize_image(image, low=0.0, high=100.0)
    # per-channel normalisation would make the three channels equal; a joint one keeps R > G > B
    assert (out[..., 0] > out[..., 1]).all() and (out[..., 1] > out[..., 2]).all()


def test_constant_image_gives_zeros_not_nan():
    out = normalize_image(np.full((10, 10, 3), 77, np.uint8))
    assert np.isfinite(out).all() and not out.any()


def test_mostly_constant_image_falls_back_to_min_max():
    image = np.zeros((100, 100), np.uint16)
    image[0, 0] = 500  # 99.8th percentile is still 0
    out = normalize_image(image)
    assert out.shape == (100, 100, 1)
    assert out[0, 0, 0] == pytest.approx(1.0) and out[1, 1, 0] == 0.0


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_image_is_refused(bad):
    image = np.ones((8, 8, 1), np.float32)
    image[3, 3] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        normalize_image(image)


@pytest.mark.parametrize(
    ("image", "error"),
    [
        (np.zeros((2, 3, 8, 8), np.uint8), ValueError),
        (np.zeros((8, 8), bool), TypeError),
        (np.zeros((0, 8, 1), np.uint8), ValueError),
        ([[1, 2]], TypeError),
    ],
)
def test_normalize_rejects_bad_input(image, error):
    with pytest.raises(error):
        normalize_image(image)


def test_normalize_rejects_bad_percentiles():
    with pytest.raises(ValueError, match="percentiles"):
        normalize_image(np.zeros((4, 4), np.uint8), low=50, high=10)


def test_to_model_input_replicates_gray_and_is_contiguous():
    image = RNG.random((5, 7, 1), dtype=np.float32)
    out = to_model_input(image)
    assert out.shape == (3, 5, 7) and out.dtype == np.float32 and out.flags.c_contiguous
    for c in range(3):
        np.testing.assert_array_equal(out[c], image[..., 0])
    rgb = RNG.random((5, 7, 3), dtype=np.float32)
    np.testing.assert_array_equal(to_model_input(rgb), np.moveaxis(rgb, 2, 0))
    with pytest.raises(ValueError, match="alpha"):
        to_model_input(np.zeros((5, 7, 4), np.float32))


def test_prepare_image_does_both():
    image = RNG.integers(0, 4096, (16, 12, 3), dtype=np.uint16)
    out = prepare_image(image)
    assert out.shape == (3, 16, 12) and out.dtype == np.float32
    assert CLIP_LOW <= out.min() and out.max() <= CLIP_HIGH
    np.testing.assert_allclose(out, to_model_input(normalize_image(image)))
