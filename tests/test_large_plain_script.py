"""Issue 27, item 3: ``segment_large`` called from a plain script, without
``if __name__ == "__main__":``, run as ``python script.py``.

One worker (the default) runs in the script's process, so the script works; two workers are
processes that import the script again, and the script stops with one line naming the guard
instead of about 200 lines of Dask tracebacks (``Nanny failed to start``).
"""

import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr

from segmentation.datasets.synthetic import synthetic_nuclei
from segmentation.evaluation.matching import dsb_score
from segmentation.large.cluster import SPAWN_MARKER, guard_message, refuse_in_spawned_worker

ROOT = Path(__file__).resolve().parents[1]

# The README's example as a user pastes it into a file: no __main__ guard.
SCRIPT = """\
from segmentation import segment_large

result = segment_large({source!r}, {output!r}, workers={workers}, block_size=256, progress=False)
print("nuclei", result.nuclei)
"""


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """A 256 x 256 synthetic fluorescence image as a Zarr array, and its exact labels."""
    found = synthetic_nuclei((256, 256), 40, seed=1)
    path = tmp_path_factory.mktemp("plain") / "image.zarr"
    image = found.image[:, :, 0]
    zarr.create_array(store=str(path), shape=image.shape, chunks=(256, 256), dtype="uint8")[:] = (
        image
    )
    return path, found.labels


def _run_script(
    folder: Path, source: Path, workers: int
) -> tuple[subprocess.CompletedProcess, Path]:
    output = folder / f"labels_{workers}.zarr"
    script = folder / f"plain_{workers}.py"
    script.write_text(SCRIPT.format(source=str(source), output=str(output), workers=workers))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, str(script)], cwd=folder, env=env, capture_output=True, text=True,
        timeout=240,
    )  # fmt: skip
    return done, output


def test_one_worker_runs_from_a_plain_script(sample, tmp_path):
    source, truth = sample
    done, output = _run_script(tmp_path, source, 1)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "Nanny" not in done.stderr
    labels = zarr.open_array(str(output), mode="r")[:]
    assert labels.shape == (256, 256) and labels.dtype == np.uint32
    nuclei = int(done.stdout.split()[-1])
    assert nuclei == labels.max() == len(np.unique(labels)) - 1 > 0
    assert dsb_score(truth, labels.astype(np.int32)) >= 0.7


@pytest.mark.slow  # two spawned workers: ~11 s; the in-process tests below cover the check
def test_two_workers_from_a_plain_script_stop_in_one_line_naming_the_guard(sample, tmp_path):
    source, _ = sample
    done, output = _run_script(tmp_path, source, 2)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert lines[-1] == (
        "RuntimeError: segment_large(workers=2) starts worker processes, which re-run this "
        'script: put the call under `if __name__ == "__main__":` (or use workers=1)'
    )
    assert len(lines) < 20, done.stderr
    assert "Nanny" not in done.stderr and "nuclei" not in done.stdout
    assert not output.exists()


def test_a_spawned_worker_re_running_the_call_stops_before_any_work(tmp_path, monkeypatch):
    # what multiprocessing sets while a spawned process imports the main module
    monkeypatch.setattr(multiprocessing.current_process(), "_inheriting", True, raising=False)
    refuse_in_spawned_worker(None, 1)  # one worker: in-process, nothing spawned
    refuse_in_spawned_worker("tcp://scheduler:8786", 2)  # an existing cluster starts nothing
    monkeypatch.delenv(SPAWN_MARKER, raising=False)
    with pytest.raises(RuntimeError) as raised:  # spawned by someone else: the message itself
        refuse_in_spawned_worker(None, 3)
    assert str(raised.value) == guard_message(3) and "workers=3" in str(raised.value)
    marker = tmp_path / "unguarded"
    monkeypatch.setenv(SPAWN_MARKER, str(marker))
    with pytest.raises(SystemExit) as exited:  # a local cluster's worker: quiet, the parent says it
        refuse_in_spawned_worker(None, 2)
    assert exited.value.code == 1 and marker.exists()


def test_the_parent_process_is_never_refused(monkeypatch):
    monkeypatch.delattr(multiprocessing.current_process(), "_inheriting", raising=False)
    refuse_in_spawned_worker(None, 2)
