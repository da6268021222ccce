"""Image and label-image files: formats, bit depths, channels, and bad files."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
import tifffile
from PIL import Image

from segmentation.datasets.io import read_image, read_labels, write_labels

RNG = np.random.default_rng(0)


def _gray8(h=12, w=10):
    return RNG.integers(0, 256, (h, w), dtype=np.uint8)


@pytest.mark.parametrize(
    ("mode", "array", "expected_shape"),
    [
        ("L", _gray8(), (12, 10, 1)),
        ("RGB", RNG.integers(0, 256, (12, 10, 3), dtype=np.uint8), (12, 10, 3)),
        ("RGBA", RNG.integers(0, 256, (12, 10, 4), dtype=np.uint8), (12, 10, 3)),
        ("LA", RNG.integers(0, 256, (12, 10, 2), dtype=np.uint8), (12, 10, 1)),
    ],
)
def test_png_channels_are_kept_and_alpha_dropped(tmp_path, mode, array, expected_shape):
    path = tmp_path / "x.png"
    Image.fromarray(array, mode=mode).save(path)
    image = read_image(path)
    assert image.shape == expected_shape and image.dtype == np.uint8
    expected = array if array.ndim == 2 else array[..., : expected_shape[2]]
    np.testing.assert_array_equal(image.reshape(expected.shape), expected)


def test_png_16bit_gray(tmp_path):
    array = RNG.integers(0, 65536, (9, 7), dtype=np.uint16)
    Image.fromarray(array).save(tmp_path / "g16.png")
    image = read_image(tmp_path / "g16.png")
    assert image.dtype == np.uint16 and image.shape == (9, 7, 1)
    np.testing.assert_array_equal(image[..., 0], array)


def test_png_16bit_rgb_keeps_16_bits_and_rgb_order(tmp_path):
    import cv2

    array = RNG.integers(0, 65536, (9, 7, 3), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "rgb16.png"), array[..., ::-1])  # OpenCV writes BGR
    image = read_image(tmp_path / "rgb16.png")
    assert image.dtype == np.uint16
    np.testing.assert_array_equal(image, array)


def _write_png16(path, array, colour_type):
    """Minimal 16-bit PNG writer (Pillow cannot write 16-bit gray+alpha)."""
    height, width = array.shape[:2]
    raw = b"".join(b"\x00" + array[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def test_png_16bit_gray_alpha_keeps_16_bits_and_one_channel(tmp_path):
    array = RNG.integers(0, 65536, (5, 6, 2), dtype=np.uint16)
    _write_png16(tmp_path / "la16.png", array, colour_type=4)
    image = read_image(tmp_path / "la16.png")
    assert image.dtype == np.uint16 and image.shape == (5, 6, 1)
    np.testing.assert_array_equal(image[..., 0], array[..., 0])


def test_palette_png_becomes_rgb(tmp_path):
    array = RNG.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    Image.fromarray(array).convert("P").save(tmp_path / "p.png")
    image = read_image(tmp_path / "p.png")
    assert image.shape == (8, 8, 3) and image.dtype == np.uint8


def test_gray_stored_as_rgb_keeps_three_channels(tmp_path):
    gray = _gray8()
    Image.fromarray(np.stack([gray] * 3, axis=-1)).save(tmp_path / "g.png")
    image = read_image(tmp_path / "g.png")
    assert image.shape == (12, 10, 3)
    np.testing.assert_array_equal(image[..., 2], gray)


@pytest.mark.parametrize(
    ("array", "kwargs", "expected_shape"),
    [
        (RNG.integers(0, 65536, (6, 5), dtype=np.uint16), {}, (6, 5, 1)),
        (RNG.integers(0, 256, (6, 5, 3), dtype=np.uint8), {"photometric": "rgb"}, (6, 5, 3)),
        (
            RNG.integers(0, 256, (3, 6, 5), dtype=np.uint8),
            {"photometric": "rgb", "planarconfig": "separate"},
            (6, 5, 3),
        ),
    ],
)
def test_tiff_gray_rgb_and_planar_rgb(tmp_path, array, kwargs, expected_shape):
    tifffile.imwrite(tmp_path / "x.tif", array, **kwargs)
    image = read_image(tmp_path / "x.tif")
    assert image.shape == expected_shape and image.dtype == array.dtype
    expected = np.moveaxis(array, 0, -1) if "planarconfig" in kwargs else array
    np.testing.assert_array_equal(image.reshape(expected.shape), expected)


def test_multipage_tiff_is_refused(tmp_path):
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, np.zeros((5, 8, 8), np.uint8), photometric="minisblack")
    with pytest.raises(ValueError, match=r"multi-page.*stack\.tif|stack\.tif.*multi-page"):
        read_image(path)


def test_4d_tiff_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "four_d.tif"
    tifffile.imwrite(path, np.zeros((2, 3, 8, 8), np.uint8), photometric="minisblack")
    with pytest.raises(ValueError, match="four_d.tif"):
        read_image(path)


def test_float_tiff_is_refused_with_a_fix(tmp_path):
    tifffile.imwrite(tmp_path / "f.tif", np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="uint16"):
        read_image(tmp_path / "f.tif")


def test_empty_file_is_refused_naming_it(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.png.*empty"):
        read_image(path)
    with pytest.raises(ValueError, match="empty"):
        read_labels(path)


def test_truncated_png_is_refused_naming_it(tmp_path):
    path = tmp_path / "full.png"
    Image.fromarray(RNG.integers(0, 256, (64, 64), dtype=np.uint8)).save(path)
    data = path.read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cut\.png.*truncated"):
        read_image(cut)
    with pytest.raises(ValueError, match=r"cut\.png"):
        read_labels(cut)


def test_missing_file_and_unknown_suffix(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        read_image(tmp_path / "nope.png")
    (tmp_path / "x.xyz").write_bytes(b"abc")
    with pytest.raises(ValueError, match="unsupported"):
        read_image(tmp_path / "x.xyz")


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_labels_round_trip_uint16(tmp_path, suffix):
    labels = RNG.integers(0, 65536, (20, 17)).astype(np.int32)
    path = tmp_path / f"lab{suffix}"
    write_labels(path, labels)
    back = read_labels(path)
    assert back.dtype == np.int32
    np.testing.assert_array_equal(back, labels)


def test_labels_beyond_uint16_go_to_int32_tiff_not_png(tmp_path):
    labels = np.array([[0, 70000], [5, 2**31 - 1]], dtype=np.int64)
    write_labels(tmp_path / "big.tif", labels)
    assert tifffile.imread(tmp_path / "big.tif").dtype == np.int32
    np.testing.assert_array_equal(read_labels(tmp_path / "big.tif"), labels)
    with pytest.raises(ValueError, match=r"65535.*\.tif"):
        write_labels(tmp_path / "big.png", labels)


def test_write_labels_refuses_bad_arrays(tmp_path):
    with pytest.raises(ValueError, match="2-D"):
        write_labels(tmp_path / "x.png", np.zeros((2, 3, 4, 4), np.int32))
    with pytest.raises(TypeError, match="float32"):
        write_labels(tmp_path / "x.png", np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match=">= 0"):
        write_labels(tmp_path / "x.png", np.full((4, 4), -1, np.int32))


def test_colour_png_is_not_a_label_image(tmp_path):
    Image.fromarray(RNG.integers(0, 256, (6, 6, 3), dtype=np.uint8)).save(tmp_path / "c.png")
    with pytest.raises(ValueError, match=r"c\.png.*2-D"):
        read_labels(tmp_path / "c.png")


def test_signed_label_tiff_with_negatives_is_refused(tmp_path):
    tifffile.imwrite(tmp_path / "neg.tif", np.array([[0, -3], [1, 2]], np.int16))
    with pytest.raises(ValueError, match=r"neg\.tif.*>= 0"):
        read_labels(tmp_path / "neg.tif")


def test_read_image_axes_keeps_stacks_channels_and_pixel_types(tmp_path):
    from segmentation.datasets.io import read_image_axes

    stack = RNG.integers(0, 4000, (3, 6, 5), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "q.tif", stack, photometric="minisblack")
    tifffile.imwrite(tmp_path / "c.tif", stack, imagej=True, metadata={"axes": "CYX"})
    rgba = RNG.integers(0, 256, (6, 5, 4), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "rgba.tif", rgba, photometric="rgb")
    two = RNG.integers(0, 256, (6, 5, 2), dtype=np.uint8)  # two stains, not gray + alpha
    tifffile.imwrite(tmp_path / "two.tif", two, photometric="minisblack", planarconfig="contig")
    floats = RNG.random((6, 5), dtype=np.float32)
    tifffile.imwrite(tmp_path / "f.tif", floats)
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    expected = {
        "q.tif": (stack, "QYX"),
        "c.tif": (stack, "CYX"),
        "rgba.tif": (rgba[..., :3], "YXS"),
        "two.tif": (two, "YXC"),
        "f.tif": (floats, "YX"),
        "rgba.png": (rgba[..., :3], "YXS"),
    }
    for name, (array, axes) in expected.items():
        image, got = read_image_axes(tmp_path / name)
        assert got == axes and image.dtype == array.dtype, name
        np.testing.assert_array_equal(image, array, err_msg=name)
