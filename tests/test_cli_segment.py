"""``segmentation segment``: label TIFFs, overlays, per-nucleus CSVs, submissions, bad files, ranks."""

import csv
import os
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest

from segmentation.cli import main
from segmentation.datasets.io import read_labels
from segmentation.datasets.rle import read_rle_csv
from segmentation.datasets.synthetic import synthetic_nuclei
from segmentation.evaluation.matching import dsb_score
from segmentation.inference import segment
from tests.paths import REPO


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        image = synthetic_nuclei((100, 130), 30, seed=9 + i, radius_range=(5, 10)).image
        iio.imwrite(folder / f"img{i}.png", image[..., 0])
    return folder


def test_writes_labels_overlays_tables_and_a_submission(model_file, images, tmp_path, capsys):
    out = tmp_path / "out"
    args = [str(images), "--model", str(model_file), "--output", str(out), "--device", "cpu"]
    assert main(["segment", *args, "--submission", str(out / "submission.csv")]) == 0
    submission = read_rle_csv(out / "submission.csv", {f"img{i}": (100, 130) for i in range(3)})
    for i in range(3):
        labels = read_labels(out / f"img{i}_labels.tif")
        expected = segment(images / f"img{i}.png", model_file, device="cpu")
        np.testing.assert_array_equal(labels, expected)
        assert labels.max() > 0
        overlay = iio.imread(out / f"img{i}_overlay.png")
        assert overlay.shape == (100, 130, 3) and overlay.dtype == np.uint8
        with open(out / f"img{i}_nuclei.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == labels.max()
        assert rows[0]["image"] == f"img{i}" and int(rows[0]["label"]) == 1
        assert int(rows[0]["area"]) == int((labels == 1).sum())
        assert dsb_score(labels, submission[f"img{i}"]) == 1.0
    assert "img0.png: " in capsys.readouterr().out


def test_a_corrupt_file_is_named_and_the_others_are_segmented(model_file, images, tmp_path, capsys):
    (images / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    out = tmp_path / "out"
    status = main(["segment", str(images), "--model", str(model_file), "--output", str(out)])
    assert status == 1
    assert "bad.png" in capsys.readouterr().err
    assert sorted(p.name for p in out.glob("*_labels.tif")) == [
        f"img{i}_labels.tif" for i in range(3)
    ]


def test_inputs_whose_outputs_would_collide_are_refused(model_file, images, tmp_path, capsys):
    other = tmp_path / "other"
    other.mkdir()
    (other / "img0.png").write_bytes((images / "img0.png").read_bytes())
    out = tmp_path / "o"
    args = [str(images), str(other), "--model", str(model_file), "--output", str(out)]
    assert main(["segment", *args, "--no-overlay", "--no-table"]) == 1
    err = capsys.readouterr().err
    assert f"skipped {images / 'img0.png'}: its outputs (img0_png_labels.tif...) would" in err
    assert f"skipped {other / 'img0.png'}" in err
    assert sorted(p.name for p in out.iterdir()) == ["img1_labels.tif", "img2_labels.tif"]


def test_ranks_take_every_other_file(model_file, images, tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    out = tmp_path / "out"
    assert main(["segment", str(images), "--model", str(model_file), "--output", str(out)]) == 0
    assert [p.name for p in out.glob("*_labels.tif")] == ["img1_labels.tif"]


@pytest.mark.slow  # two processes under torchrun: ~16 s; shard() below, the merge in test_atomic_outputs
def test_torchrun_shards_files_and_gathers_the_submission(model_file, images, tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
        "--master_port=29531", "-m", "segmentation", "segment", str(images),
        "--model", str(model_file), "--output", str(out), "--device", "cpu",
        "--submission", str(out / "submission.csv"), "--no-table", "--no-overlay",
    ]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(list(out.glob("*_labels.tif"))) == 3
    assert not list(out.glob("*.part*"))
    with open(out / "submission.csv", newline="") as f:
        ids = {row["ImageId"] for row in csv.DictReader(f)}
    assert ids == {"img0", "img1", "img2"}


def test_each_rank_segments_its_own_share_of_the_files():
    from pathlib import Path

    from segmentation.segment_inputs import shard

    files = [Path(f"{i}.png") for i in range(5)]
    shares = [shard(files, rank, 2) for rank in range(2)]
    assert shares == [files[0::2], files[1::2]]  # disjoint, together every file once
    with pytest.raises(ValueError, match="RANK"):
        shard(files, 2, 2)
