"""Issue 17, "done when": a large job killed midway and run again gives the same labels, and the
blocks it had finished are not segmented again.

The job runs in a child process (an in-process Dask cluster, the filter network slowed to about
0.3 s per forward pass so that the kill lands among the 9 blocks) and is killed with SIGKILL
once three blocks are saved; the same job then resumes in this process.
"""

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import zarr
from distributed import Client

from segmentation.datasets.synthetic import synthetic_nuclei
from segmentation.inference import SegmentationModel, SegmentOptions
from segmentation.inference.reference_nets import ReferenceUnet
from segmentation.large import segment_large

ROOT = Path(__file__).resolve().parents[1]
SHAPE, BLOCK, HALO = (768, 768), 256, 64
OPTIONS = SegmentOptions(auto_diameter=False)

CHILD = """
import sys, time
from distributed import Client
from segmentation.inference import SegmentationModel, SegmentOptions
from segmentation.inference.reference_nets import ReferenceUnet
from segmentation.large import segment_large

class Slow(ReferenceUnet):  # same weights (none) as ReferenceUnet: the same job
    def forward(self, x):
        time.sleep(0.3)
        return super().forward(x)

if __name__ == "__main__":
    model = SegmentationModel("unet", [Slow()], device="cpu")
    with Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as c:
        segment_large(sys.argv[1], sys.argv[2], model, block_size={block}, overlap={halo},
                      client=c, options=SegmentOptions(auto_diameter=False), progress=False)
"""


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("restart") / "image.zarr"
    image = synthetic_nuclei(SHAPE, 500, seed=5, radius_range=(6, 16)).image[:, :, 0]
    zarr.create_array(store=str(path), shape=SHAPE, chunks=(256, 256), dtype="uint8")[:] = image
    return path


def _run(source: Path, output: Path, client: Client):
    model = SegmentationModel("unet", [ReferenceUnet()], device="cpu")
    return segment_large(
        source, output, model, block_size=BLOCK, overlap=HALO, client=client, options=OPTIONS,
        keep_parts=True, progress=False,
    )  # fmt: skip


def _kill_after_blocks(source: Path, output: Path, parts: Path, blocks: int) -> None:
    script = output.parent / "child.py"
    script.write_text(textwrap.dedent(CHILD.format(block=BLOCK, halo=HALO)))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    args = [sys.executable, str(script), str(source), str(output)]
    child = subprocess.Popen(args, cwd=ROOT, env=env)
    deadline = time.monotonic() + 120
    try:
        while len(list(parts.glob("block_*.npz"))) < blocks:
            assert child.poll() is None, "the job ended before it could be killed"
            assert time.monotonic() < deadline, "no block was finished in time"
            time.sleep(0.02)
    finally:
        child.kill()
        child.wait()


def test_a_killed_job_resumes_with_the_same_labels(source, tmp_path):
    output, parts = tmp_path / "labels.zarr", tmp_path / "labels.parts"
    _kill_after_blocks(source, output, parts, 3)
    finished = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in parts.glob("block_*.npz")}
    assert 3 <= len(finished) < 9
    assert not zarr.open_array(str(output), mode="r").attrs.get("segmentation_large")

    with pytest.raises(ValueError, match="block_size"):  # another job's blocks are never mixed in
        segment_large(source, output, block_size=512, overlap=HALO, options=OPTIONS)

    with Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as c:
        resumed = _run(source, output, c)
        fresh = _run(source, tmp_path / "fresh.zarr", c)
    assert resumed.skipped == len(finished) and fresh.skipped == 0
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in finished} == finished
    assert resumed.nuclei == fresh.nuclei > 450
    assert np.array_equal(resumed.labels()[:], fresh.labels()[:])
    assert resumed.table.read_text() == fresh.table.read_text().replace("fresh", "labels")
    assert zarr.open_array(str(output), mode="r").attrs["segmentation_large"]["complete"]
