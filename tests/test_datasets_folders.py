"""Image folder + label folder, matched by file stem."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

from segmentation.datasets.folders import load_folder_pairs
from segmentation.datasets.io import write_labels


def _make(tmp_path, stems_images, stems_labels, label_suffix="", shape=(8, 9)):
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    for i, stem in enumerate(stems_images):
        Image.fromarray(np.full(shape, 10 * i, np.uint8)).save(images / f"{stem}.png")
    for i, stem in enumerate(stems_labels):
        write_labels(labels / f"{stem}{label_suffix}.tif", np.full(shape, i + 1, np.int32))
    return images, labels


def test_pairs_by_stem_sorted(tmp_path):
    images, labels = _make(tmp_path, ["b", "a"], ["a", "b"])
    samples = load_folder_pairs(images, labels)
    assert [s.name for s in samples] == ["a", "b"]
    assert samples[0].image.shape == (8, 9, 1) and samples[0].labels.dtype == np.int32
    assert samples[0].labels[0, 0] == 1  # label file "a" was written first (value 1)


def test_unmatched_stems_are_listed_on_both_sides(tmp_path):
    images, labels = _make(tmp_path, ["a", "only_image"], ["a", "only_label"])
    with pytest.raises(ValueError, match=r"\['only_image'\].*\['only_label'\]"):
        load_folder_pairs(images, labels)


def test_cellpose_suffix(tmp_path):
    images, labels = _make(tmp_path, ["cells"], ["cells"], label_suffix="_masks")
    assert [s.name for s in load_folder_pairs(images, labels, label_suffix="_masks")] == ["cells"]
    with pytest.raises(ValueError, match="do not pair"):
        load_folder_pairs(images, labels)


def test_shape_mismatch_names_both_files(tmp_path):
    images, labels = _make(tmp_path, ["a"], [])
    tifffile.imwrite(labels / "a.tif", np.zeros((3, 3), np.uint16))
    with pytest.raises(ValueError, match=r"a\.tif.*a\.png"):
        load_folder_pairs(images, labels)


def test_duplicate_stems_and_missing_folders(tmp_path):
    images, labels = _make(tmp_path, ["a"], ["a"])
    tifffile.imwrite(images / "a.tif", np.zeros((8, 9), np.uint8))
    with pytest.raises(ValueError, match="same stem"):
        load_folder_pairs(images, labels)
    with pytest.raises(FileNotFoundError):
        load_folder_pairs(tmp_path / "nope", labels)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no image"):
        load_folder_pairs(empty, labels)
