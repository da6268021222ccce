"""``segmentation segment`` outputs: names that never collide, write failures, evaluate reads them."""

import csv
import errno
import json
import types

import imageio.v3 as iio
import numpy as np
import pytest

import segmentation.inference
from segmentation.cli import main
from segmentation.datasets import io
from segmentation.datasets.io import read_labels, write_labels
from segmentation.inference import segment
from tests.test_cli_segment import images  # noqa: F401 (a fixture)


def segment_cli(images, model_file, out, *extra):  # noqa: F811
    args = [str(images), "--model", str(model_file), "--output", str(out), "--device", "cpu"]
    return main(["segment", *args, "--no-progress", *extra])


def test_same_stem_in_one_folder_gets_the_suffix_in_its_name(model_file, images, tmp_path):  # noqa: F811
    iio.imwrite(images / "img0.jpg", iio.imread(images / "img1.png"), quality=95)
    out = tmp_path / "out"
    assert segment_cli(images, model_file, out, "--submission", str(out / "sub.csv")) == 0
    names = ["img0_jpg", "img0_png", "img1", "img2"]
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(
        [f"{n}_{kind}" for n in names for kind in ("labels.tif", "overlay.png", "nuclei.csv")]
        + ["sub.csv"]
    )
    want = segment(images / "img0.png", model_file, device="cpu")
    np.testing.assert_array_equal(read_labels(out / "img0_png_labels.tif"), want)
    with open(out / "sub.csv", newline="") as f:
        assert {row["ImageId"] for row in csv.DictReader(f)} == set(names)
    with open(out / "img0_jpg_nuclei.csv", newline="") as f:
        assert next(csv.DictReader(f))["image"] == "img0_jpg"


def test_evaluate_reads_the_output_folder_as_written(model_file, images, tmp_path):  # noqa: F811
    out = tmp_path / "out"
    assert segment_cli(images, model_file, out, "--submission", str(out / "sub.csv")) == 0
    truth = tmp_path / "truth"
    for i in range(3):  # the truth: a folder of label TIFFs named by image stem
        write_labels(truth / f"img{i}.tif", read_labels(out / f"img{i}_labels.tif"))
    report = tmp_path / "report"
    argv = ["evaluate", "--truth", str(truth), "--pred", str(out), "--output", str(report)]
    assert main(argv) == 0
    summary = json.loads((report / "summary.json").read_text())
    assert summary["n_images"] == 3 and summary["mean_score"] == 1.0
    assert summary["predictions_without_truth"] == []


def no_segmenting(*args, **kwargs):
    raise AssertionError("the model was loaded before the outputs were checked")


@pytest.mark.parametrize("problem", ["output_is_a_file", "submission_is_a_folder", "read_only"])
def test_output_problems_are_one_line_before_segmenting(
    model_file,  # noqa: F811
    images,  # noqa: F811
    tmp_path,
    monkeypatch,
    capsys,
    problem,
):
    out, extra = tmp_path / "out", []
    if problem == "output_is_a_file":
        out.write_text("not a folder")
        want = f"--output {out} is a file, not a folder; pass a folder path"
    elif problem == "submission_is_a_folder":
        (tmp_path / "sub").mkdir()
        extra = ["--submission", str(tmp_path / "sub")]
        want = f"--submission {tmp_path / 'sub'} is a folder; pass a file name"
    else:
        from segmentation import atomic

        def read_only(**kwargs):
            raise OSError(errno.EROFS, "Read-only file system")

        monkeypatch.setattr(atomic, "tempfile", types.SimpleNamespace(mkstemp=read_only))
        want = f"cannot write to --output {out}: the file system is read-only; choose a writable"
    monkeypatch.setattr(segmentation.inference, "load_model", no_segmenting)
    monkeypatch.setattr(segmentation.inference, "segment_files", no_segmenting)
    assert segment_cli(images, model_file, out, *extra) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"segmentation segment: error: {want}") and err.count("\n") == 1


def test_a_full_disk_stops_the_run_with_one_line_and_no_truncated_file(
    model_file,  # noqa: F811
    images,  # noqa: F811
    tmp_path,
    monkeypatch,
    capsys,
):
    real_imwrite, calls = io.tifffile.imwrite, []

    def disk_fills_up(target, data, **kwargs):  # the second label image hits a full disk
        calls.append(target)
        if len(calls) == 1:
            return real_imwrite(target, data, **kwargs)
        if isinstance(target, str):
            target = open(target, "wb")  # noqa: SIM115 (as tifffile does with a path)
        target.write(b"II*\x00" + b"\x00" * 64)
        target.flush()
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io.tifffile, "imwrite", disk_fills_up)
    out = tmp_path / "out"
    assert segment_cli(images, model_file, out, "--no-overlay", "--no-table") == 1
    err = capsys.readouterr().err
    assert err == (
        f"segmentation segment: error: cannot write {out / 'img1_labels.tif'}: no space left on "
        "the device; free some space or write to another disk\n"
    )
    assert sorted(p.name for p in out.iterdir()) == ["img0_labels.tif"]
    assert read_labels(out / "img0_labels.tif").max() > 0
