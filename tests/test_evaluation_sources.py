"""`segmentation evaluate` on what users have: segment's output folder, DSB folders, BOM CSVs."""

import csv
import errno
import json

import imageio.v3 as iio
import numpy as np
import pytest

from segmentation.datasets.rle import labels_to_rles, write_submission_csv
from segmentation.evaluation import cli_evaluate, report
from segmentation.visualize import overlay_outlines
from tests.test_evaluation_cli import (  # noqa: F401 (data is a fixture)
    data,
    expected,
    run_cli,
    write_folder,
    write_solution_csv,
)


def write_segment_output(folder, labels):
    """What `segmentation segment --submission` leaves in its output folder."""
    for name, lab in labels.items():
        write_folder(folder, {f"{name}_labels": lab}, suffix=".tif")
        iio.imwrite(folder / f"{name}_overlay.png", overlay_outlines(lab.astype(np.uint8), lab))
        (folder / f"{name}_nuclei.csv").write_text("image,label,area\n")
    write_submission_csv(folder / "submission.csv", labels)
    return folder


def write_dsb(root, labels):
    """The Kaggle DSB2018 layout: <id>/images/<id>.png and one PNG per nucleus in <id>/masks."""
    for name, lab in labels.items():
        (root / name / "images").mkdir(parents=True)
        (root / name / "masks").mkdir()
        iio.imwrite(root / name / "images" / f"{name}.png", (lab > 0).astype(np.uint8) * 200)
        for k in range(1, lab.max() + 1):
            iio.imwrite(root / name / "masks" / f"{k:03d}.png", (lab == k).astype(np.uint8) * 255)
    return root


@pytest.mark.parametrize("layout", ["label_folder", "dsb_folder", "solution_csv"])
def test_every_truth_layout_matches_a_segment_output_folder(tmp_path, data, layout):  # noqa: F811
    truth, pred = data
    if layout == "label_folder":
        t = write_folder(tmp_path / "truth", truth, suffix=".tif")
    elif layout == "dsb_folder":
        t = write_dsb(tmp_path / "stage1_train", truth)
    else:
        t = write_solution_csv(tmp_path / "solution.csv", truth)
    p = write_segment_output(tmp_path / "out", pred)
    rc, out = run_cli(tmp_path, t, p)
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_images"] == 3 and summary["predictions_without_truth"] == []
    assert summary["mean_score"] == pytest.approx(expected(truth, pred).mean_score)


def test_a_segment_output_folder_reads_only_its_label_images(tmp_path, data):  # noqa: F811
    from segmentation.evaluation.sources import LabelSource

    _, pred = data
    source = LabelSource(write_segment_output(tmp_path / "out", pred), "pred")
    assert source.names == ["img_a", "img_b", "img_c"]
    np.testing.assert_array_equal(source.read("img_b"), pred["img_b"])
    write_folder(tmp_path / "out", {"img_a_labels": pred["img_a"]}, suffix=".png")
    with pytest.raises(ValueError, match="two label files for image 'img_a'"):
        LabelSource(tmp_path / "out", "pred")


def add_bom(path):
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    return path


def test_csvs_with_a_byte_order_mark_are_read(tmp_path, data):  # noqa: F811
    truth, pred = data
    t = add_bom(write_solution_csv(tmp_path / "solution.csv", truth))
    p = tmp_path / "submission.csv"
    write_submission_csv(p, pred)
    rc, out = run_cli(tmp_path, t, add_bom(p))
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mean_score"] == pytest.approx(expected(truth, pred).mean_score)


def test_an_rle_number_of_20_digits_is_an_error_naming_file_and_line(tmp_path, data, capsys):  # noqa: F811
    truth, _ = data
    t = write_folder(tmp_path / "truth", {"img_a": truth["img_a"]})
    p = tmp_path / "submission.csv"
    rles = labels_to_rles(truth["img_a"])
    rows = [
        ["img_a", rles[0]],
        ["img_a", "12345678901234567890 3"],
        *(["img_a", r] for r in rles[1:]),
    ]
    with p.open("w", newline="") as fh:
        csv.writer(fh).writerows([["ImageId", "EncodedPixels"], *rows])
    rc, out = run_cli(tmp_path, t, p)
    err = capsys.readouterr().err
    assert rc == 2 and not out.exists()
    assert err == (
        f"segmentation evaluate: error: {p}, line 3: image img_a, nucleus 2: RLE must hold "
        "integers: 12345678901234567890 has 20 digits, too large for a pixel number\n"
    )


def test_an_output_path_that_is_a_file_fails_before_evaluating(tmp_path, data, monkeypatch, capsys):  # noqa: F811
    truth, _ = data
    t = write_folder(tmp_path / "truth", truth)
    (tmp_path / "report").write_text("not a folder")

    def no_evaluation(*args, **kwargs):
        raise AssertionError("evaluated before checking --output")

    monkeypatch.setattr(cli_evaluate, "evaluate_dataset", no_evaluation)
    rc, out = run_cli(tmp_path, t, t)
    assert rc == 1
    assert capsys.readouterr().err == (
        f"segmentation evaluate: error: --output {out} is a file, not a folder; pass a folder "
        "path\n"
    )


def test_a_full_disk_while_writing_reports_leaves_no_truncated_report(
    tmp_path,
    data,  # noqa: F811
    monkeypatch,
    capsys,
):
    truth, _ = data
    t = write_folder(tmp_path / "truth", truth)

    class DiskFillsAfterTheHeader(csv.DictWriter):
        def writerows(self, rows):
            self.writer.writerow(["partial"])
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(report.csv, "DictWriter", DiskFillsAfterTheHeader)
    rc, out = run_cli(tmp_path, t, t)
    assert rc == 1
    err = capsys.readouterr().err
    assert err == (
        f"segmentation evaluate: error: cannot write {out / 'per_image.csv'}: no space left on "
        "the device; free some space or write to another disk\n"
    )
    assert not out.exists() or list(out.iterdir()) == []
