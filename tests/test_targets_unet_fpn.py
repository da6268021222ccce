"""Training targets of the U-Net (body, border, contact) and FPN (foreground, energy, cos, sin)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from segmentation.datasets.synthetic import synthetic_nuclei
from segmentation.models.fpn.targets import CHANNELS as FPN_CHANNELS
from segmentation.models.fpn.targets import encode_targets as fpn_targets
from segmentation.models.unet.targets import CHANNELS as UNET_CHANNELS
from segmentation.models.unet.targets import encode_targets as unet_targets
from segmentation.postprocess.geometry import boundary_distance


def _disk(shape, cy, cx, r):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2


def _scene():
    """Two touching disks, one disk 1 px apart from the second, one isolated small disk."""
    labels = np.zeros((40, 80), np.int32)
    labels[_disk(labels.shape, 20, 12, 9)] = 1
    labels[_disk(labels.shape, 20, 30, 9) & (labels == 0)] = 2
    right_edge = np.flatnonzero(labels[20] == 2).max()
    labels[_disk(labels.shape, 20, right_edge + 2 + 9, 9)] = 3  # a 1-px gap from nucleus 2
    labels[_disk(labels.shape, 5, 70, 3)] = 4
    return labels


def test_channel_names():
    assert UNET_CHANNELS == ("body", "border", "contact")
    assert FPN_CHANNELS == ("foreground", "energy", "cos", "sin")


def test_unet_targets_shape_values_and_body():
    labels = _scene()
    before = labels.copy()
    maps = unet_targets(labels)
    assert maps.shape == (3, 40, 80) and maps.dtype == np.float32
    assert set(np.unique(maps).tolist()) <= {0.0, 1.0}
    np.testing.assert_array_equal(maps[0], labels > 0)
    assert not maps[1][labels == 0].any(), "the border band lies inside the nuclei"
    np.testing.assert_array_equal(labels, before)


def test_unet_contact_covers_touching_nuclei_and_one_pixel_gaps_only():
    labels = _scene()
    contact = unet_targets(labels)[2].astype(bool)
    row = labels[20]
    edge_12 = np.flatnonzero(row == 1).max()
    assert contact[20, edge_12] and contact[20, edge_12 + 1], "both sides of a contact"
    gap = np.flatnonzero(row == 2).max() + 1
    assert row[gap] == 0 and contact[20, gap], "the 1-px gap between nuclei 2 and 3"
    assert not contact[labels == 4].any(), "an isolated nucleus has no contact"
    assert not contact[20, 12] and not contact[0, 0]
    # A gap of 3 px is not a contact.
    far = np.zeros((10, 20), np.int32)
    far[2:8, 2:8], far[2:8, 11:17] = 1, 2
    assert not unet_targets(far)[2].any()


def test_unet_border_band_grows_with_nucleus_size():
    labels = np.zeros((120, 120), np.int32)
    labels[_disk(labels.shape, 20, 20, 3)] = 1  # equivalent radius 3: 1 px band
    labels[_disk(labels.shape, 70, 70, 30)] = 2  # radius 30: the widest band
    dist = boundary_distance(labels)
    border = unet_targets(labels, border_width=3)[1].astype(bool)
    small, large = labels == 1, labels == 2
    np.testing.assert_array_equal(border[small], dist[small] < 1.5)
    np.testing.assert_array_equal(border[large], dist[large] < 3.5)
    assert border[small].any() and not border[20, 20], "a small nucleus keeps a core"
    thin = unet_targets(labels, border_width=1)[1].astype(bool)
    np.testing.assert_array_equal(thin[large], dist[large] < 1.5)


def test_unet_targets_ignore_label_values_and_accept_any_integer_dtype():
    labels = _scene()
    renumbered = np.where(labels > 0, labels * 1000 + 7, 0).astype(np.int64)
    np.testing.assert_array_equal(unet_targets(renumbered), unet_targets(labels))
    np.testing.assert_array_equal(fpn_targets(renumbered.astype(np.uint32)), fpn_targets(labels))


@pytest.mark.parametrize("encode", [unet_targets, fpn_targets])
def test_empty_labels_give_all_zero_maps(encode):
    maps = encode(np.zeros((16, 24), np.int32))
    assert maps.shape[1:] == (16, 24) and maps.dtype == np.float32 and not maps.any()


@pytest.mark.parametrize("encode", [unet_targets, fpn_targets])
def test_bad_labels_raise_clear_errors(encode):
    with pytest.raises(TypeError, match="astype"):
        encode(np.zeros((8, 8), np.float32))
    with pytest.raises(ValueError, match=r"\(1, 8, 8\)"):
        encode(np.zeros((1, 8, 8), np.int32))
    with pytest.raises(TypeError, match="bool mask"):
        encode(np.zeros((8, 8), bool))


def test_unet_targets_reject_bad_widths():
    labels = _scene()
    with pytest.raises(ValueError, match="border_width"):
        unet_targets(labels, border_width=0)
    with pytest.raises(TypeError, match="border_width"):
        unet_targets(labels, border_width=1.5)
    with pytest.raises(ValueError, match="contact_width"):
        unet_targets(labels, contact_width=0.5)


def test_fpn_energy_is_normalised_per_nucleus():
    labels = _scene()
    before = labels.copy()
    maps = fpn_targets(labels)
    assert maps.shape == (4, 40, 80) and maps.dtype == np.float32
    np.testing.assert_array_equal(maps[0], labels > 0)
    energy = maps[1]
    assert (energy[labels == 0] == 0).all() and (energy[labels > 0] > 0).all()
    for k in range(1, 5):
        assert energy[labels == k].max() == pytest.approx(1.0)
    # Touching nuclei: the energy falls to its minimum on the contact, from both sides.
    edge = np.flatnonzero(labels[20] == 1).max()
    assert energy[20, edge] < energy[20, edge - 2] and energy[20, edge + 1] < energy[20, edge + 3]
    np.testing.assert_array_equal(labels, before)


def test_fpn_directions_are_unit_vectors_towards_the_centroid():
    labels = np.zeros((30, 30), np.int32)
    labels[5:26, 5:26] = 1  # centroid (15, 15)
    maps = fpn_targets(labels)
    cos, sin = maps[2], maps[3]
    norm = np.hypot(cos, sin)
    fg = labels > 0
    centre = np.zeros_like(fg)
    centre[15, 15] = True
    np.testing.assert_allclose(norm[fg & ~centre], 1.0, atol=1e-6)
    assert norm[15, 15] == 0 and (norm[~fg] == 0).all()
    assert (cos[15, 5], sin[15, 5]) == (1.0, 0.0)  # left edge points right
    assert (cos[25, 15], sin[25, 15]) == (0.0, -1.0)  # bottom edge points up
    assert cos[5, 5] == pytest.approx(np.sqrt(0.5)) and sin[5, 5] == pytest.approx(np.sqrt(0.5))


def test_encoders_are_fast_enough_for_a_data_loader():
    labels = synthetic_nuclei((256, 256), 120, seed=3).labels
    for encode in (unet_targets, fpn_targets):
        encode(labels)
        start = time.perf_counter()
        for _ in range(5):
            encode(labels)
        per_call = (time.perf_counter() - start) / 5
        # ~10 ms on an idle core; the bound leaves room for a busy shared machine.
        assert per_call < 0.25, f"{encode.__module__}: {per_call * 1e3:.0f} ms per 256² crop"
