"""Test-time augmentation: the eight views, their inverses on maps, vectors and instances."""

import numpy as np
import pytest
import torch

from segmentation.datasets.synthetic import synthetic_nuclei
from segmentation.evaluation.matching import dsb_score
from segmentation.inference import TTA_VIEWS, SegmentationModel, SegmentOptions, segment
from segmentation.inference.reference_nets import ReferenceFpn, ReferenceUnet
from segmentation.inference.transforms import View, invert_instances, invert_maps
from segmentation.models.registry import get_family

VIEWS = [View.parse(name) for name in TTA_VIEWS]


@pytest.fixture(scope="module")
def sample():
    return synthetic_nuclei((96, 128), 25, seed=4, radius_range=(4, 10))


def test_views_are_the_eight_distinct_symmetries_and_invert_exactly():
    a = np.arange(2 * 5 * 7).reshape(2, 5, 7)
    seen = set()
    for view in VIEWS:
        b = view.apply(a)
        assert b.shape[-2:] == view.shape_of((5, 7))
        np.testing.assert_array_equal(view.invert(b), a)
        seen.add(b.tobytes() + bytes(b.shape))
    assert len(seen) == 8


@pytest.mark.parametrize("view", VIEWS, ids=TTA_VIEWS)
def test_inverted_fpn_maps_of_a_view_equal_the_maps_of_the_image(sample, view):
    family = get_family("fpn")
    truth = family.oracle_raw(sample.labels)
    of_view = family.oracle_raw(np.ascontiguousarray(view.apply(sample.labels)))
    back = invert_maps(view, of_view, family.channels)
    # scalar maps move with the pixels; the direction vectors (cos, sin) also turn and mirror
    np.testing.assert_allclose(back, truth, atol=1e-5)


@pytest.mark.parametrize("view", VIEWS, ids=TTA_VIEWS)
def test_inverted_instances_of_a_view_paint_the_same_nuclei(sample, view):
    family = get_family("maskrcnn")
    expected = family.decode(family.oracle_raw(sample.labels))
    view_labels = np.ascontiguousarray(view.apply(sample.labels))
    raw = invert_instances(view, family.oracle_raw(view_labels), view_labels.shape)
    assert raw["image_shape"] == sample.labels.shape
    assert dsb_score(expected, family.decode(raw)) >= 0.99


@pytest.mark.parametrize("family, net", [("unet", ReferenceUnet), ("fpn", ReferenceFpn)])
def test_tta_of_a_symmetric_network_changes_nothing(sample, family, net):
    # Gaussian, box and max filters, Sobel gradients and Hessian curvature commute with rotations
    # and mirrors, so every view predicts the same maps once inverted (vectors included).
    model = SegmentationModel(family, [net()], device="cpu")
    labels, plain = segment(sample.image, model, tile_size=128, return_details=True)
    tta_labels, tta = segment(sample.image, model, tile_size=128, tta=True, return_details=True)
    assert tta.views == 8 and plain.views == 1
    np.testing.assert_allclose(tta.raw, plain.raw, atol=2e-4)
    assert dsb_score(labels, tta_labels) >= 0.99


def test_tta_averages_the_inverted_views_of_an_ordinary_network(sample):
    torch.manual_seed(1)
    family = get_family("unet")
    net = family.build({"encoder": "resnet18", "encoder_depth": 3, "decoder_channels": [16, 8, 8]})
    model = SegmentationModel("unet", [net], device="cpu")
    fixed = SegmentOptions(auto_diameter=False)  # an untrained model: keep the image's scale
    _, tta = segment(
        sample.image, model, tile_size=128, tta=True, options=fixed, return_details=True
    )
    manual = []
    for view in VIEWS:
        image = np.ascontiguousarray(view.apply(np.moveaxis(sample.image, 2, 0)))
        view_image = np.moveaxis(image, 0, 2)
        _, d = segment(view_image, model, tile_size=128, options=fixed, return_details=True)
        manual.append(invert_maps(view, d.raw, model.channels))
    np.testing.assert_allclose(tta.raw, np.mean(manual, axis=0), atol=1e-5)
    _, plain = segment(sample.image, model, tile_size=128, options=fixed, return_details=True)
    assert np.abs(tta.raw - plain.raw).max() > 1e-3  # a random network is not symmetric


def test_a_subset_of_views_can_be_chosen(sample):
    model = SegmentationModel("unet", [ReferenceUnet()], device="cpu")
    options = SegmentOptions(tta_views=("rot0", "rot0flip"))
    _, details = segment(sample.image, model, tta=True, options=options, return_details=True)
    assert details.views == 2
    with pytest.raises(ValueError, match="tta_views"):
        SegmentOptions(tta_views=("rot5",))
