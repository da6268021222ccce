"""The tiny CPU benchmark end to end (configs/benchmark_tiny.yaml): every architecture trained on
the bundled sample under one budget, tuned, tested, tabulated and plotted."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from segmentation.benchmark import load_benchmark_config, run_benchmark

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "benchmark_tiny.yaml"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("benchmark")
    config = load_benchmark_config(TINY, [f"output={out}"])
    run_benchmark(config)
    with (out / "results.csv").open(newline="") as fh:
        rows = {r["name"]: r for r in csv.DictReader(fh)}
    return config, out, rows


@pytest.mark.slow  # the tiny benchmark of every architecture: ~50 s
def test_every_architecture_has_a_row_in_every_table(tiny_run):
    config, out, rows = tiny_run
    names = [a.name for a in config.architectures]
    assert list(rows) == names
    markdown = (out / "results.md").read_text()
    for name in names:
        assert markdown.count(f"| {name} |") == 3  # accuracy, speed/memory, image types
    for row in rows.values():
        for key in ("score", "f1_0.5", "f1_0.7", "f1_0.9", "precision_0.7", "recall_0.7"):
            assert 0.0 <= float(row[key]) <= 1.0
        assert float(row["total_ms_per_image"]) > 0 and float(row["peak_cpu_mb"]) > 0


@pytest.mark.slow  # the tiny benchmark of every architecture: ~50 s
def test_baseline_row_is_the_otsu_score_of_the_test_split(tiny_run):
    from segmentation.baselines import otsu_watershed
    from segmentation.evaluation.dataset import evaluate_dataset
    from segmentation.training.data import load_samples, split_three

    config, _, rows = tiny_run
    data = config.data_config()
    _, _, test = split_three(load_samples(data), data)
    expected = evaluate_dataset([(s.labels, otsu_watershed(s.image)) for s in test])
    row = rows["Otsu + watershed"]
    assert float(row["score"]) == pytest.approx(expected.mean_score)
    assert float(row["f1_0.7"]) == pytest.approx(expected.f1_at(0.7))
    counts = sum(int(row[f"images_{k}"]) for k in ("fluorescence", "brightfield", "histology"))
    assert counts == len(test)


@pytest.mark.slow  # the tiny benchmark of every architecture: ~50 s
def test_networks_share_the_budget_and_report_their_cost(tiny_run):
    _, _, rows = tiny_run
    ensemble, single = rows["U-Net ensemble"], rows["U-Net"]
    assert int(ensemble["members"]) == 2
    assert int(ensemble["train_crops"]) == int(single["train_crops"]) == 64  # 2 x 32 crops
    for name in ("U-Net ensemble", "U-Net", "FPN distance/angle", "Mask R-CNN"):
        row = rows[name]
        assert int(row["parameters"]) > 0 and float(row["network_ms_per_image"]) > 0
        assert float(row["oracle"]) > 0.9  # each family's decoding on perfect outputs
        assert float(row["train_seconds"]) > 0
    assert rows["Otsu + watershed"]["oracle"] == ""


@pytest.mark.slow  # the tiny benchmark of every architecture: ~50 s
def test_run_record_and_plots(tiny_run):
    config, out, _ = tiny_run
    payload = json.loads((out / "results.json").read_text())
    record = payload["record"]
    for key in ("date", "git_commit", "machine", "device", "seed", "config", "versions", "split"):
        assert key in record
    assert record["seed"] == config.seed
    assert record["config"]["data"]["test_fraction"] == 0.3
    assert set(payload["curves"]) == {a.name for a in config.architectures}
    curve = payload["curves"]["U-Net"]
    assert curve["iou_thresholds"][0] == 0.5 and len(curve["f1"]) == 10
    for name in ("threshold_curves.png", "speed_accuracy.png", "examples.png"):
        assert (out / name).read_bytes()[:8] == PNG_MAGIC


@pytest.mark.slow  # the tiny benchmark of every architecture: ~50 s
def test_a_trained_checkpoint_replaces_training(tiny_run, tmp_path):
    _, out, rows = tiny_run
    raw = yaml.safe_load(TINY.read_text())
    raw["output"] = str(tmp_path)
    raw["architectures"] = [
        {"name": "U-Net", "checkpoint": str(out / "runs" / "u-net" / "model.pt")},
    ]
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump(raw))
    run_benchmark(load_benchmark_config(path))
    with (tmp_path / "results.csv").open(newline="") as fh:
        (again,) = list(csv.DictReader(fh))
    assert float(again["score"]) == pytest.approx(float(rows["U-Net"]["score"]))
    assert again["source"].startswith("checkpoint") and again["train_crops"] == "64"
    assert not (tmp_path / "runs").exists()  # nothing was trained


def test_a_test_set_given_by_path_is_the_one_evaluated(tmp_path):
    import imageio.v3 as iio

    from segmentation.datasets.io import write_labels
    from segmentation.datasets.synthetic import synthetic_nuclei

    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    for i in range(3):
        sample = synthetic_nuclei((96, 96), 6, seed=40 + i)
        iio.imwrite(images / f"t{i}.png", sample.image[..., 0])
        write_labels(labels / f"t{i}.png", sample.labels)
    path = tmp_path / "bench.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "output": str(tmp_path / "out"),
                "data": {"root": "sample", "val_fraction": 0.2},
                "test": {"images": str(images), "labels": str(labels)},
                "architectures": [{"name": "Otsu", "baseline": "otsu"}],
            }
        )
    )
    run_benchmark(load_benchmark_config(path))
    payload = json.loads((tmp_path / "out" / "results.json").read_text())
    assert "3 test images" in payload["record"]["split"]
    assert str(images) in payload["record"]["split"]
    assert payload["rows"][0]["images_fluorescence"] == 3
