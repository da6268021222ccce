"""Tiles and blending: coverage, weights, exact reconstruction, tiled vs whole on a real U-Net."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from segmentation.datasets.synthetic import synthetic_nuclei
from segmentation.evaluation.matching import dsb_score
from segmentation.inference import SegmentationModel, SegmentOptions, segment
from segmentation.inference.reference_nets import ReferenceFpn
from segmentation.inference.tiling import MapBlender, blend_window, tile_grid
from segmentation.models.registry import get_family


@given(
    height=st.integers(1, 700),
    width=st.integers(1, 700),
    tile=st.sampled_from([64, 96, 128, 256]),
    overlap_fraction=st.floats(0.0, 0.45),
)
@settings(max_examples=60, deadline=None)
def test_tiles_cover_the_image_with_the_requested_overlap(height, width, tile, overlap_fraction):
    overlap = int(tile * overlap_fraction)
    tiles = tile_grid((height, width), tile, overlap, multiple=32)
    covered = np.zeros((height, width), np.int32)
    for t in tiles:
        assert t.height % 32 == 0 and t.width % 32 == 0
        covered[t.y0 : t.y0 + t.height, t.x0 : t.x0 + t.width] += 1
        assert t.y0 % 32 == 0 and t.x0 % 32 == 0  # on the network's stride grid
        assert t.height <= tile and t.width <= tile
        # a tile extends past the image only by its padding to the multiple
        assert t.y0 + t.height < height + 32 and t.x0 + t.width < width + 32
    assert (covered > 0).all()
    ys = sorted({t.y0 for t in tiles})
    for a, b in zip(ys, ys[1:], strict=False):
        assert a + tile - b >= overlap  # neighbours overlap by at least `overlap`


def test_single_tile_when_the_image_fits_and_padding_to_the_multiple():
    (tile,) = tile_grid((45, 70), 256, 32, multiple=32)
    assert (tile.y0, tile.x0, tile.height, tile.width) == (0, 0, 64, 96)
    assert tile.cut == (False, False, False, False)
    (whole,) = tile_grid((45, 70), None, 0, multiple=1)
    assert (whole.height, whole.width) == (45, 70)


def test_bad_overlap_is_refused_with_a_hint():
    with pytest.raises(ValueError, match="tile_overlap must satisfy"):
        tile_grid((500, 500), 128, 64)


def test_blend_window_is_one_inside_and_falls_only_at_cut_edges():
    tiles = tile_grid((300, 300), 128, 32)
    corner = tiles[0]  # cut at bottom and right only
    w = blend_window(corner, 32)
    assert w.shape == (128, 128) and (w > 0).all() and w.max() == 1.0
    assert w[0, 0] == 1.0  # image corner: no neighbour, full weight
    assert w[-1, 64] < 0.01 and w[64, -1] < 0.01
    assert w[64, 64] == 1.0


@given(height=st.integers(1, 400), width=st.integers(1, 400), seed=st.integers(0, 5))
@settings(max_examples=40, deadline=None)
def test_blending_identical_tile_maps_reconstructs_them_exactly(height, width, seed):
    truth = np.random.default_rng(seed).random((2, height, width), dtype=np.float32)
    tiles = tile_grid((height, width), 96, 40, multiple=32)
    blender = MapBlender(2, (height, width), 40)
    for t in tiles:
        crop = np.zeros((2, t.height, t.width), np.float32)
        part = truth[:, t.y0 : t.y0 + t.height, t.x0 : t.x0 + t.width]
        crop[:, : part.shape[1], : part.shape[2]] = part
        blender.add(t, crop)
    np.testing.assert_allclose(blender.result(), truth, rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def small_unet():
    torch.manual_seed(0)
    family = get_family("unet")
    net = family.build({"encoder": "resnet18", "encoder_depth": 3, "decoder_channels": [32, 16, 8]})
    return SegmentationModel("unet", [net], device="cpu")


def test_tiled_maps_equal_whole_maps_away_from_overlaps_and_stay_close_inside_them(small_unet):
    image = synthetic_nuclei((330, 420), 60, seed=2).image
    fixed = SegmentOptions(auto_diameter=False)  # the same scale for both: an untrained model
    _, whole = segment(image, small_unet, tile_size=448, options=fixed, return_details=True)
    _, tiled = segment(
        image, small_unet, tile_size=160, tile_overlap=48, options=fixed, return_details=True
    )
    grid = tile_grid((330, 420), 160, 48, multiple=32)
    assert whole.tiles == 1 and tiled.tiles == len(grid) == 12  # 3 rows x 4 columns
    assert tiled.raw.shape == whole.raw.shape == (3, 330, 420)
    coverage = np.zeros((330, 420), np.int32)
    for t in grid:
        coverage[t.y0 : t.y0 + t.height, t.x0 : t.x0 + t.width] += 1
    single = coverage == 1
    diff = np.abs(tiled.raw - whole.raw)
    # A pixel that only one tile covers lies >= 48 px from that tile's cut edges: the network
    # (3 encoder stages) sees the same neighbourhood as in the whole image.
    assert single.sum() > 10_000
    assert diff[:, single].max() < 1e-4
    assert diff[:, ~single].mean() < 0.01


def test_fpn_tiles_blend_the_direction_field_without_seams():
    image = synthetic_nuclei((700, 800), 700, seed=6, radius_range=(6, 14)).image
    model = SegmentationModel("fpn", [ReferenceFpn()], device="cpu")
    whole, w = segment(image, model, tile_size=832, return_details=True)
    tiled, t = segment(image, model, tile_size=256, tile_overlap=64, return_details=True)
    assert t.tiles == 16 and whole.max() > 400  # stride 192: 4 x 4 tiles
    assert np.abs(t.raw - w.raw).mean() < 1e-3
    assert dsb_score(whole, tiled) >= 0.98
