"""Lazy sources of segment_large (Zarr, OME-Zarr, tiled TIFF), whole-image statistics gathered by
blocks, and the errors for bad input. No network runs here: milliseconds each."""

import json

import numpy as np
import pytest
import tifffile
import zarr

from segmentation.inference import SegmentOptions
from segmentation.large import BlockGrid, Box, open_image_source, segment_large
from segmentation.large.stats import ImageStats, block_stats, histogram_percentiles


def _ome_group(path, shape, axes, zarr_format=2, dtype="uint16"):
    group = zarr.open_group(str(path), mode="w", zarr_format=zarr_format)
    multiscale = {
        "axes": [{"name": a, "type": "channel" if a == "c" else "space"} for a in axes],
        "datasets": [
            {
                "path": "0",
                "coordinateTransformations": [{"type": "scale", "scale": [1] * len(axes)}],
            }
        ],
    }
    if zarr_format == 2:
        group.attrs["multiscales"] = [{"version": "0.4", **multiscale}]
    else:
        group.attrs["ome"] = {"version": "0.5", "multiscales": [multiscale]}
    return group.create_array("0", shape=shape, chunks=shape, dtype=dtype)


def test_tiled_pyramidal_tiff_is_read_window_by_window(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (600, 500, 3), dtype=np.uint8)
    path = tmp_path / "slide.tif"
    with tifffile.TiffWriter(path) as tif:
        tif.write(rgb, tile=(128, 128), photometric="rgb", subifds=1)
        tif.write(rgb[::2, ::2], tile=(128, 128), photometric="rgb", subfiletype=1)
    source = open_image_source(path)
    assert (source.axes, source.height, source.width, source.channels) == ("yxc", 600, 500, 3)
    assert source.chunk_shape == (128, 128)
    assert np.array_equal(source.read(100, 300, 50, 420), rgb[100:300, 50:420])
    assert np.array_equal(source.read(0, 10, 0, 10, channel=2), rgb[:10, :10, 2:])
    assert open_image_source(path, level=1).height == 300


def test_zarr_axes_are_read_channels_last(tmp_path):
    cyx = np.arange(3 * 40 * 50, dtype=np.uint16).reshape(3, 40, 50)
    zarr.create_array(store=str(tmp_path / "cyx.zarr"), data=cyx, chunks=(1, 16, 16))
    source = open_image_source(tmp_path / "cyx.zarr")
    assert source.axes == "cyx"
    assert np.array_equal(source.read(5, 20, 7, 30), np.moveaxis(cyx, 0, -1)[5:20, 7:30])
    _ome_group(tmp_path / "ome.zarr", (1, 1, 1, 40, 50), "tczyx")[:] = 7
    ome = open_image_source(tmp_path / "ome.zarr")
    assert (ome.axes, ome.component, ome.height, ome.width) == ("tczyx", "0", 40, 50)
    assert ome.read(0, 4, 0, 4).shape == (4, 4, 1)
    assert json.loads(ome.ome)["zarr_format"] == 2


def test_unusable_sources_name_the_problem_and_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        open_image_source(tmp_path / "missing.zarr")
    zarr.create_array(store=str(tmp_path / "stack.zarr"), shape=(40, 64, 80), dtype="uint8")
    with pytest.raises(ValueError, match="axes='yxc'"):
        open_image_source(tmp_path / "stack.zarr")
    _ome_group(tmp_path / "z.zarr", (1, 1, 3, 40, 50), "tczyx")
    with pytest.raises(ValueError, match="length > 1"):
        open_image_source(tmp_path / "z.zarr")
    zarr.open_group(str(tmp_path / "plain.zarr"), mode="w").create_array(
        "a", shape=(9, 9), dtype="u1"
    )
    with pytest.raises(ValueError, match="multiscales"):
        open_image_source(tmp_path / "plain.zarr")
    five = tmp_path / "five.zarr"
    zarr.create_array(store=str(five), shape=(64, 64, 5), dtype="uint8")
    with pytest.raises(ValueError, match="channel=c"):
        segment_large(five, tmp_path / "out.zarr")
    with pytest.raises(ValueError, match="use 992 or 1024"):
        segment_large(five, tmp_path / "o.zarr", block_size=1000, options=SegmentOptions(channel=0))
    with pytest.raises(ValueError, match="give an output path"):
        segment_large(five, None, options=SegmentOptions(channel=0))
    stains = tmp_path / "stains.zarr"  # 3 fluorescence channels first: not a colour image
    zarr.create_array(store=str(stains), shape=(3, 64, 64), dtype="uint16")
    with pytest.raises(ValueError, match="not the samples of RGB"):
        segment_large(stains, tmp_path / "s.zarr")
    four = tmp_path / "four.zarr"  # 4 channels last of 16 bits: not RGBA
    zarr.create_array(store=str(four), shape=(64, 64, 4), dtype="uint16")
    with pytest.raises(ValueError, match="channel=c"):
        segment_large(four, tmp_path / "f.zarr")
    (tmp_path / "taken.zarr").mkdir()
    (tmp_path / "taken.zarr" / "notes.txt").write_text("not ours")
    gray = tmp_path / "gray.zarr"
    zarr.create_array(store=str(gray), shape=(64, 64), dtype="uint8")
    with pytest.raises(ValueError, match="not the output of segment_large"):
        segment_large(gray, tmp_path / "taken.zarr")


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16])
def test_histogram_percentiles_equal_numpy(dtype):
    rng = np.random.default_rng(1)
    info = np.iinfo(dtype)
    for n in (1, 2, 7, 1000, 40_001):
        values = rng.integers(info.min, info.max // 2, n, endpoint=True).astype(dtype)
        hist = np.bincount(values.astype(np.int64) - info.min)
        q = [0.0, 1.0, 37.5, 50.0, 99.8, 100.0]
        assert histogram_percentiles(hist, int(info.min), q) == np.percentile(values, q).tolist()


def test_block_statistics_add_up_to_the_whole_image_range(tmp_path):
    rng = np.random.default_rng(2)
    image = rng.gamma(2.0, 300.0, (300, 260)).astype(np.uint16)
    image[40:60, 40:200] = 4000  # structure in one block
    for dtype in (np.uint16, np.float32):
        path = tmp_path / f"{np.dtype(dtype).name}.zarr"
        zarr.create_array(store=str(path), data=image.astype(dtype), chunks=(64, 64))
        source = open_image_source(path)
        grid = BlockGrid(300, 260, 128, 0)
        stats = ImageStats(np.dtype(dtype))
        for index in grid.indices():
            stats.add(index, block_stats(source, grid.core(index), None, 1))
        assert stats.intensity_range(1.0, 99.8) == pytest.approx(
            tuple(np.percentile(image, [1.0, 99.8]))
        )
        assert stats.busiest(1) == [(0, 0)]
    assert Box(0, 10, 0, 10).intersect(Box(10, 20, 0, 10)) is None
