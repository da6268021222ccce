"""The oracle round trip decode(oracle_raw(labels)) per family, on the bundled sample and DSB."""

from __future__ import annotations

import numpy as np
import pytest

from segmentation.datasets.dsb import default_dsb_root, load_dsb
from segmentation.datasets.sample_data import load_sample
from segmentation.evaluation.oracles import oracle, oracle_score

# Measured on the 10 bundled images (2026-11-21): unet mean 0.9985 (lowest 0.9938), fpn 1.0 on
# every image; on all 664 DSB stage1_train images unet 0.9909, fpn 0.9929 (docs/benchmarks.md).
SAMPLE_MEAN_BAR = 0.99
SAMPLE_IMAGE_BAR = 0.98


@pytest.fixture(scope="module")
def sample():
    return load_sample()


@pytest.mark.parametrize("family", ["unet", "fpn"])
def test_oracle_on_the_bundled_sample_reaches_the_measured_bar(sample, family):
    scores = {s.name: oracle_score(s.labels, family) for s in sample}
    assert np.mean(list(scores.values())) >= SAMPLE_MEAN_BAR, scores
    low = {name: round(v, 4) for name, v in scores.items() if v < SAMPLE_IMAGE_BAR}
    assert not low, f"{family} oracle below {SAMPLE_IMAGE_BAR}: {low}"


@pytest.mark.parametrize("family", ["unet", "fpn"])
def test_oracle_returns_int32_labels_and_leaves_the_input_alone(sample, family):
    labels = sample[0].labels
    before = labels.copy()
    out = oracle(labels, family)
    assert out.dtype == np.int32 and out.shape == labels.shape
    np.testing.assert_array_equal(labels, before)


@pytest.mark.parametrize("family", ["unet", "fpn"])
def test_oracle_of_an_empty_image_is_empty_and_scores_one(family):
    empty = np.zeros((32, 48), np.int32)
    assert not oracle(empty, family).any()
    assert oracle_score(empty, family) == 1.0


def test_oracle_passes_thresholds_to_the_family():
    labels = np.zeros((40, 40), np.int32)
    labels[5:25, 5:25] = 1
    labels[30:33, 30:33] = 2  # 9 px
    assert oracle(labels, "unet").max() == 1  # below the default min_size of 10
    assert oracle(labels, "unet", {"min_size": 5}).max() == 2


def test_oracle_rejects_unknown_families_and_bad_labels():
    labels = np.zeros((8, 8), np.int32)
    with pytest.raises(ValueError, match="unknown model family 'nope'.*fpn.*unet"):
        oracle(labels, "nope")
    with pytest.raises(TypeError, match="astype"):
        oracle(labels.astype(np.float32), "unet")


@pytest.mark.dsb
@pytest.mark.parametrize("family", ["unet", "fpn"])
def test_oracle_on_the_first_40_dsb_images(family):
    root = default_dsb_root()
    if not root.is_dir():
        pytest.skip(f"DSB2018 stage1_train not found at {root}; set $SEGMENTATION_DSB_ROOT")
    ids = sorted(p.name for p in root.iterdir() if (p / "images").is_dir())[:40]
    samples, _ = load_dsb(root, ids)
    scores = [oracle_score(s.labels, family) for s in samples]
    assert np.mean(scores) >= 0.97, f"{family}: mean {np.mean(scores):.4f}"
