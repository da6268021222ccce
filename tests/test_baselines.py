"""The classical Otsu + watershed baseline."""

import numpy as np
import pytest

from segmentation.baselines import otsu_watershed
from segmentation.datasets.synthetic import synthetic_nuclei
from segmentation.evaluation.matching import dsb_score


def test_finds_separated_fluorescent_nuclei():
    sample = synthetic_nuclei((256, 256), 25, seed=2, touching=False, overlap=0.0)
    labels = otsu_watershed(sample.image)
    assert labels.dtype == np.int32 and labels.shape == (256, 256)
    assert dsb_score(sample.labels, labels) > 0.5


def test_dark_stained_nuclei_use_dark_polarity():
    sample = synthetic_nuclei((256, 256), 25, seed=2, touching=False, modality="histology")
    auto = dsb_score(sample.labels, otsu_watershed(sample.image))
    dark = dsb_score(sample.labels, otsu_watershed(sample.image, polarity="dark"))
    bright = dsb_score(sample.labels, otsu_watershed(sample.image, polarity="bright"))
    assert auto == dark > 0.9 and bright < 0.1


def test_constant_image_gives_no_nuclei_and_input_untouched():
    image = np.full((64, 64), 7, np.uint8)
    copy = image.copy()
    assert otsu_watershed(image).max() == 0
    np.testing.assert_array_equal(image, copy)


def test_bad_polarity_is_named():
    with pytest.raises(ValueError, match="polarity"):
        otsu_watershed(np.zeros((8, 8), np.uint8), polarity="up")
