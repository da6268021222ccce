"""``segmentation segment``: one run at a time per ``--output``, a killed run's temporary files
removed by the next run, and a submission that never disagrees with the label files beside it."""

import datetime as dt
import json
import os
import socket
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest

import segmentation.inference
from segmentation.atomic import temp_destination
from segmentation.cli import main
from segmentation.datasets.io import read_labels
from segmentation.datasets.rle import read_rle_csv
from segmentation.datasets.synthetic import synthetic_nuclei
from segmentation.evaluation.matching import dsb_score
from tests.paths import REPO

LOCK = ".segmentation.lock"
SHAPE = (96, 96)


def write_images(folder, seed=0, n=2):
    folder.mkdir(exist_ok=True)
    for i in range(n):
        sample = synthetic_nuclei(SHAPE, 12, seed=seed + i, radius_range=(5, 9))
        iio.imwrite(folder / f"img{i}.png", sample.image[..., 0])
    return folder


@pytest.fixture
def images(tmp_path):
    return write_images(tmp_path / "images")


def segment_cli(inputs, out, *extra):
    args = [str(inputs), "--output", str(out), "--device", "cpu", "--no-progress"]
    return main(["segment", *args, *extra])


def write_lock(out, pid, started=None, name=LOCK, **fields):
    """A lock as another run would have written it."""
    out.mkdir(exist_ok=True)
    started = started or dt.datetime.now().astimezone().isoformat(timespec="seconds")
    command = "segmentation segment other/ --output out/"
    record = {"pid": pid, "host": socket.gethostname(), "started": started, "command": command}
    (out / name).write_text(json.dumps({**record, **fields}))
    return record


