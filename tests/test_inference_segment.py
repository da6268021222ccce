"""segment(): models, settings, bad inputs, lists and folders, batching, the per-nucleus table."""

import warnings

import numpy as np
import pytest
import torch
from skimage.measure import regionprops

from segmentation.datasets.synthetic import synthetic_nuclei
from segmentation.evaluation.matching import dsb_score
from segmentation.inference import (
    NUCLEUS_DTYPE,
    SegmentationModel,
    SegmentOptions,
    resolve_device,
    segment,
    segment_files,
)
from segmentation.inference.options import pick_tile_size
from segmentation.inference.reference_nets import ReferenceUnet
from segmentation.models.registry import get_family
from tests.conftest import SMALL_UNET  # model_file: the conftest fixture


@pytest.fixture(scope="module")
def model():
    return SegmentationModel("unet", [ReferenceUnet()], device="cpu")


@pytest.fixture(scope="module")
def sample():
    return synthetic_nuclei((100, 130), 30, seed=9, radius_range=(5, 10))


@pytest.fixture
def folder(tmp_path, sample):
    import imageio.v3 as iio

    for i in range(3):
        iio.imwrite(tmp_path / f"good{i}.png", np.roll(sample.image[..., 0], 10 * i, axis=1))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)  # truncated PNG
    (tmp_path / "notes.txt").write_text("not an image")
    return tmp_path


def test_model_must_be_a_path_or_a_loaded_model(sample):
    # model=None (the shipped default model) is tested in test_inference_default_model.py
    with pytest.raises(TypeError, match="model must be a model file path"):
        segment(sample.image, model=42)


def test_a_model_file_loads_and_segments(sample, model_file):
    labels = segment(sample.image, model=model_file, device="cpu", tile_size=128)
    assert labels.shape == sample.labels.shape and labels.dtype == np.int32
    with pytest.raises(FileNotFoundError, match="not found"):
        segment(sample.image, model=model_file.parent / "missing.pt")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"tile_size": 100}, "multiple of 32"),
        ({"tile_size": 32}, "integer >= 64"),
        ({"tile_size": 128, "tile_overlap": 64}, "tile_overlap must satisfy"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"device": "cuda:7" if not torch.cuda.is_available() else "nope"}, "device"),
    ],
)
def test_bad_settings_are_refused(model, sample, kwargs, message):
    with pytest.raises(ValueError, match=message):
        segment(sample.image, model, **kwargs)


def test_nan_image_is_refused(model):
    image = np.zeros((40, 40), np.float32)
    image[3, 4] = np.nan
    with pytest.raises(ValueError, match="1 NaN or infinite values"):
        segment(image, model)


def test_all_zero_image_gives_no_nuclei(model):
    labels, details = segment(np.zeros((70, 90), np.uint16), model, return_details=True)
    assert labels.shape == (70, 90) and labels.dtype == np.int32 and not labels.any()
    assert details.nuclei.shape == (0, len(NUCLEUS_DTYPE.names))
    assert list(details.nuclei.columns) == list(NUCLEUS_DTYPE.names)


@pytest.mark.parametrize("family", ["unet", "maskrcnn"])
def test_one_pixel_image(family):
    torch.manual_seed(0)
    config = SMALL_UNET if family == "unet" else {"backbone": "resnet18", "fpn_channels": 16}
    tiny = SegmentationModel(family, [get_family(family).build(config)], device="cpu")
    labels = segment(np.full((1, 1), 200, np.uint8), tiny)
    assert labels.shape == (1, 1) and labels.dtype == np.int32


def test_3d_stack_is_refused(model):
    with pytest.raises(ValueError, match="3-D stacks are not supported"):
        segment(np.zeros((7, 64, 64), np.uint8), model)


def test_unreadable_and_missing_files_are_named(model, folder):
    with pytest.raises(ValueError, match="broken.png"):
        segment(folder / "broken.png", model)
    with pytest.raises(FileNotFoundError, match="nothing.png"):
        segment(folder / "nothing.png", model)


def test_a_folder_with_one_corrupt_file_segments_the_others(model, folder):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = segment(folder, model)
    assert sorted(results) == ["good0.png", "good1.png", "good2.png"]
    assert all(r.shape == (100, 130) and r.max() > 5 for r in results.values())
    assert any("broken.png" in str(w.message) for w in caught)


