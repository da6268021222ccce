"""Issue 17, "done when": a 3000 x 3000 image segmented in blocks of 1024 on Dask gives the nuclei
of whole-image ``segment()``, and nuclei across block corners keep one id.

The network is the fixed filter network :class:`ReferenceUnet` (translation-equivariant like a
trained U-Net, with a known reach), so thousands of realistic nuclei are segmented in seconds;
hundreds of them cross block borders. Four more nuclei are drawn centred exactly on the four
inner block corners, where four blocks see them and none holds their centroid clearly.
"""

import csv

import numpy as np
import pytest
import zarr
from distributed import Client
from skimage.measure import label as connected

from segmentation.datasets.synthetic import synthetic_nuclei
from segmentation.evaluation.matching import dsb_score
from segmentation.inference import SegmentationModel, SegmentOptions, segment
from segmentation.inference.reference_nets import ReferenceUnet
from segmentation.large import segment_large

SHAPE, BLOCK = (3000, 3000), 1024
CORNERS = [(1024, 1024), (1024, 2048), (2048, 1024), (2048, 2048)]
RADIUS = 13
#: The nuclei are near the training size: segment() would keep the image's scale, and so would
#: segment_large's pilot (tested in test_large_outputs.py); skipping both keeps the test short.
OPTIONS = SegmentOptions(auto_diameter=False)


def _draw_corner_nuclei(image: np.ndarray) -> None:
    """Clear a disk around each inner block corner and draw one round nucleus centred on it."""
    yy, xx = np.mgrid[-40:40, -40:40] + 0.5  # pixel centres around the corner point
    distance = np.hypot(yy, xx)
    for y, x in CORNERS:
        patch = image[y - 40 : y + 40, x - 40 : x + 40, 0]
        patch[distance <= RADIUS + 8] = 10
        patch[distance <= RADIUS] = 200


@pytest.fixture(scope="module")
def image():
    sample = synthetic_nuclei(SHAPE, 8000, seed=3, radius_range=(6, 16))
    _draw_corner_nuclei(sample.image)
    return sample.image


@pytest.fixture(scope="module")
def results(image, tmp_path_factory):
    folder = tmp_path_factory.mktemp("large")
    source = zarr.create_array(
        store=str(folder / "image.zarr"), shape=SHAPE, chunks=(512, 512), dtype="uint8"
    )
    source[:] = image[:, :, 0]
    model = SegmentationModel("unet", [ReferenceUnet()], device="cpu")
    whole = segment(image, model, tile_size=1024, options=OPTIONS)
    with Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as c:
        result = segment_large(
            folder / "image.zarr", folder / "labels.zarr", model, block_size=BLOCK, client=c,
            options=OPTIONS, progress=False,
        )  # fmt: skip
    return whole, result


def _table(path) -> dict[str, np.ndarray]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {
        k: np.array([float(r[k]) if r[k] else np.nan for r in rows])
        for k in rows[0]
        if k != "image"
    }


def _crossing(labels: np.ndarray) -> int:
    """Nuclei with pixels on both sides of a block border."""
    found = set()
    for b in range(BLOCK, SHAPE[0], BLOCK):
        found |= set(np.unique(labels[b - 1])) & set(np.unique(labels[b]))
        found |= set(np.unique(labels[:, b - 1])) & set(np.unique(labels[:, b]))
    return len(found - {0})


def test_block_labels_match_whole_image_segment(results):
    whole, result = results
    labels = result.labels()
    assert labels.dtype == np.uint32 and labels.shape == SHAPE and labels.chunks == (BLOCK, BLOCK)
    labels = labels[:].astype(np.int32)
    assert result.blocks == 9 and result.skipped == 0
    assert whole.max() > 7000 and _crossing(labels) > 150
    assert abs(result.nuclei - int(whole.max())) <= 5
    assert dsb_score(whole, labels) >= 0.99


def test_labels_are_unique_and_the_table_describes_them(results):
    _, result = results
    labels = result.labels()[:]
    n = result.nuclei
    assert np.array_equal(np.unique(labels), np.arange(n + 1))
    assert connected(labels, background=0, connectivity=2).max() == n  # one region per id
    table = _table(result.table)
    assert np.array_equal(table["label"], np.arange(1, n + 1))
    area = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    assert np.abs(table["area"] - area).sum() <= 1e-3 * area.sum()  # only contested pixels
    inside = (table["bbox_y0"] <= table["centroid_y"]) & (table["centroid_y"] <= table["bbox_y1"])
    assert inside.all() and np.nanmin(table["score"]) > 0


def test_nuclei_on_block_corners_keep_one_id(results):
    whole, result = results
    labels = result.labels()[:]
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    table = _table(result.table)
    for y, x in CORNERS:
        ids = np.unique(labels[y - 6 : y + 6, x - 6 : x + 6])
        assert len(ids) == 1 and ids[0] > 0, f"corner {(y, x)}: ids {ids}"
        disk = np.hypot(yy - y + 0.5, xx - x + 0.5) <= RADIUS
        mine = labels == ids[0]
        assert (mine & disk).sum() / (mine | disk).sum() > 0.8
        theirs = whole == whole[y, x]
        assert (mine & theirs).sum() / (mine | theirs).sum() > 0.95
        rows = (table["bbox_y0"] < y) & (table["bbox_y1"] > y)
        rows &= (table["bbox_x0"] < x) & (table["bbox_x1"] > x) & (table["area"] > 300)
        assert rows.sum() == 1  # counted once
