"""segment_large decides the nuclear view once for the whole image, never per block."""

import numpy as np
import pytest
import zarr

from segmentation.datasets.nuclear_view import hematoxylin, raw_hematoxylin
from segmentation.datasets.synthetic import synthetic_nuclei
from segmentation.inference import SegmentationModel, SegmentOptions
from segmentation.inference.reference_nets import ReferenceUnet
from segmentation.large.grid import BlockGrid
from segmentation.large.source import open_image_source
from segmentation.large.view import ImageView, whole_image_view


def _model(stained_view="rgb", routes=None, mask=0.5):
    recipe = {"data": {"stained_view": stained_view}}
    net = [ReferenceUnet()]
    return SegmentationModel(
        "unet", net, {"mask": mask}, device="cpu", recipe=recipe, routes=routes
    )


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
    decided = whole_image_view(source, grid, SegmentOptions(), _model())
    assert decided.options.channel == 2 and decided.route is None
    picked = SegmentOptions(channel=0)  # a channel the caller chose stays
    assert whole_image_view(source, grid, picked, _model()).options is picked


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
    assert whole_image_view(source, grid, options, _model()) == ImageView(options)
    # seen as haematoxylin density: the whole image's background and range, from the patches
    # (here they cover it: the values of segment() on the whole image)
    seen = whole_image_view(source, grid, options, _model("hematoxylin"))
    density = raw_hematoxylin(image)
    assert seen.route is None and seen.density_offset == pytest.approx(np.percentile(density, 1))
    view = hematoxylin(image)
    assert seen.intensity == pytest.approx(tuple(np.percentile(view, [1.0, 99.8])), rel=1e-5)
    # a model with a network of its own for stained tissue: the blocks go to it
    routed = _model(routes={"stained": _model("hematoxylin")})
    assert whole_image_view(source, grid, options, routed).route == "stained"
    rgb = SegmentOptions(stained_view="rgb")  # unless the caller asks for the other view
    assert whole_image_view(source, grid, rgb, routed) == ImageView(rgb)


def test_block_settings_skip_the_per_image_rule():
    from segmentation.inference import SegmentationModel
    from segmentation.inference.reference_nets import ReferenceUnet
    from segmentation.large.block import _settings

    class Job:
        torch_threads, tile_size, tile_overlap, tta, batch_size = 0, 256, 32, False, 1

    model = SegmentationModel("unet", [ReferenceUnet()], device="cpu")
    assert _settings(Job(), model, SegmentOptions()).nuclear_view is False


def test_stained_tissue_goes_to_the_models_network_for_it_block_by_block(tmp_path):
    """segment_large on stained tissue with a routed model: the labels of segment()."""
    from distributed import Client

    from segmentation.evaluation.matching import dsb_score
    from segmentation.inference import segment
    from segmentation.large import segment_large

    he = synthetic_nuclei((512, 512), 120, seed=5, radius_range=(6, 10), modality="histology")
    source = _source(tmp_path, he.image)
    routed = _model(routes={"stained": _model("hematoxylin", mask=0.3)})  # its own thresholds
    options = SegmentOptions(auto_diameter=False)
    whole = segment(he.image, routed, options=options)
    assert not np.array_equal(whole, segment(he.image, _model(), options=options))
    with Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as c:
        result = segment_large(
            source.path, tmp_path / "labels.zarr", routed, block_size=256, client=c,
            options=options, progress=False,
        )  # fmt: skip
    assert result.blocks == 4
    assert dsb_score(whole, result.labels()[:].astype(np.int32)) >= 0.97
