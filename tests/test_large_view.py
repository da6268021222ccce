"""segment_large decides the nuclear view once for the whole image, never per block."""

import numpy as np
import pytest
import zarr

from segmentation.datasets.synthetic import synthetic_nuclei
from segmentation.inference import SegmentOptions
from segmentation.large.grid import BlockGrid
from segmentation.large.source import open_image_source
from segmentation.large.view import whole_image_view


def _source(tmp_path, image, name="image.zarr"):
    zarr.create_array(store=str(tmp_path / name), data=image, chunks=(64, 64, image.shape[2]))
    return open_image_source(tmp_path / name)


def _composite():
    gray = synthetic_nuclei((256, 256), 40, seed=1, radius_range=(5, 9)).image[..., 0]
    ring = np.clip(255 - gray.astype(np.int32), 0, 255).astype(np.uint8) // 2
    return np.stack([ring, ring // 3, gray], axis=-1)


def test_a_composite_is_segmented_through_its_blue_channel(tmp_path):
    source = _source(tmp_path, _composite())
    grid = BlockGrid(source.height, source.width, 128, 0)
    decided = whole_image_view(source, grid, SegmentOptions(), recipe={})
    assert decided.channel == 2
    picked = SegmentOptions(channel=0)  # a channel the caller chose stays
    assert whole_image_view(source, grid, picked, recipe={}) is picked


def test_stained_tissue_keeps_rgb_even_where_a_block_looks_dark(tmp_path):
    from segmentation.datasets.nuclear_view import view_kind

    he = synthetic_nuclei((256, 256), 30, seed=2, radius_range=(5, 9), modality="histology")
    image = he.image.copy()
    rng = np.random.default_rng(0)  # a block packed with nuclei: dark purple, a little eosin
    block = np.where(rng.random((128, 128, 1)) < 0.1, (235, 150, 190), (90, 60, 150))
    image[:128, :128] = np.clip(block + rng.normal(0, 4, block.shape), 0, 255).astype(np.uint8)
    assert view_kind(image) == "stained" and view_kind(image[:128, :128]) != "stained"
    source = _source(tmp_path, image)
    grid = BlockGrid(source.height, source.width, 128, 0)
    options = SegmentOptions()
    assert whole_image_view(source, grid, options, recipe={}) is options
    hem = {"data": {"stained_view": "hematoxylin"}}
    with pytest.raises(ValueError, match="stained_view='rgb'"):
        whole_image_view(source, grid, options, recipe=hem)


def test_block_settings_skip_the_per_image_rule():
    from segmentation.inference import SegmentationModel
    from segmentation.inference.reference_nets import ReferenceUnet
    from segmentation.large.block import _settings

    class Job:
        torch_threads, tile_size, tile_overlap, tta, batch_size = 0, 256, 32, False, 1

    model = SegmentationModel("unet", [ReferenceUnet()], device="cpu")
    assert _settings(Job(), model, SegmentOptions()).nuclear_view is False