def dead_pid():
    """The pid of a process that has ended (and was reaped)."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], stdout=-1)
    return int(done.stdout)


def leave_a_temp_file_as_kill_9_does(destination):
    """A writer killed inside ``atomic_write``: its hidden temporary file stays behind."""
    code = (
        "import os, sys\n"
        "from segmentation.atomic import atomic_write\n"
        "with atomic_write(sys.argv[1], 'wb') as f:\n"
        "    os._exit(9)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code, str(destination)], env=env)
    assert done.returncode == 9
    left = [p for p in destination.parent.iterdir() if p.name.startswith(f".{destination.name}.")]
    assert len(left) == 1 and left[0].stat().st_size == 0
    return left[0]


@pytest.mark.parametrize("holder", ["a run", "a rank of a torchrun job"])
def test_a_second_run_into_a_folder_a_live_run_holds_is_refused_naming_it(
    images, tmp_path, capsys, holder
):
    out = tmp_path / "out"
    name = LOCK if holder == "a run" else ".segmentation.rank1.lock"
    job = None if holder == "a run" else "@127.0.0.1:29500/2"
    record = write_lock(out, os.getpid(), name=name, job=job, rank=1)  # this process: alive
    temp = leave_a_temp_file_as_kill_9_does(out / "img0_labels.tif")
    lock_before = (out / name).read_bytes()
    assert segment_cli(images, out, "--submission", str(out / "sub.csv")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    line = err[0]
    assert f"pid {os.getpid()} on host {socket.gethostname()}" in line
    assert f"started {record['started']}" in line and record["command"] in line
    assert "choose another --output" in line and f"delete {out / name}" in line
    # nothing written, the other run's lock and its temporary file untouched
    assert sorted(p.name for p in out.iterdir()) == sorted([name, temp.name])
    assert (out / name).read_bytes() == lock_before


@pytest.mark.parametrize("how", ["dead pid", "reused pid"])
def test_a_stale_lock_is_taken_over_with_a_warning(images, tmp_path, capsys, how):
    out = tmp_path / "out"
    if how == "dead pid":
        pid, started = dead_pid(), None
    else:  # the pid is alive, but its process started after the lock was written
        pid, started = os.getpid(), "2001-01-01T00:00:00+00:00"
    write_lock(out, pid, started)
    assert segment_cli(images, out, "--no-overlay", "--no-table") == 0
    err = capsys.readouterr().err
    assert "warning: took over the stale lock" in err and f"pid {pid} " in err
    assert sorted(p.name for p in out.iterdir()) == ["img0_labels.tif", "img1_labels.tif"]


@pytest.mark.parametrize("ending", ["normal", "error", "ctrl-c"])
def test_the_lock_names_the_run_while_it_runs_and_goes_when_it_ends(
    images, tmp_path, monkeypatch, ending
):
    out = tmp_path / "out"
    seen = []
    segment_files = segmentation.inference.segment_files

    def watching(*args, **kwargs):
        seen.append(json.loads((out / LOCK).read_text()) if (out / LOCK).exists() else None)
        if ending == "error":
            raise RuntimeError("the network failed")
        if ending == "ctrl-c":
            raise KeyboardInterrupt
        return segment_files(*args, **kwargs)

    monkeypatch.setattr(segmentation.inference, "segment_files", watching)
    if ending == "normal":
        assert segment_cli(images, out, "--no-overlay", "--no-table") == 0
    else:
        with pytest.raises(RuntimeError if ending == "error" else KeyboardInterrupt):
            segment_cli(images, out)
    assert seen[0] is not None, "no lock while the run was segmenting"
    assert seen[0]["pid"] == os.getpid() and seen[0]["host"] == socket.gethostname()
    assert "--output" in seen[0]["command"] and seen[0]["started"]
    assert not (out / LOCK).exists()


def test_a_killed_writers_temp_file_is_removed_by_the_next_run_and_nothing_else(
    images, tmp_path, capsys
):
    out = tmp_path / "out"
    out.mkdir()
    temp = leave_a_temp_file_as_kill_9_does(out / "img0_labels.tif")
    assert temp_destination(temp.name) == "img0_labels.tif"
    other_temp = leave_a_temp_file_as_kill_9_does(out / "earlier_labels.tif")  # other images too
    (out / "sub").mkdir()
    nested = leave_a_temp_file_as_kill_9_does(out / "sub" / "x.csv")  # not searched
    kept = {
        "notes.tmp": b"mine",
        ".img0_labels.tif.tmp": b"mine too",
        ".x.abcdefgh.tmp": b"another tool's",
        "old_labels.tif": b"not a temp",
    }
    for name, data in kept.items():
        (out / name).write_bytes(data)
    assert segment_cli(images, out, "--no-overlay", "--no-table") == 0
    assert not temp.exists() and not other_temp.exists() and nested.exists()
    for name, data in kept.items():
        assert (out / name).read_bytes() == data
    written = {"img0_labels.tif", "img1_labels.tif", "sub"}
    assert {p.name for p in out.iterdir()} == written | set(kept)
    assert "removed 2 temporary file(s) a killed run left" in capsys.readouterr().err


def submission_agrees_with_labels(out, submission):
    """Every image of the submission equals its label file in ``out``; the ids it holds."""
    rows = read_rle_csv(submission, {p.name[: -len("_labels.tif")]: SHAPE for p in out.iterdir()})
    for name, labels in rows.items():
        assert dsb_score(read_labels(out / f"{name}_labels.tif"), labels) == 1.0, name
    return set(rows)


def test_the_submission_never_disagrees_with_the_label_files(tmp_path, capsys):
    out, sub = tmp_path / "out", tmp_path / "out" / "sub.csv"
    first = write_images(tmp_path / "first", seed=0)
    assert segment_cli(first, out, "--submission", str(sub)) == 0
    before = read_labels(out / "img0_labels.tif")
    # a second run of other images under the same names stops at its second image
    second = write_images(tmp_path / "second", seed=20)
    (out / "img1_overlay.png").unlink()
    (out / "img1_overlay.png").mkdir()
    assert segment_cli(second, out, "--submission", str(sub)) == 1
    assert "img1_overlay.png: it is a folder" in capsys.readouterr().err
    assert not np.array_equal(read_labels(out / "img0_labels.tif"), before)  # rewritten
    assert not sub.exists()  # rather than the first run's, which disagrees with img0's labels
    assert not (out / LOCK).exists()  # the failed run released the folder
    (out / "img1_overlay.png").rmdir()
    assert segment_cli(second, out, "--submission", str(sub)) == 0
    assert submission_agrees_with_labels(out, sub) == {"img0", "img1"}
    # a run of other images: the submission holds exactly the label files this run wrote
    third = write_images(tmp_path / "third", seed=40, n=1)
    (third / "img0.png").rename(third / "new.png")
    assert segment_cli(third, out, "--submission", str(sub)) == 0
    assert submission_agrees_with_labels(out, sub) == {"new"}
