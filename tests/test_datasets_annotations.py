"""A user's annotated images for fine-tuning: mask files matched by stem in every layout users
bring (segment's outputs, Cellpose's masks and _seg.npy, plain label images), and every problem
reported before training."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from segmentation.datasets.annotations import load_annotated_folder, looks_binary, read_mask
from segmentation.datasets.io import write_labels
from segmentation.datasets.synthetic import synthetic_nuclei


def _images(folder, stems, shape=(64, 64)):
    folder.mkdir(parents=True, exist_ok=True)
    samples = {}
    for i, stem in enumerate(stems):
        sample = synthetic_nuclei(shape, 6, seed=i)
        Image.fromarray(sample.image[..., 0]).save(folder / f"{stem}.png")
        samples[stem] = sample
    return samples


@pytest.mark.parametrize("name", ["{}_labels.tif", "{}_masks.tif", "{}.tif", "{}_masks.png"])
def test_masks_pair_with_images_by_stem(tmp_path, name):
    truth = _images(tmp_path / "images", ["a", "b"])
    (tmp_path / "masks").mkdir()
    for stem, sample in truth.items():
        write_labels(tmp_path / "masks" / name.format(stem), sample.labels)
    samples = load_annotated_folder(tmp_path / "images", tmp_path / "masks")
    assert [s.name for s in samples] == ["a", "b"]
    for s in samples:
        np.testing.assert_array_equal(s.labels, truth[s.name].labels)


def test_cellpose_seg_npy_is_read_from_its_masks_entry(tmp_path):
    truth = _images(tmp_path / "images", ["cells"])
    (tmp_path / "masks").mkdir()
    seg = {"masks": truth["cells"].labels.astype(np.uint16), "outlines": None, "filename": "x"}
    np.save(tmp_path / "masks" / "cells_seg.npy", seg, allow_pickle=True)
    (sample,) = load_annotated_folder(tmp_path / "images", tmp_path / "masks")
    np.testing.assert_array_equal(sample.labels, truth["cells"].labels)
    np.save(tmp_path / "plain.npy", np.zeros((4, 4)))
    with pytest.raises(ValueError, match="not a Cellpose _seg.npy"):
        read_mask(tmp_path / "plain.npy")


def test_a_segment_output_folder_is_read_without_its_overlays(tmp_path):
    truth = _images(tmp_path / "images", ["a"])
    out = tmp_path / "out"
    out.mkdir()
    write_labels(out / "a_labels.tif", truth["a"].labels)
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(out / "a_overlay.png")
    (out / "a_nuclei.csv").write_text("label\n")
    (sample,) = load_annotated_folder(tmp_path / "images", out)
    assert sample.name == "a"


def test_every_unpaired_file_is_named_at_once(tmp_path):
    truth = _images(tmp_path / "images", ["a", "lonely_image"])
    (tmp_path / "masks").mkdir()
    write_labels(tmp_path / "masks" / "a.tif", truth["a"].labels)
    write_labels(tmp_path / "masks" / "stray.tif", truth["a"].labels)
    with pytest.raises(ValueError) as err:
        load_annotated_folder(tmp_path / "images", tmp_path / "masks")
    assert "images without a mask: lonely_image" in str(err.value)
    assert "masks without an image: stray.tif" in str(err.value)


def test_an_empty_mask_folder_or_a_missing_folder_is_refused(tmp_path):
    _images(tmp_path / "images", ["a"])
    (tmp_path / "masks").mkdir()
    with pytest.raises(ValueError, match="holds no mask files"):
        load_annotated_folder(tmp_path / "images", tmp_path / "masks")
    with pytest.raises(FileNotFoundError, match="MASKS folder not found"):
        load_annotated_folder(tmp_path / "images", tmp_path / "nowhere")


def test_a_mask_of_another_size_names_both_files(tmp_path):
    _images(tmp_path / "images", ["a"])
    (tmp_path / "masks").mkdir()
    write_labels(tmp_path / "masks" / "a.tif", np.ones((32, 40), np.int32))
    with pytest.raises(ValueError, match=r"a.tif is 32x40 but a.png is 64x64"):
        load_annotated_folder(tmp_path / "images", tmp_path / "masks")


def test_binary_masks_are_refused_unless_asked_to_split(tmp_path):
    truth = _images(tmp_path / "images", ["a"])
    (tmp_path / "masks").mkdir()
    binary = np.where(truth["a"].labels > 0, 255, 0).astype(np.uint8)
    Image.fromarray(binary).save(tmp_path / "masks" / "a.png")
    assert looks_binary(binary) and not looks_binary(truth["a"].labels)
    with pytest.raises(ValueError, match="binary masks.*--binary-masks"):
        load_annotated_folder(tmp_path / "images", tmp_path / "masks")
    (sample,) = load_annotated_folder(tmp_path / "images", tmp_path / "masks", binary_masks=True)
    from scipy import ndimage

    assert sample.labels.max() == ndimage.label(binary > 0, np.ones((3, 3)))[1]
    assert set(np.unique(sample.labels[binary == 0])) == {0}
