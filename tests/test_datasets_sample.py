"""The bundled sample: size, coverage of the image types, licence note, and fidelity to DSB."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from segmentation.datasets.dsb import default_dsb_root, read_dsb_sample
from segmentation.datasets.image_types import IMAGE_TYPES, image_type
from segmentation.datasets.labels import relabel_sequential
from segmentation.datasets.sample_data import load_sample, sample_dir

DSB_ROOT = default_dsb_root()


def _manifest():
    with open(sample_dir() / "manifest.csv", newline="") as f:
        return {row["name"]: row for row in csv.DictReader(f)}


def test_sample_is_small_and_covers_every_image_type():
    samples = load_sample()
    assert 8 <= len(samples) <= 12
    total = sum(p.stat().st_size for p in sample_dir().rglob("*") if p.is_file())
    assert total < 3e6, f"bundled sample is {total / 1e6:.1f} MB"
    assert {image_type(s.image) for s in samples} == set(IMAGE_TYPES)


def test_sample_images_and_labels_are_valid_and_sequential():
    manifest = _manifest()
    for sample in load_sample():
        assert sample.image.dtype == np.uint8 and sample.image.shape[2] == 3
        assert sample.labels.dtype == np.int32 and sample.labels.shape == sample.image.shape[:2]
        n = int(manifest[sample.name]["nuclei"])
        np.testing.assert_array_equal(np.unique(sample.labels), np.arange(n + 1))


def test_fluorescence_sample_has_small_and_large_nuclei():
    sizes = {
        s.name: np.median(np.bincount(s.labels.ravel())[1:])
        for s in load_sample()
        if s.name.startswith("fluo")
    }
    assert max(sizes.values()) > 4 * min(sizes.values()), sizes


def test_readme_names_source_and_licence():
    text = (sample_dir() / "README.md").read_text()
    assert "CC0" in text and "Data Science Bowl" in text and "make_sample.py" in text
    for name in _manifest():
        assert name in text


@pytest.mark.dsb
@pytest.mark.skipif(
    not DSB_ROOT.is_dir(),
    reason=f"DSB2018 stage1_train not found at {DSB_ROOT} (set $SEGMENTATION_DSB_ROOT)",
)
def test_sample_equals_its_source_crop():
    manifest = _manifest()
    for sample in load_sample():
        row = manifest[sample.name]
        source, _ = read_dsb_sample(DSB_ROOT / row["dsb_id"])
        y, x, h, w = (int(row[k]) for k in ("y", "x", "height", "width"))
        np.testing.assert_array_equal(sample.image, source.image[y : y + h, x : x + w])
        np.testing.assert_array_equal(
            sample.labels, relabel_sequential(source.labels[y : y + h, x : x + w])
        )
