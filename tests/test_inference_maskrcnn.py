"""Mask R-CNN in segment(): instances merged over views and members, then across tiles."""

import numpy as np
import pytest
import torch
import yaml
from scipy import ndimage as ndi

from segmentation.datasets.synthetic import synthetic_nuclei
from segmentation.evaluation.matching import dsb_score
from segmentation.inference import SegmentationModel, SegmentOptions, segment
from segmentation.inference.instances import merge_tiles, merge_views, shift_instances
from segmentation.inference.tiling import tile_grid
from segmentation.models.maskrcnn import oracle_raw
from segmentation.models.registry import get_family
from tests.paths import CONFIG_DIR

FAMILY = get_family("maskrcnn")


class BlobMaskRCNN(SegmentationModel):
    """A Mask R-CNN stand-in: each input's bright blobs as perfect-score instances.

    Thresholding and connected components commute with crops and with rotations, so tiled or
    augmented runs must find the nuclei of a whole-image run; only the merging is under test.
    """

    def forward(self, batch):
        out = []
        for x in batch.numpy():
            blobs, _ = ndi.label(x[0] > 0.3)
            out.append(oracle_raw(blobs))
        return [out]


@pytest.fixture(scope="module")
def blob_model():
    torch.manual_seed(0)
    config = yaml.safe_load((CONFIG_DIR / "tiny_maskrcnn.yaml").read_text())["model"]
    return BlobMaskRCNN("maskrcnn", [FAMILY.build(config)], device="cpu")


@pytest.fixture(scope="module")
def sample():
    return synthetic_nuclei((300, 340), 80, seed=11, radius_range=(6, 14), touching=False)


def test_views_that_agree_merge_into_one_instance_each(sample):
    raw = oracle_raw(sample.labels)
    merged = merge_views([raw, raw, raw], sample.labels.shape, 0.5, 0.5)
    assert len(merged["scores"]) == len(raw["scores"])
    np.testing.assert_allclose(merged["scores"], 1.0)
    missing = {k: (v[1:] if k != "image_shape" else v) for k, v in raw.items()}
    merged = merge_views([raw, missing], sample.labels.shape, 0.5, 0.5)
    assert len(merged["scores"]) == len(raw["scores"])
    assert sorted(merged["scores"])[0] == pytest.approx(0.5)  # found by one view of two


def test_tiles_of_oracle_instances_merge_to_the_whole_image(sample):
    shape = sample.labels.shape
    parts = []
    for tile in tile_grid(shape, 128, 48, pad=False):
        crop = sample.labels[tile.y0 : tile.y0 + tile.height, tile.x0 : tile.x0 + tile.width]
        parts.append((tile, shift_instances(oracle_raw(crop), tile.y0, tile.x0, shape)))
    merged = merge_tiles(parts, shape, 0.5, 0.5)
    whole = FAMILY.decode(oracle_raw(sample.labels))
    n_parts = sum(len(raw["scores"]) for _, raw in parts)
    assert len(merged["scores"]) < n_parts  # duplicates from the overlaps are gone
    assert abs(len(merged["scores"]) - int(sample.labels.max())) <= 2
    assert dsb_score(whole, FAMILY.decode(merged)) >= 0.98


def test_tiled_and_augmented_runs_find_the_nuclei_of_a_whole_image_run(blob_model, sample):
    whole = segment(sample.image, blob_model, tile_size=384)
    assert whole.max() > 50
    tiled, details = segment(
        sample.image, blob_model, tile_size=128, tile_overlap=48, return_details=True
    )
    assert details.tiles == len(tile_grid((300, 340), 128, 48)) == 20  # stride 64: 4 x 5
    np.testing.assert_array_equal(details.nuclei["score"], 1.0)  # the oracle's scores
    assert dsb_score(whole, tiled) >= 0.98
    assert dsb_score(whole, segment(sample.image, blob_model, tile_size=384, tta=True)) >= 0.98


def test_an_untrained_mask_rcnn_runs_tiled_with_tta_and_details():
    torch.manual_seed(0)
    config = yaml.safe_load((CONFIG_DIR / "tiny_maskrcnn.yaml").read_text())["model"]
    model = SegmentationModel("maskrcnn", [FAMILY.build(config)], device="cpu")
    image = synthetic_nuclei((120, 130), 15, seed=12).image
    # untrained: scores hover near 0.5, so a low score threshold lets some nuclei through
    views = SegmentOptions(
        tta_views=("rot0", "rot1flip", "rot2"),
        thresholds={"score_threshold": 0.2},
        auto_diameter=False,  # an untrained model's fragments say nothing of the nuclei's size
    )
    labels, details = segment(
        image, model, tile_size=96, tile_overlap=32, tta=True, options=views, return_details=True
    )
    assert labels.shape == (120, 130) and labels.dtype == np.int32
    assert details.views == 3 and details.tiles == 4 and details.channels == ()  # 2 x 2 tiles
    assert set(details.raw) == {"boxes", "scores", "masks", "image_shape"}
    assert len(details.nuclei) == labels.max() > 0
    scores = details.nuclei["score"]
    assert np.all((scores >= 0.2) & (scores <= 1))  # every painted nucleus has its score
