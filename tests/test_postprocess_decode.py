"""Decoding of U-Net and FPN maps: round trips, merge/unseeded steps, bad input, no mutation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage as ndi

from segmentation.datasets.synthetic import synthetic_nuclei
from segmentation.evaluation.matching import dsb_score
from segmentation.models.fpn.decode import FpnThresholds
from segmentation.models.fpn.decode import decode as fpn_decode
from segmentation.models.fpn.targets import encode_targets as fpn_targets
from segmentation.models.unet.decode import UnetThresholds
from segmentation.models.unet.decode import decode as unet_decode
from segmentation.models.unet.targets import encode_targets as unet_targets

FAMILIES = {
    "unet": (unet_targets, unet_decode, UnetThresholds),
    "fpn": (fpn_targets, fpn_decode, FpnThresholds),
}


def _dumbbell():
    """One nucleus: two disks of radius 9 joined by a 3-px neck (its core splits at the neck)."""
    yy, xx = np.mgrid[:40, :70]
    one = ((yy - 20) ** 2 + (xx - 20) ** 2 <= 81) | ((yy - 20) ** 2 + (xx - 48) ** 2 <= 81)
    one |= (abs(yy - 20) <= 1) & (xx > 20) & (xx < 48)
    return one.astype(np.int32)


@pytest.mark.parametrize("family", FAMILIES)
def test_round_trip_on_synthetic_nuclei(family):
    encode, decode, _ = FAMILIES[family]
    labels = synthetic_nuclei((256, 256), 60, seed=11).labels
    out = decode(encode(labels))
    assert out.dtype == np.int32 and out.shape == labels.shape
    assert np.unique(out).tolist() == list(range(int(out.max()) + 1)), "numbered 1..N"
    assert dsb_score(labels, out) >= 0.97


@pytest.mark.parametrize("family", FAMILIES)
def test_soft_maps_still_decode_well(family):
    encode, decode, _ = FAMILIES[family]
    labels = synthetic_nuclei((256, 256), 40, seed=5, touching=False).labels
    maps = ndi.gaussian_filter(encode(labels), sigma=(0, 1, 1))
    assert dsb_score(labels, decode(maps)) >= 0.9


@pytest.mark.parametrize("family", FAMILIES)
def test_decode_never_modifies_the_maps(family):
    encode, decode, _ = FAMILIES[family]
    maps = encode(synthetic_nuclei((96, 96), 12, seed=2).labels)
    before = maps.copy()
    maps.flags.writeable = False  # any write would raise
    decode(maps)
    np.testing.assert_array_equal(maps, before)


@pytest.mark.parametrize("family", FAMILIES)
def test_all_zero_maps_give_an_empty_image(family):
    _, decode, _ = FAMILIES[family]
    channels = 3 if family == "unet" else 4
    out = decode(np.zeros((channels, 20, 30), np.float32))
    assert out.shape == (20, 30) and out.dtype == np.int32 and not out.any()


@pytest.mark.parametrize("family", FAMILIES)
def test_bad_maps_raise_errors_that_name_the_problem(family):
    encode, decode, _ = FAMILIES[family]
    maps = encode(synthetic_nuclei((64, 64), 6, seed=1).labels)
    names = "body" if family == "unet" else "energy"
    with pytest.raises(ValueError, match=rf"{family} maps must have shape .*{names}.*2 channels"):
        decode(maps[:2])
    with pytest.raises(ValueError, match="channel axis looks last"):
        decode(np.moveaxis(maps, 0, -1))
    with pytest.raises(ValueError, match="2-D shape"):
        decode(maps[0])
    with pytest.raises(ValueError, match="drop the batch axis"):
        decode(maps[None])
    bad = maps.copy()
    bad[1, 3, 3] = np.nan
    with pytest.raises(
        ValueError, match=r"NaN or inf values in channel\(s\) \['(border|energy)'\]"
    ):
        decode(bad)
    with pytest.raises(TypeError, match="real-valued"):
        decode(maps.astype(np.complex64))


@pytest.mark.parametrize("family", FAMILIES)
def test_thresholds_are_validated(family):
    _, decode, thresholds = FAMILIES[family]
    with pytest.raises(ValueError, match="mask must lie in"):
        thresholds(mask=1.5)
    with pytest.raises(ValueError, match="min_size must be an integer"):
        thresholds(min_size=-1)
    with pytest.raises(TypeError, match="Thresholds or None"):
        decode(np.zeros((3 if family == "unet" else 4, 4, 4)), {"mask": 0.5})


def test_unet_merge_joins_a_nucleus_whose_seed_split_at_a_neck():
    labels = _dumbbell()
    maps = unet_targets(labels)
    assert unet_decode(maps, UnetThresholds(merge_contact=0.0)).max() == 2
    assert unet_decode(maps).max() == 1


def test_unet_merge_keeps_touching_nuclei_apart():
    labels = np.zeros((30, 50), np.int32)
    labels[5:25, 5:25], labels[5:25, 25:45] = 1, 2
    out = unet_decode(unet_targets(labels), UnetThresholds(merge_contact=0.9))
    assert dsb_score(labels, out) == 1.0


def test_fpn_merge_joins_a_nucleus_whose_seed_split_at_a_neck():
    labels = _dumbbell()
    maps = fpn_targets(labels)
    assert fpn_decode(maps, FpnThresholds(merge_flow=-1.0)).max() == 2
    assert fpn_decode(maps).max() == 1


@pytest.mark.parametrize("family", FAMILIES)
def test_unseeded_components_become_objects(family):
    encode, decode, thresholds = FAMILIES[family]
    labels = np.zeros((20, 30), np.int32)
    labels[5:7, 5:25] = 1  # a 2-px wide sliver: no seed survives the thresholds
    maps = encode(labels)
    strict = {"seed_body": 0.5, "seed_border": 0.5} if family == "unet" else {"seed_energy": 0.99}
    assert decode(maps, thresholds(unseeded=False, min_seed_size=50, **strict)).max() == 0
    assert decode(maps, thresholds(min_seed_size=50, **strict)).max() == 1


@st.composite
def separated_boxes(draw):
    """Label images of 1-6 axis-aligned boxes (>= 5x5 px) at least 3 px apart."""
    labels = np.zeros((48, 48), np.int32)
    for k in range(1, draw(st.integers(1, 6)) + 1):
        y, x = draw(st.integers(0, 40)), draw(st.integers(0, 40))
        h, w = draw(st.integers(5, 16)), draw(st.integers(5, 16))
        box = np.s_[y : min(y + h, 48), x : min(x + w, 48)]
        grown = np.s_[max(y - 3, 0) : y + h + 3, max(x - 3, 0) : x + w + 3]
        if labels[grown].any() or labels[box].size < 25:
            continue
        labels[box] = k
    return labels


@settings(max_examples=40, deadline=None)
@given(labels=separated_boxes())
def test_separated_boxes_round_trip_exactly(labels):
    for encode, decode, _ in FAMILIES.values():
        out = decode(encode(labels))
        assert dsb_score(labels, out) == 1.0
        np.testing.assert_array_equal(out > 0, labels > 0)


@pytest.mark.parametrize("family", FAMILIES)
def test_large_images_decoded_by_component_groups_give_the_same_labels(family, monkeypatch):
    from segmentation.postprocess import tiles

    encode, decode, _ = FAMILIES[family]
    labels = synthetic_nuclei((300, 300), 90, seed=4).labels
    maps = ndi.gaussian_filter(encode(labels), sigma=(0, 1, 1))
    whole = decode(maps)
    monkeypatch.setattr(tiles, "TILE", 64)  # 300² > 2 * 64²: decoded in groups of components
    grouped = decode(maps)
    assert grouped.max() == whole.max()
    # Same objects, numbered in another order: the pairing of labels is one-to-one.
    pairs = np.unique(np.stack([whole.ravel(), grouped.ravel()]), axis=1)
    assert pairs.shape[1] == whole.max() + 1
    np.testing.assert_array_equal(whole > 0, grouped > 0)