def test_segment_files_reports_the_bad_file_and_keeps_order(model, folder):
    paths = sorted(folder.glob("*.png"))
    results = list(segment_files(paths, model))
    assert [r.index for r in results] == list(range(len(paths)))
    bad = [r for r in results if r.error is not None]
    assert [r.name for r in bad] == [str(folder / "broken.png")]
    assert "broken.png" in bad[0].error and bad[0].labels is None
    assert all(r.labels.shape == (100, 130) for r in results if r.error is None)


def test_a_list_gives_results_in_order_and_names_a_bad_item(model, sample):
    images = [sample.image, sample.image[:50], sample.image[..., 0]]
    results = segment(images, model)
    assert [r.shape for r in results] == [(100, 130), (50, 130), (100, 130)]
    np.testing.assert_array_equal(results[2], results[0])
    with pytest.raises(ValueError, match="cannot segment image 1: .*3-D stacks"):
        segment([sample.image, np.zeros((3, 8, 8, 3), np.uint8)], model)


def test_batched_same_size_images_equal_one_by_one_results(sample, model_file):
    images = [np.roll(sample.image, 7 * i, axis=0) for i in range(5)]
    batched = segment(images, model_file, device="cpu", batch_size=4, return_details=True)
    for image, (labels, details) in zip(images, batched, strict=True):
        one, one_details = segment(
            image, model_file, device="cpu", batch_size=1, return_details=True
        )
        np.testing.assert_allclose(details.raw, one_details.raw, atol=1e-5)
        np.testing.assert_array_equal(labels, one)


def test_input_is_not_modified(model, sample):
    image = sample.image.copy()
    segment(image, model, tta=True)
    np.testing.assert_array_equal(image, sample.image)


def test_threshold_override(model, sample):
    default = segment(sample.image, model)
    strict = segment(sample.image, model, options=SegmentOptions(thresholds={"mask": 0.95}))
    assert 0 < (strict > 0).sum() < (default > 0).sum()
    with pytest.raises(ValueError, match="unknown threshold"):
        segment(sample.image, model, options=SegmentOptions(thresholds={"masc": 0.9}))


def test_details_table_matches_regionprops(model, sample):
    image = sample.image[..., 0].astype(np.uint16) * 100
    labels, details = segment(image, model, return_details=True)
    table = details.nuclei.to_records(index=False)
    assert table.dtype == NUCLEUS_DTYPE and len(table) == labels.max() > 10
    assert details.channels == ("body", "border", "contact") and details.raw.shape == (3, 100, 130)
    assert set(details.timings) == {"network", "decode", "table"}
    body = details.raw[0]
    for row, region in zip(table, regionprops(labels, intensity_image=image), strict=True):
        assert row["label"] == region.label and row["area"] == region.area
        np.testing.assert_allclose([row["centroid_y"], row["centroid_x"]], region.centroid)
        assert (row["bbox_y0"], row["bbox_x0"], row["bbox_y1"], row["bbox_x1"]) == region.bbox
        np.testing.assert_allclose(row["mean_intensity"], region.intensity_mean, rtol=1e-6)
        np.testing.assert_allclose(row["score"], body[labels == row["label"]].mean(), rtol=1e-5)


def test_the_nucleus_table_is_a_data_frame_that_prints_with_column_names(model, sample):
    labels, details = segment(sample.image, model, return_details=True)
    nuclei = details.nuclei
    assert dict(nuclei.dtypes) == {name: NUCLEUS_DTYPE[name] for name in NUCLEUS_DTYPE.names}
    assert (
        list(nuclei.index) == list(range(labels.max())) and nuclei["label"].is_monotonic_increasing
    )
    header = str(nuclei).splitlines()[0].split()
    assert header[:3] == ["label", "area", "centroid_y"] and header[-1] == "score"
    biggest = nuclei.loc[nuclei["area"].idxmax()]
    assert biggest["area"] == np.bincount(labels.ravel())[1:].max()


def test_device_choice_and_tile_size_from_memory():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    side = pick_tile_size(torch.device("cpu"), batch_size=4)
    assert side % 32 == 0 and 256 <= side <= 1024


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_gives_the_cpu_result(sample, model_file):
    cpu, cpu_details = segment(sample.image, model_file, device="cpu", return_details=True)
    gpu, gpu_details = segment(sample.image, model_file, device="cuda", return_details=True)
    np.testing.assert_allclose(gpu_details.raw, cpu_details.raw, atol=1e-3)
    assert dsb_score(cpu, gpu) >= 0.95
