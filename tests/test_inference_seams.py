"""Seam test (issue 8, "done when"): tiled inference of a 3000 x 3000 image gives the instances of
whole-image inference.

The network is a fixed filter network (:class:`ReferenceUnet`): translation-equivariant like a
trained U-Net, with a known reach (15 px background window + 5 px smoothing), and maps that decode
into realistic nuclei, so the comparison covers thousands of nuclei of which hundreds cross tile
borders.
"""

import numpy as np
import pytest
import torch

from segmentation.datasets.synthetic import synthetic_nuclei
from segmentation.evaluation.matching import dsb_score
from segmentation.inference import SegmentationModel, segment
from segmentation.inference.reference_nets import ReferenceUnet
from segmentation.inference.tiling import tile_grid

SHAPE = (3000, 3000)
TILE, OVERLAP = 512, 64


@pytest.fixture(scope="module")
def sample():
    return synthetic_nuclei(SHAPE, 8000, seed=3, radius_range=(6, 16))


@pytest.fixture(scope="module")
def whole_and_tiled(sample):
    torch.manual_seed(0)
    model = SegmentationModel("unet", [ReferenceUnet()], device="cpu")
    whole = segment(sample.image, model, tile_size=3008, tile_overlap=0, return_details=True)
    tiled = segment(sample.image, model, tile_size=TILE, tile_overlap=OVERLAP, return_details=True)
    return whole, tiled


def _crossing_nuclei(labels: np.ndarray) -> int:
    """Nuclei of the truth that straddle a tile border (a row or column where a tile starts)."""
    starts_y = {t.y0 for t in tile_grid(SHAPE, TILE, OVERLAP)} - {0}
    starts_x = {t.x0 for t in tile_grid(SHAPE, TILE, OVERLAP)} - {0}
    crossing = set()
    for y in starts_y:
        crossing |= set(np.unique(labels[y - 1])) & set(np.unique(labels[y]))
    for x in starts_x:
        crossing |= set(np.unique(labels[:, x - 1])) & set(np.unique(labels[:, x]))
    return len(crossing - {0})


def test_the_tile_size_forces_many_nuclei_across_tile_borders(sample, whole_and_tiled):
    (_, whole), (_, tiled) = whole_and_tiled
    assert whole.tiles == 1 and tiled.tiles == 49
    assert _crossing_nuclei(sample.labels) > 500


def test_tiled_raw_maps_match_whole_image_maps(whole_and_tiled):
    (_, whole), (_, tiled) = whole_and_tiled
    diff = np.abs(tiled.raw - whole.raw)
    assert diff.mean() < 1e-4
    assert np.percentile(diff, 99.9) < 0.02
    assert diff.max() < 0.2  # tile edges never show through: their blend weight is near 0


def test_tiled_instances_match_whole_image_instances(whole_and_tiled):
    (whole_labels, _), (tiled_labels, _) = whole_and_tiled
    assert tiled_labels.dtype == np.int32 and tiled_labels.shape == SHAPE
    assert abs(int(tiled_labels.max()) - int(whole_labels.max())) <= 5
    assert whole_labels.max() > 5000
    assert dsb_score(whole_labels, tiled_labels) >= 0.98
