"""Held-out sources: reading a source by its stem pattern, keeping it out of training
(``data.holdout``), and scoring images with the outline measures."""

from __future__ import annotations

import pytest
from PIL import Image

from segmentation.datasets.io import write_labels
from segmentation.datasets.split import matches_any
from segmentation.datasets.synthetic import synthetic_nuclei
from segmentation.evaluation.heldout import HOLDOUT_PATTERNS, load_source, score_images
from segmentation.training.data import load_samples, training_split
from tests.paths import CONFIG_DIR
from tests.tiny_recipes import tiny_config


def _data_set(folder, stems, shape=(64, 64)):
    """A folder with images/ and labels/ of synthetic nuclei, one pair per stem."""
    (folder / "images").mkdir(parents=True)
    (folder / "labels").mkdir()
    for i, stem in enumerate(stems):
        sample = synthetic_nuclei(shape, 6, seed=i)
        Image.fromarray(sample.image[..., 0]).save(folder / "images" / f"{stem}.png")
        write_labels(folder / "labels" / f"{stem}.tif", sample.labels)
    return folder


def test_patterns_match_whole_names_case_sensitively():
    assert matches_any("TCGA-06-0129_1", HOLDOUT_PATTERNS)
    assert matches_any("Huh7_26", HOLDOUT_PATTERNS)
    assert not matches_any("HepG2_01", HOLDOUT_PATTERNS)
    assert not matches_any("gbm40_01", HOLDOUT_PATTERNS)
    assert not matches_any("tcga-06-0129_1", HOLDOUT_PATTERNS)


def test_a_source_is_the_images_matching_its_pattern(tmp_path):
    _data_set(tmp_path / "koyuncu_fluo", ["HepG2_01", "Huh7_26", "Huh7_27"])
    samples = load_source("huh7", tmp_path)
    assert [s.name for s in samples] == ["Huh7_26", "Huh7_27"]
    assert samples[0].labels.shape == (64, 64) and samples[0].labels.max() > 0
    assert [s.name for s in load_source("hepg2", tmp_path)] == ["HepG2_01"]


def test_a_missing_data_set_or_unknown_source_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="gbm40_tcga data set"):
        load_source("tcga", tmp_path)
    with pytest.raises(KeyError, match="known: tcga, huh7"):
        load_source("monuseg", tmp_path)


def test_holdout_keeps_matching_images_out_of_root_and_extra_data(tmp_path):
    root = _data_set(tmp_path / "root", ["a1", "a2", "Huh7_1", "a3"])
    extra = _data_set(tmp_path / "extra", ["TCGA-x_1", "gbm40_01", "TCGA-x_2"])
    overrides = [
        f"data.root={root / 'images'}",
        f"data.labels={root / 'labels'}",
        f"data.extra_train=[{extra}]",
        "data.holdout=[TCGA-*,Huh7_*]",
        "data.max_images=null",
        "data.val_fraction=0.25",
    ]
    config = tiny_config(CONFIG_DIR / "tiny_unet.yaml", tmp_path / "run", overrides)
    train, val, _ = training_split(config.data)
    names = {s.name for s in train + val}
    assert names == {"a1", "a2", "a3", "gbm40_01"}


def test_holding_out_every_image_is_a_clear_error(tmp_path):
    root = _data_set(tmp_path / "root", ["Huh7_1"])
    overrides = [
        f"data.root={root / 'images'}",
        f"data.labels={root / 'labels'}",
        "data.holdout=[Huh7_*]",
    ]
    config = tiny_config(CONFIG_DIR / "tiny_unet.yaml", tmp_path / "run", overrides)
    with pytest.raises(ValueError, match=r"no annotated images outside data.holdout \['Huh7_\*'\]"):
        load_samples(config.data)


def test_extra_data_outside_the_group_table_joins_training_only(tmp_path):
    root = _data_set(tmp_path / "root", [f"img{i}" for i in range(8)])
    extra = _data_set(tmp_path / "extra", ["gbm40_01"])
    table = tmp_path / "groups.csv"
    table.write_text("name,group\n" + "".join(f"img{i},fluorescence-{i % 2}\n" for i in range(8)))
    overrides = [
        f"data.root={root / 'images'}",
        f"data.labels={root / 'labels'}",
        f"data.extra_train=[{extra}]",
        "data.split=group",
        f"data.groups={table}",
        "data.test_fraction=0.5",
        "data.max_images=null",
    ]
    config = tiny_config(CONFIG_DIR / "tiny_unet.yaml", tmp_path / "run", overrides)
    train, val, test = training_split(config.data)
    assert "gbm40_01" in {s.name for s in train}
    assert test and {s.name for s in test}.isdisjoint({s.name for s in train + val})


def test_score_images_measures_outlines():
    samples = [synthetic_nuclei((96, 96), 8, seed=i) for i in range(2)]
    truth = {id(s.image): s.labels for s in samples}
    perfect = score_images(samples, lambda image: truth[id(image)])
    assert perfect["score"] == 1.0 and perfect["f1_0.9"] == 1.0
    assert perfect["matched_iou"] == 1.0 and perfect["images"] == 2

    def eroded(image):
        from scipy import ndimage

        labels = truth[id(image)].copy()
        labels[~ndimage.binary_erosion(labels > 0, iterations=1)] = 0
        return labels

    worse = score_images(samples, eroded)
    assert 0.5 < worse["matched_iou"] < 1.0 and worse["f1_0.9"] < 1.0 and worse["score"] < 1.0
    assert len(worse["per_image"]) == 2
