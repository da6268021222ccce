"""``segmentation segment`` options for the inputs: channels, nucleus size, device, progress."""

import re
import sys

import numpy as np
import pytest
import tifffile
import torch

from segmentation.cli import main
from segmentation.datasets.io import read_labels
from segmentation.datasets.synthetic import synthetic_nuclei
from segmentation.inference import SegmentOptions, segment


@pytest.fixture(scope="module")
def gray():
    return synthetic_nuclei((100, 130), 30, seed=9, radius_range=(5, 10)).image[..., 0]


def _run(model_file, inputs, out, *options):
    args = [*map(str, inputs), "--model", str(model_file), "--output", str(out), "--no-table"]
    return main(["segment", *args, "--no-overlay", *options])


def test_channel_axis_channel_and_diameter_of_a_multi_page_tiff(model_file, gray, tmp_path):
    pages = np.stack([np.zeros_like(gray), gray, np.full_like(gray, 7)])  # axes QYX
    tifffile.imwrite(tmp_path / "pages.tif", pages, photometric="minisblack")
    out = tmp_path / "out"
    options = ["--device", "cpu", "--channel-axis", "0", "--channel", "1", "--diameter", "30"]
    assert _run(model_file, [tmp_path / "pages.tif"], out, *options) == 0
    expected = segment(gray, model_file, device="cpu", options=SegmentOptions(diameter=30))
    np.testing.assert_array_equal(read_labels(out / "pages_labels.tif"), expected)
    assert expected.max() > 0


def test_a_missing_device_is_a_one_line_error(model_file, gray, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    tifffile.imwrite(tmp_path / "img.tif", gray)
    for device, message in [("mps", "MPS (Apple GPU) is not available"), ("gpu", "unknown")]:
        status = _run(model_file, [tmp_path / "img.tif"], tmp_path / "out", "--device", device)
        err = capsys.readouterr().err
        assert status == 2  # as every fatal error of the CLI (segmentation.cli.main)
        assert err.count("\n") == 1 and err.startswith("segmentation segment: error: ")
        assert message in err and err.endswith("available: cpu\n")
    assert not (tmp_path / "out").exists()


def test_progress_only_on_a_terminal(model_file, gray, tmp_path, capsys, monkeypatch):
    for name in ("a.tif", "b.tif"):
        tifffile.imwrite(tmp_path / name, gray[:64, :96])  # two 64 x 64 tiles
    fast = ["--device", "cpu", "--tile-size", "64", "--no-auto-diameter"]
    two = [tmp_path / "a.tif", tmp_path / "b.tif"]
    assert _run(model_file, two, tmp_path / "o", *fast) == 0
    assert "%|" not in capsys.readouterr().err  # a log, not a terminal: no bar
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    one = [tmp_path / "a.tif"]
    assert _run(model_file, one, tmp_path / "o", *fast) == 0
    err = capsys.readouterr().err
    assert re.search(r"tiles: 100%.* (\d+)/\1 \[", err), err  # the tiles of one image
    assert _run(model_file, one, tmp_path / "o", *fast, "--no-progress") == 0
    assert "%|" not in capsys.readouterr().err


def test_stained_view_reaches_segment(model_file, tmp_path):
    import imageio.v3 as iio

    stained = synthetic_nuclei((100, 130), 20, seed=5, radius_range=(5, 9), modality="histology")
    iio.imwrite(tmp_path / "he.png", stained.image)
    out = tmp_path / "out"
    assert _run(model_file, [tmp_path / "he.png"], out, "--stained-view", "hematoxylin") == 0
    seen = SegmentOptions(stained_view="hematoxylin")
    expected = segment(stained.image, model_file, device="cpu", options=seen)
    np.testing.assert_array_equal(read_labels(out / "he_labels.tif"), expected)
    assert not np.array_equal(expected, segment(stained.image, model_file, device="cpu"))
