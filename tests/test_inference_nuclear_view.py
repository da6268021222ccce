"""segment() shows the network the nuclear view: the blue channel of a fluorescence composite, the
haematoxylin density of stained tissue when the model (or the caller) asks for it."""

import numpy as np
import pytest

from segmentation.datasets.nuclear_view import hematoxylin
from segmentation.datasets.synthetic import synthetic_nuclei
from segmentation.inference import SegmentationModel, SegmentOptions, segment
from segmentation.inference.reference_nets import ReferenceUnet


def _model(stained_view=None):
    recipe = {} if stained_view is None else {"data": {"stained_view": stained_view}}
    return SegmentationModel("unet", [ReferenceUnet()], device="cpu", recipe=recipe)


@pytest.fixture(scope="module")
def gray():
    return synthetic_nuclei((80, 96), 12, seed=3, radius_range=(5, 9)).image[..., 0]


def test_a_composite_is_segmented_through_its_blue_channel(gray):
    model = _model()
    ring = np.clip(255 - gray.astype(np.int32), 0, 255).astype(np.uint8)  # bright between nuclei
    composite = np.stack([ring, ring // 3, gray], axis=-1)
    expected = segment(gray, model)
    assert expected.max() > 5
    np.testing.assert_array_equal(segment(composite, model), expected)
    # a picked channel wins over the rule
    np.testing.assert_array_equal(segment(composite, model, channel=2), expected)
    assert not np.array_equal(segment(composite, model, channel=0), expected)


def test_stained_tissue_is_seen_as_the_model_was_trained():
    sample = synthetic_nuclei((80, 96), 10, seed=4, radius_range=(5, 9), modality="histology")
    density = hematoxylin(sample.image)
    rgb_model, hem_model = _model(), _model("hematoxylin")
    as_rgb = segment(sample.image, rgb_model)
    as_density = segment(density, rgb_model)
    assert not np.array_equal(as_rgb, as_density)
    np.testing.assert_array_equal(segment(sample.image, hem_model), as_density)
    hem = SegmentOptions(stained_view="hematoxylin")
    np.testing.assert_array_equal(segment(sample.image, rgb_model, options=hem), as_density)
    rgb = SegmentOptions(stained_view="rgb")
    np.testing.assert_array_equal(segment(sample.image, hem_model, options=rgb), as_rgb)


def test_unknown_stained_views_are_named():
    with pytest.raises(ValueError, match="stained_view must be None"):
        SegmentOptions(stained_view="eosin")
    with pytest.raises(ValueError, match="newer toolkit"):
        segment(np.zeros((32, 32, 3), np.uint8), _model("dab"))
