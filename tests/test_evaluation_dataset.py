"""Tests of evaluate_dataset (both aggregations) and of the report writers."""

import csv
import json

import numpy as np
import pytest

from segmentation.evaluation import (
    DSB_THRESHOLDS,
    DatasetResult,
    evaluate_dataset,
    format_summary_table,
    match,
    plot_threshold_curves,
    write_per_image_csv,
    write_summary_json,
)


def squares(n, size=64, side=6):
    """A label image with n separated squares, ids 1..n."""
    labels = np.zeros((size, size), np.int32)
    per_row = size // (side + 2)
    for k in range(n):
        y, x = (k // per_row) * (side + 2), (k % per_row) * (side + 2)
        labels[y : y + side, x : x + side] = k + 1
    return labels


@pytest.fixture()
def two_images():
    """Image a: 1 nucleus found perfectly (score 1); image b: 9 nuclei, none predicted (score 0)."""
    a = squares(1)
    b = squares(9)
    return [(a, a.copy()), (b, np.zeros_like(b))]


def test_competition_mean_and_pooled_counts_differ_as_defined(two_images):
    res = evaluate_dataset(two_images, names=["a", "b"])
    assert res.names == ("a", "b") and res.n_images == 2
    assert res.mean_score == pytest.approx(0.5)  # mean of per-image scores 1 and 0
    assert res.tp.tolist() == [1] * 10 and res.fp.tolist() == [0] * 10
    assert res.fn.tolist() == [9] * 10
    assert res.score == pytest.approx([1 / 10] * 10)  # pooled TP / (TP + FP + FN)
    assert res.f1_at(0.7) == pytest.approx(2 / 11)  # pooled 2TP / (2TP + FP + FN)
    assert res.mean_image_f1_at(0.7) == pytest.approx(0.5)
    assert res.precision == pytest.approx([1.0] * 10) and res.recall == pytest.approx([0.1] * 10)
    assert res.at(0.7).fn == 9 and res.at(0.7).f1 == pytest.approx(2 / 11)
    assert (res.n_true, res.n_pred) == (10, 1)


def test_results_equal_per_image_match(two_images):
    res = evaluate_dataset(iter(two_images), thresholds=(0.3, 0.8), inclusive=True)
    assert res.names == ("0", "1") and res.thresholds == (0.3, 0.8) and res.inclusive
    for (gt, pred), r in zip(two_images, res.images, strict=True):
        assert r.tp.tolist() == match(gt, pred, (0.3, 0.8), inclusive=True).tp.tolist()
    assert res.image_score == pytest.approx([0.5, 0.5])
    with pytest.raises(ValueError, match="was not evaluated"):
        res.f1_at(0.7)


def test_pairs_are_consumed_lazily_one_at_a_time():
    seen = []

    def gen():
        for k in (3, 5):
            seen.append(k)
            yield squares(k), squares(k)

    res = evaluate_dataset(gen(), names=("x", "y"))
    assert seen == [3, 5] and res.mean_score == 1.0 and res.n_true == 8


def test_errors_name_the_image(two_images):
    bad = [two_images[0], (squares(2), np.zeros((10, 10), np.int32))]
    with pytest.raises(ValueError, match=r"image 'second': gt and pred must have the same shape"):
        evaluate_dataset(bad, names=["first", "second"])
    with pytest.raises(ValueError, match="pairs is empty"):
        evaluate_dataset([])
    with pytest.raises(ValueError, match="more pairs than names"):
        evaluate_dataset(two_images, names=["only"])
    with pytest.raises(ValueError, match="3 names for 2 pairs"):
        evaluate_dataset(two_images, names=["a", "b", "c"])
    with pytest.raises(ValueError, match="duplicates"):
        evaluate_dataset(two_images, names=["a", "a"])
    with pytest.raises(ValueError, match=r"\(gt, pred\) tuple"):
        evaluate_dataset([squares(2)])


def test_dataset_result_rejects_mixed_thresholds():
    a = match(squares(2), squares(2), (0.5,))
    b = match(squares(2), squares(2), (0.6,))
    with pytest.raises(ValueError, match="same thresholds"):
        DatasetResult(names=("a", "b"), images=(a, b), thresholds=(0.5,))


def test_csv_json_png_and_table(tmp_path, two_images):
    res = evaluate_dataset(two_images, names=["a", "b"])
    csv_path = write_per_image_csv(res, tmp_path / "sub" / "per_image.csv")
    with csv_path.open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["image"] for r in rows] == ["a", "b"]
    assert float(rows[0]["score"]) == 1.0 and float(rows[1]["score"]) == 0.0
    assert rows[1]["n_true"] == "9" and rows[1]["fn@0.95"] == "9" and rows[0]["tp@0.55"] == "1"
    assert float(rows[1]["f1@0.7"]) == 0.0

    js = json.loads(write_summary_json(res, tmp_path / "s.json", {"note": "x"}).read_text())
    assert js["mean_score"] == pytest.approx(0.5) and js["f1@0.7"] == pytest.approx(2 / 11)
    assert js["image_f1@0.7"] == pytest.approx(0.5) and js["note"] == "x"
    assert js["thresholds"] == list(DSB_THRESHOLDS) and len(js["per_threshold"]) == 10
    assert js["per_threshold"][4]["threshold"] == 0.7 and js["per_threshold"][4]["fn"] == 9

    other = evaluate_dataset([(squares(4), squares(4))])
    png = plot_threshold_curves({"model A": res, "model B": other}, tmp_path / "c.png", title="t")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    with pytest.raises(ValueError, match="curves is empty"):
        plot_threshold_curves({}, tmp_path / "d.png")

    table = format_summary_table(res)
    assert "competition score (mean over images): 0.5000" in table
    assert "F1 at IoU 0.7: pooled 0.1818, mean over images 0.5000" in table
    assert len(table.splitlines()) == 2 + 10 + 6
