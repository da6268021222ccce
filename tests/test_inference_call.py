"""How segment() is called: keyword arguments, the device, the progress bar."""

import numpy as np
import pytest
import torch

from segmentation.datasets.synthetic import synthetic_nuclei
from segmentation.inference import (
    SegmentationModel,
    SegmentOptions,
    resolve_device,
    segment,
    segment_files,
)
from segmentation.inference.reference_nets import ReferenceUnet


@pytest.fixture(scope="module")
def model():
    return SegmentationModel("unet", [ReferenceUnet()], device="cpu")


@pytest.fixture(scope="module")
def gray():
    return synthetic_nuclei((90, 110), 20, seed=4, radius_range=(6, 12)).image[..., 0]


def test_diameter_channel_and_channel_axis_are_keywords(model, gray):
    chw = np.stack([np.zeros_like(gray), gray])
    as_options = SegmentOptions(diameter=30, channel=1, channel_axis=0)
    expected = segment(chw, model, options=as_options)
    assert expected.shape == gray.shape and expected.max() > 3
    np.testing.assert_array_equal(
        segment(chw, model, diameter=30, channel=1, channel_axis=0), expected
    )
    mixed = segment(chw, model, diameter=30, options=SegmentOptions(channel=1, channel_axis=0))
    np.testing.assert_array_equal(mixed, expected)
    (result,) = segment_files([chw], model, diameter=30, channel=1, channel_axis=0)
    np.testing.assert_array_equal(result.labels, expected)
    same = segment(chw, model, channel=1, options=as_options)  # the same value twice is fine
    np.testing.assert_array_equal(same, expected)


def test_a_keyword_that_conflicts_with_options_is_an_error(model, gray):
    with pytest.raises(ValueError, match=r"diameter=30 conflicts with options\.diameter=20"):
        segment(gray, model, diameter=30, options=SegmentOptions(diameter=20))
    with pytest.raises(ValueError, match=r"channel=0 conflicts with options\.channel=1"):
        list(segment_files([gray], model, channel=0, options=SegmentOptions(channel=1)))
    with pytest.raises(ValueError, match="give scale .* or diameter .*, not both"):
        segment(gray, model, diameter=30, options=SegmentOptions(scale=0.5))


@pytest.fixture
def one_gpu(monkeypatch):
    """A machine with one CUDA device and no MPS, whatever this one has."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


@pytest.fixture
def cpu_only(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def test_a_device_this_machine_lacks_is_named_with_those_it_has(model, gray, one_gpu):
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    with pytest.raises(ValueError, match=r"'mps' requested but MPS .*available: cpu, cuda:0$"):
        segment(gray, model, device="mps")
    with pytest.raises(ValueError, match=r"'cuda:1' requested but this machine has 1 CUDA"):
        resolve_device("cuda:1")
    with pytest.raises(ValueError, match=r"unknown device 'gpu': use auto, cpu, cuda, cuda:N"):
        resolve_device("gpu")


def test_cuda_on_a_cpu_only_machine(cpu_only):
    with pytest.raises(ValueError, match=r"'cuda' requested but CUDA is not .*available: cpu$"):
        resolve_device("cuda")
    assert resolve_device("auto") == resolve_device("cpu") == torch.device("cpu")


def test_progress_counts_the_tiles_of_a_single_image(model, gray, capsys):
    quiet = SegmentOptions(auto_diameter=False)
    labels, details = segment(gray, model, tile_size=64, options=quiet, return_details=True)
    assert details.tiles > 4 and capsys.readouterr().err == ""  # quiet unless asked
    shown = SegmentOptions(auto_diameter=False, progress=True)
    np.testing.assert_array_equal(segment(gray, model, tile_size=64, options=shown), labels)
    err = capsys.readouterr().err
    assert "tiles: 100%" in err and f" {details.tiles}/{details.tiles} [" in err
    segment(gray, model, tile_size=64, tta=True, options=shown)
    assert f" {8 * details.tiles}/{8 * details.tiles} [" in capsys.readouterr().err
