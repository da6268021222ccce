"""End-to-end tests of `segmentation evaluate` (cli_evaluate.main) on folders and Kaggle CSVs."""

import argparse
import csv
import json

import numpy as np
import pytest

from segmentation.datasets.io import write_labels
from segmentation.datasets.rle import labels_to_rles, write_submission_csv
from segmentation.evaluation import cli_evaluate, evaluate_dataset


def blobs(seed, shape):
    """A label image of non-overlapping rectangles, ids 1..n."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, np.int32)
    k = 0
    for y in range(2, shape[0] - 10, 12):
        for x in range(2, shape[1] - 10, 12):
            if rng.random() < 0.8:
                k += 1
                h, w = rng.integers(5, 10, size=2)
                labels[y : y + h, x : x + w] = k
    return labels


@pytest.fixture()
def data():
    """Three truth images and predictions: exact, shifted by one pixel, one nucleus missing."""
    truth = {"img_a": blobs(0, (48, 64)), "img_b": blobs(1, (40, 40)), "img_c": blobs(2, (64, 48))}
    pred = {
        "img_a": truth["img_a"].copy(),
        "img_b": np.roll(truth["img_b"], 1, axis=1),
        "img_c": np.where(truth["img_c"] == 1, 0, truth["img_c"]),
    }
    return truth, pred


def expected(truth, pred):
    names = sorted(truth)
    return evaluate_dataset([(truth[n], pred[n]) for n in names], names=names)


def write_folder(folder, labels, suffix=".png"):
    for name, lab in labels.items():
        write_labels(folder / f"{name}{suffix}", lab)
    return folder


def write_solution_csv(path, labels):
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["ImageId", "EncodedPixels", "Height", "Width"])
        for name, lab in labels.items():
            for rle in labels_to_rles(lab) or [""]:
                writer.writerow([name, rle, *lab.shape])
    return path


def run_cli(tmp_path, truth, pred, *extra):
    out = tmp_path / "report"
    argv = ["--truth", str(truth), "--pred", str(pred), "--output", str(out), *extra]
    return cli_evaluate.main(argv), out


def test_two_folders_end_to_end(tmp_path, data, capsys):
    truth, pred = data
    t = write_folder(tmp_path / "truth", truth)
    p = write_folder(tmp_path / "pred", pred, suffix=".tif")
    rc, out = run_cli(tmp_path, t, p)
    assert rc == 0
    want = expected(truth, pred)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mean_score"] == pytest.approx(want.mean_score)
    assert summary["n_images"] == 3 and summary["missing_predictions"] == []
    assert 0 < summary["mean_score"] < 1
    with (out / "per_image.csv").open() as fh:
        rows = {r["image"]: r for r in csv.DictReader(fh)}
    assert float(rows["img_a"]["score"]) == 1.0
    assert rows["img_c"]["fn@0.5"] == "1" and rows["img_c"]["fp@0.5"] == "0"
    assert (out / "threshold_curves.png").read_bytes()[:4] == b"\x89PNG"
    printed = capsys.readouterr().out
    assert f"competition score (mean over images): {want.mean_score:.4f}" in printed


def test_csv_pair_end_to_end(tmp_path, data):
    truth, pred = data
    t = write_solution_csv(tmp_path / "solution.csv", truth)
    pred = dict(pred, img_b=np.zeros_like(pred["img_b"]))  # an image with no nucleus predicted
    p = tmp_path / "submission.csv"
    write_submission_csv(p, pred)
    rc, out = run_cli(tmp_path, t, p)
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mean_score"] == pytest.approx(expected(truth, pred).mean_score)
    # a folder of truth with the submission CSV gives the same numbers
    rc, out2 = run_cli(tmp_path, write_folder(tmp_path / "truth", truth), p, "--inclusive")
    summary2 = json.loads((out2 / "summary.json").read_text())
    assert rc == 0 and summary2["inclusive"] is True
    assert summary2["mean_score"] == pytest.approx(summary["mean_score"])


def test_missing_images_fail_by_default_and_are_scored_empty_when_allowed(tmp_path, data, capsys):
    truth, pred = data
    t = write_folder(tmp_path / "truth", truth)
    partial = {k: v for k, v in pred.items() if k != "img_b"}
    partial["img_extra"] = pred["img_b"]
    p = write_folder(tmp_path / "pred", partial)
    rc, out = run_cli(tmp_path, t, p)
    err = capsys.readouterr().err
    assert rc == 2 and not out.exists()
    assert "1 truth images without prediction: img_b" in err
    assert "1 predictions without truth: img_extra" in err
    rc, out = run_cli(tmp_path, t, p, "--allow-missing")
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["missing_predictions"] == ["img_b"]
    assert summary["predictions_without_truth"] == ["img_extra"]
    scored = dict(pred, img_b=np.zeros_like(truth["img_b"]))
    assert summary["mean_score"] == pytest.approx(expected(truth, scored).mean_score)

    # the same with a submission CSV holding an image the truth does not have
    sub = tmp_path / "sub.csv"
    write_submission_csv(sub, partial)
    assert run_cli(tmp_path, t, sub)[0] == 2
    rc, out = run_cli(tmp_path, t, sub, "--allow-missing")
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mean_score"] == pytest.approx(expected(truth, scored).mean_score)


def test_overlapping_prediction_masks_are_rejected(tmp_path, data, capsys):
    truth, _ = data
    t = write_solution_csv(tmp_path / "solution.csv", {"img_a": truth["img_a"]})
    p = tmp_path / "overlap.csv"
    p.write_text("ImageId,EncodedPixels\nimg_a,1 10\nimg_a,5 10\n")
    rc, out = run_cli(tmp_path, t, p)
    err = capsys.readouterr().err
    assert rc == 2 and not out.exists()
    assert "img_a" in err and "overlaps" in err


def test_bad_inputs_exit_2_with_a_reason(tmp_path, data, capsys):
    truth, pred = data
    t = write_folder(tmp_path / "truth", truth)
    assert run_cli(tmp_path, tmp_path / "nope", t)[0] == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert run_cli(tmp_path, t, tmp_path / "empty")[0] == 2
    assert "holds no label images" in capsys.readouterr().err
    sub = tmp_path / "sub.csv"
    write_submission_csv(sub, pred)
    assert run_cli(tmp_path, sub, t)[0] == 2
    assert "--truth" in capsys.readouterr().err
    wrong = write_folder(tmp_path / "wrong", {**pred, "img_a": np.zeros((5, 5), np.int32)})
    assert run_cli(tmp_path, t, wrong)[0] == 2
    assert "image 'img_a': gt and pred must have the same shape" in capsys.readouterr().err


def test_add_parser_registers_the_subcommand(tmp_path, data):
    truth, pred = data
    parser = argparse.ArgumentParser(prog="segmentation")
    cli_evaluate.add_parser(parser.add_subparsers(dest="command"))
    t = write_folder(tmp_path / "truth", truth)
    args = parser.parse_args(
        ["evaluate", "--truth", str(t), "--pred", str(t), "--output", str(tmp_path / "o")]
    )
    assert args.command == "evaluate" and args.inclusive is False
    assert args.func(args) == 0
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["mean_score"] == 1.0
