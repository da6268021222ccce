"""The nuclear view: haematoxylin density of stained tissue, blue channel of composites."""

import numpy as np
import pytest

from segmentation.datasets.nuclear_view import hematoxylin, nuclear_view, view_kind


def _he_tile(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A white-background RGB tile with purple (haematoxylin) nuclei and pink (eosin) tissue."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:96, :96]
    nuclei = np.zeros((96, 96), bool)
    for cy, cx in rng.integers(12, 84, size=(6, 2)):
        nuclei |= (yy - cy) ** 2 + (xx - cx) ** 2 < 36
    tissue = (xx > 48) & ~nuclei
    rgb = np.full((96, 96, 3), 245, np.float32)
    rgb[tissue] = (235, 150, 190)  # eosin pink
    rgb[nuclei] = (90, 60, 150)  # haematoxylin purple
    rgb += rng.normal(0, 3, rgb.shape)
    return np.clip(rgb, 0, 255).astype(np.uint8), nuclei


def test_hematoxylin_is_high_on_nuclei_and_low_on_eosin_and_background():
    rgb, nuclei = _he_tile()
    density = hematoxylin(rgb)
    assert density.shape == (96, 96) and density.dtype == np.float32
    tissue = ~nuclei & (np.mgrid[:96, :96][1] > 48)
    assert density[nuclei].mean() > 3 * density[tissue].mean()
    assert density[nuclei].mean() > 3 * density[~nuclei & ~tissue].mean()


def test_view_kinds_follow_colour_and_background():
    rgb, _ = _he_tile()
    assert view_kind(rgb) == "stained"
    gray = np.repeat(rgb[..., :1], 3, axis=2)
    assert view_kind(gray) == "gray" and view_kind(rgb[..., :1]) == "gray"
    dark = 255 - rgb  # a dark background with colour: a fluorescence composite
    assert view_kind(dark) == "composite"


def test_stained_tissue_is_left_as_is_with_rgb_and_turned_gray_with_hematoxylin():
    rgb, nuclei = _he_tile()
    assert nuclear_view(rgb, "rgb") is rgb
    view = nuclear_view(rgb, "hematoxylin")
    assert view.shape == (96, 96, 3) and view.dtype == np.float32
    assert np.array_equal(view[..., 0], view[..., 2])
    assert view[nuclei, 0].mean() > 3 * view[~nuclei, 0].mean()


def test_a_composite_is_seen_through_its_blue_channel():
    rng = np.random.default_rng(1)
    blue = rng.random((64, 64)).astype(np.float32) ** 4
    red = rng.random((64, 64)).astype(np.float32)
    composite = np.stack([red, 0.3 * red, blue], axis=2)
    view = nuclear_view(composite, "rgb")
    assert np.array_equal(view[..., 1], blue) and view.shape == (64, 64, 3)
    no_blue = composite.copy()
    no_blue[..., 2] = 0
    assert nuclear_view(no_blue, "rgb") is no_blue


def test_gray_images_are_untouched_and_bad_views_are_named():
    gray = np.random.default_rng(2).random((32, 32, 1)).astype(np.float32)
    assert nuclear_view(gray, "hematoxylin") is gray
    with pytest.raises(ValueError, match="stained_view must be one of"):
        nuclear_view(gray, "eosin")
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        hematoxylin(gray)


def test_densely_packed_stained_tissue_is_stained_not_a_composite():
    # nuclei over most of the tile, no bright background (as dense H&E tumour tiles): the gray
    # images' background rule calls it dark, but every channel carries light (no composite)
    from segmentation.datasets.image_types import BRIGHT_BACKGROUND, appearance
    from segmentation.datasets.nuclear_view import COMPOSITE_FLOOR, channel_floor

    rng = np.random.default_rng(0)
    tile = np.empty((96, 96, 3), np.float32)
    tile[:] = (225, 140, 195)  # eosin-pink stroma
    nuclei = rng.random((96, 96)) < 0.85
    tile[nuclei] = (120, 75, 160)  # haematoxylin-purple nuclei, as in dense TCGA tiles
    tile[nuclei & (rng.random((96, 96)) < 0.03)] = (45, 20, 80)  # dense chromatin
    tile[:2, :2] = 250  # a speck of glass
    dense = np.clip(tile + rng.normal(0, 6, tile.shape), 0, 255).astype(np.uint8)
    _, background = appearance(dense)
    assert background < BRIGHT_BACKGROUND  # no bright background: a gray image's rule says dark
    assert channel_floor(dense) > COMPOSITE_FLOOR
    assert view_kind(dense) == "stained"
