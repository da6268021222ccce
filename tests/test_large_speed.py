"""Issue 27, item 4: whole slides at ``segment()``'s speed.

- The automatic nucleus size costs no network pass of its own when the image keeps its scale:
  the first blocks, segmented at the image's scale to decide it, are kept (before: four extra
  pilot windows went through the network, then every block).
- Tiles are fitted to the blocks' windows (fewer pixels predicted twice), with batches that hold
  no more pixels than ``segment()``'s.
- A pass of fewer tasks than the cluster's slots gives each task more PyTorch threads; worker
  processes run without Dask's ``MALLOC_TRIM_THRESHOLD_``.
- The size model's reading is confirmed or refused as ``segment()`` does it.

The network is the fixed filter network :class:`ReferenceUnet`, counting the pixels it sees.
"""

import math
import os

import numpy as np
import pytest
import torch
import zarr
from distributed import Client

from segmentation.datasets.synthetic import synthetic_nuclei
from segmentation.evaluation.matching import dsb_score
from segmentation.inference import SegmentationModel, SegmentOptions, segment
from segmentation.inference.reference_nets import ReferenceUnet
from segmentation.inference.size_model import SizeModel
from segmentation.large import segment_large
from segmentation.large.cluster import open_cluster, task_threads
from segmentation.large.tiles import fit_tiles, tile_cost

SHAPE, BLOCK = (512, 512), 256


class Counting(ReferenceUnet):
    """ReferenceUnet (no weights: the same job) that counts the pixels it is shown."""

    pixels = 0

    def forward(self, x):
        Counting.pixels += x.shape[0] * x.shape[2] * x.shape[3]
        return super().forward(x)


class Stages(torch.nn.Module):
    """An "encoder" for the size model's style: two pooled copies of the input."""

    def forward(self, x):
        return [x, torch.nn.functional.avg_pool2d(x, 2)]


class WithEncoder(ReferenceUnet):
    """ReferenceUnet with an encoder whose features the size model reads."""

    def __init__(self):
        super().__init__()
        self.encoder = Stages()

    def forward(self, x):
        self.encoder(x)  # the style recorder's hook sees it
        return super().forward(x)


@pytest.fixture(scope="module")
def client():
    with Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as c:
        yield c


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """Nuclei of about the training diameter (18 px): the image keeps its scale."""
    found = synthetic_nuclei(SHAPE, 220, seed=7, radius_range=(7, 11))
    path = tmp_path_factory.mktemp("speed") / "image.zarr"
    zarr.create_array(store=str(path), shape=SHAPE, chunks=(256, 256), dtype="uint8")[:] = (
        found.image[:, :, 0]
    )
    return path, found.image


def _large(path, output, model, client, options=None):
    return segment_large(
        path, output, model, block_size=BLOCK, client=client, options=options, progress=False
    )


def test_the_first_blocks_are_kept_when_the_image_keeps_its_scale(sample, client, tmp_path):
    path, _ = sample
    model = SegmentationModel("unet", [Counting()], device="cpu")
    Counting.pixels = 0
    auto = _large(path, tmp_path / "auto.zarr", model, client)
    seen_auto = Counting.pixels
    Counting.pixels = 0
    fixed = _large(
        path, tmp_path / "fixed.zarr", model, client, SegmentOptions(auto_diameter=False)
    )
    assert auto.diameter is None and auto.blocks == 4
    assert seen_auto == Counting.pixels > 0  # deciding the size cost no pass of its own
    assert auto.block_steps["blocks"] == 4 and auto.timings["blocks"] < auto.timings["pilot"]
    assert np.array_equal(auto.labels()[:], fixed.labels()[:]) and auto.nuclei > 150


def test_a_job_killed_before_keeping_its_first_blocks_resumes_with_them(sample, client, tmp_path):
    """Killed after the size was decided (job.json written) but before the first blocks were
    moved among the finished blocks: the rerun keeps them instead of segmenting them again."""
    path, _ = sample
    model = SegmentationModel("unet", [Counting()], device="cpu")
    output, parts = tmp_path / "labels.zarr", tmp_path / "labels.parts"
    first = segment_large(
        path, output, model, block_size=BLOCK, client=client, keep_parts=True, progress=False
    )
    (parts / "first").mkdir()
    for block in parts.glob("block_*.npz"):  # as they were before being kept
        block.rename(parts / "first" / block.name)
    Counting.pixels = 0
    again = _large(path, output, model, client)
    assert Counting.pixels == 0 and again.skipped == again.blocks == 4
    assert np.array_equal(again.labels()[:], first.labels()[:]) and not parts.exists()


def test_tiles_fit_the_blocks_windows_with_no_larger_batches():
    for side, expected in [(1280, 1280), (2176, 1152), (2304, 1216), (4352, 1184)]:
        tile, batch = fit_tiles((side, side), 1024, 96, 4)
        assert tile == expected and batch * tile**2 <= 4 * 1024**2
        assert tile_cost((side, side), tile, 96, 32, True) < tile_cost(
            (side, side), 1024, 96, 32, True
        )
    assert fit_tiles((384, 384), 1024, 96, 4) == (1024, 4)  # one tile anyway: as asked
    assert fit_tiles((1280, 1280), 1024, 96, 4) == fit_tiles((1280, 1280), 1024, 96, 4)


def test_a_pass_of_fewer_tasks_than_slots_gives_each_task_more_threads():
    threads = task_threads(cores=2, slots=2)
    assert threads(1) == 2 and threads(2) == 1 and threads(9) == 1
    threads = task_threads(cores=8, slots=3)
    assert (threads(1), threads(2), threads(3), threads(100)) == (8, 4, 2, 2)


def test_a_size_models_reading_of_fragments_is_checked_as_segment_checks_it(
    sample, client, tmp_path
):
    """The size model reads nuclei three times the training size; the pass at that size does not
    find larger nuclei, so, as segment() on the whole image, the image keeps its scale."""
    path, image = sample
    style = 6  # the two stages' channels
    reads = SizeModel(np.zeros(style), np.zeros(style), math.log(54.0), {})
    model = SegmentationModel("unet", [WithEncoder()], device="cpu", size_model=reads)
    _, details = segment(image, model, return_details=True)
    result = _large(path, tmp_path / "labels.zarr", model, client)
    assert details.scale == 1.0 and result.diameter is None
    own = segment(image, model, options=SegmentOptions(auto_diameter=False))
    assert dsb_score(own, result.labels()[:].astype(np.int32)) >= 0.97


def test_worker_processes_keep_their_freed_memory_for_the_next_tensors():
    """Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536 in worker processes (every large tensor
    mapped and faulted in anew: 16 % slower forward passes); the local cluster leaves it unset."""
    with open_cluster(None, 2, 1) as (client, threads):
        found = client.run(os.getenv, "MALLOC_TRIM_THRESHOLD_")
        assert list(found.values()) == [None, None]
        assert client.run(os.getenv, "OMP_NUM_THREADS") == dict.fromkeys(found, "1")
        assert threads(1) == max(1, os.cpu_count() or 1)
