"""Image types (fluorescence / brightfield / histology) and the stratified train/val split."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from segmentation.datasets.dsb import default_dsb_root
from segmentation.datasets.image_types import image_type
from segmentation.datasets.io import read_image
from segmentation.datasets.sample_type import Sample
from segmentation.datasets.split import train_val_split

RNG = np.random.default_rng(7)
DSB_ROOT = default_dsb_root()


def _fluorescence():
    image = RNG.integers(0, 20, (64, 64, 1), dtype=np.uint8)
    image[10:20, 10:20] = 200
    return image


def _brightfield():
    image = RNG.integers(220, 240, (64, 64, 3), dtype=np.uint8)
    image[:] = image[..., :1]  # gray stored as RGB
    image[10:20, 10:20] = 60
    return image


def _histology():
    image = np.empty((64, 64, 3), np.uint8)
    image[:] = (230, 180, 210)  # pink
    image[10:20, 10:20] = (90, 50, 140)  # purple nucleus
    return image


@pytest.mark.parametrize(
    ("make", "expected"),
    [(_fluorescence, "fluorescence"), (_brightfield, "brightfield"), (_histology, "histology")],
)
def test_rule_on_simple_images(make, expected):
    image = make()
    assert image_type(image) == expected
    assert image_type(image.astype(np.uint16) * 257) == expected  # 16-bit: same answer


def test_constant_and_bad_images():
    assert image_type(np.full((8, 8), 5, np.uint8)) == "fluorescence"
    with pytest.raises(ValueError):
        image_type(np.zeros((8, 8, 4), np.uint8))
    with pytest.raises(TypeError):
        image_type(np.zeros((8, 8), bool))


def test_bundled_sample_names_match_their_type():
    from segmentation.datasets.sample_data import load_sample

    prefixes = {"fluo": "fluorescence", "bright": "brightfield", "histo": "histology"}
    for sample in load_sample():
        assert image_type(sample.image) == prefixes[sample.name.split("-")[0]], sample.name


@pytest.mark.dsb
@pytest.mark.skipif(
    not DSB_ROOT.is_dir(),
    reason=f"DSB2018 stage1_train not found at {DSB_ROOT} (set $SEGMENTATION_DSB_ROOT)",
)
@pytest.mark.slow
def test_counts_on_dsb_stage1_train():
    counts = collections.Counter(
        image_type(read_image(path)) for path in sorted(DSB_ROOT.glob("*/images/*.png"))
    )
    print(f"\nimage types on DSB2018 stage1_train: {dict(counts)}")
    assert counts == {"fluorescence": 541, "brightfield": 16, "histology": 107}


def _mixed_samples(n_fluo=30, n_bright=10, n_histo=20):
    makers = [_fluorescence] * n_fluo + [_brightfield] * n_bright + [_histology] * n_histo
    return [Sample(f"s{i:03d}", make()) for i, make in enumerate(makers)]


def test_split_is_deterministic_order_independent_and_balanced():
    samples = _mixed_samples()
    train, val = train_val_split(samples, val_fraction=0.2, seed=0)
    shuffled = [samples[i] for i in RNG.permutation(len(samples))]
    train2, val2 = train_val_split(shuffled, val_fraction=0.2, seed=0)
    assert [s.name for s in train] == [s.name for s in train2]
    assert [s.name for s in val] == [s.name for s in val2]
    assert {s.name for s in train}.isdisjoint(s.name for s in val)
    assert len(train) + len(val) == len(samples)
    per_type = collections.Counter(image_type(s.image) for s in val)
    assert per_type == {"fluorescence": 6, "brightfield": 2, "histology": 4}
    other_train, other_val = train_val_split(samples, val_fraction=0.2, seed=1)
    assert {s.name for s in other_val} != {s.name for s in val}


def test_small_groups_still_get_one_validation_image():
    samples = _mixed_samples(10, 2, 0)
    _, val = train_val_split(samples, val_fraction=0.1)
    assert collections.Counter(image_type(s.image) for s in val) == {
        "fluorescence": 1,
        "brightfield": 1,
    }


def test_split_refuses_bad_arguments():
    samples = _mixed_samples(3, 0, 0)
    with pytest.raises(ValueError, match="val_fraction"):
        train_val_split(samples, val_fraction=1.0)
    with pytest.raises(ValueError, match="unique"):
        train_val_split(samples + samples[:1])
