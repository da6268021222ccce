"""Benchmark files, the three-way split, shared budgets, test sets given by path, measurements."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from segmentation.benchmark.config import benchmark_from_dict, load_benchmark_config, slug
from segmentation.benchmark.measure import count_parameters, peak_cpu_mb, reset_peaks, training_cost
from segmentation.benchmark.runner import example_names, training_config
from segmentation.benchmark.testset import load_test_set
from segmentation.datasets.io import write_labels
from segmentation.datasets.rle import write_submission_csv
from segmentation.datasets.synthetic import synthetic_nuclei
from segmentation.training.config import ConfigError, DataConfig
from segmentation.training.data import split_samples, split_three

REPO = Path(__file__).resolve().parents[1]


def _raw(**changes):
    raw = {
        "data": {"root": "sample", "val_fraction": 0.2, "test_fraction": 0.3},
        "architectures": [{"name": "Otsu", "baseline": "otsu"}],
    }
    raw.update(changes)
    return raw


def _samples(n=30):
    modalities = ("fluorescence", "brightfield", "histology")
    samples = [synthetic_nuclei((64, 64), 4, seed=i, modality=modalities[i % 3]) for i in range(n)]
    for i, s in enumerate(samples):
        s.name = f"img{i:02d}"
    return samples


@pytest.mark.parametrize("name", ["benchmark_tiny.yaml", "benchmark_dsb2018_gpu.yaml"])
def test_shipped_benchmark_files_are_valid(name):
    config = load_benchmark_config(REPO / "configs" / name)
    assert [a.name for a in config.architectures][0] == "Otsu + watershed"
    assert all(Path(a.recipe).is_file() for a in config.architectures if a.recipe)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": 1}, "unknown key 'colour'"),
        ({"architectures": []}, "non-empty list"),
        ({"architectures": [{"name": "x"}]}, "give a 'recipe'"),
        ({"architectures": [{"name": "x", "baseline": "kmeans"}]}, "unknown baseline 'kmeans'"),
        ({"architectures": [{"name": "x", "baseline": "otsu", "recipe": "a.yaml"}]}, "baseline"),
        (
            {
                "architectures": [
                    {"name": "a", "baseline": "otsu"},
                    {"name": "a", "baseline": "otsu"},
                ]
            },
            "unique",
        ),
        ({"architectures": [{"name": "x", "baseline": "otsu", "epochs": 3}]}, "unknown key"),
        ({"data": {"root": "sample"}}, "no test images"),
        ({"data": {"val_fraction": 0.2}}, "'root'"),
        ({"data": {"root": "sample", "test_fraction": 0.1, "crops": 3}}, "unknown key data.crops"),
        ({"train": {"epoch": 3}}, "unknown key train.epoch"),
        (
            {
                "data": {"root": "sample", "test_fraction": 0.2},
                "test": {"images": "a", "labels": "b"},
            },
            "not both",
        ),
    ],
)
def test_bad_benchmark_files_name_the_problem(change, message):
    with pytest.raises(ConfigError, match=message):
        benchmark_from_dict(_raw(**change))


def test_missing_recipe_path_is_named(tmp_path):
    path = tmp_path / "b.yaml"
    path.write_text(
        "data: {root: sample, test_fraction: 0.3}\n"
        "architectures: [{name: U, recipe: nowhere.yaml}]\n"
    )
    with pytest.raises(ConfigError, match="nowhere.yaml"):
        load_benchmark_config(path)


def test_missing_data_root_is_named_before_any_work(tmp_path):
    from segmentation.benchmark.runner import make_split

    raw = _raw(data={"root": str(tmp_path / "none.npz"), "test_fraction": 0.2})
    with pytest.raises(FileNotFoundError, match="none.npz"):
        make_split(benchmark_from_dict(raw))


def test_cli_reports_a_bad_file_with_exit_status_2(tmp_path, capsys):
    from segmentation.cli import main

    path = tmp_path / "b.yaml"
    path.write_text("data: {root: sample}\narchitectures: [{name: O, baseline: otsu}]\n")
    assert main(["benchmark", str(path)]) == 2
    assert "no test images" in capsys.readouterr().err


def test_three_way_split_is_disjoint_and_keeps_the_two_way_hold_out():
    samples = _samples()
    data = DataConfig(root="synthetic", val_fraction=0.2, test_fraction=0.2, split_seed=3)
    train, val, test = split_three(samples, data)
    names = [{s.name for s in part} for part in (train, val, test)]
    assert not (names[0] & names[1]) and not (names[0] & names[2]) and not (names[1] & names[2])
    assert len(train) + len(val) + len(test) == len(samples)
    assert val and test
    # a model trained with val_fraction 0.4 and no test split never saw the test images
    old_train, old_val = split_samples(samples, DataConfig(val_fraction=0.4, split_seed=3))
    assert {s.name for s in old_train} == names[0]
    assert {s.name for s in old_val} == names[1] | names[2]
    # training excludes the test split
    assert {s.name for s in split_samples(samples, data)[0]} == names[0]
    again = split_three(list(reversed(samples)), data)
    assert [[s.name for s in p] for p in again] == [[s.name for s in p] for p in (train, val, test)]


def test_split_without_test_fraction_has_no_test_images():
    train, val, test = split_three(_samples(10), DataConfig(val_fraction=0.3))
    assert test == [] and len(train) + len(val) == 10


def test_too_few_held_out_images_for_two_splits():
    with pytest.raises(ValueError, match="both a validation and a test split"):
        split_three(_samples(3), DataConfig(val_fraction=0.1, test_fraction=0.1))


def test_test_fraction_must_leave_training_images():
    from segmentation.training.config import config_from_dict

    with pytest.raises(ConfigError, match="must be below 1"):
        config_from_dict({"family": "unet", "data": {"val_fraction": 0.5, "test_fraction": 0.5}})
    with pytest.raises(ConfigError, match="must be below 1"):
        benchmark_from_dict(
            _raw(data={"root": "sample", "val_fraction": 0.5, "test_fraction": 0.6})
        )


def test_shared_sections_and_budget_split_over_ensemble_members(tmp_path):
    raw = _raw(
        train={"epochs": 6, "max_minutes": 30.0, "lr": 0.01},
        architectures=[
            {
                "name": "ensemble",
                "recipe": str(REPO / "configs" / "tiny_unet.yaml"),
                "overrides": ["model.members=[{encoder: resnet18}, {encoder: resnet18}, {}]"],
            },
            {"name": "single", "recipe": str(REPO / "configs" / "tiny_unet.yaml")},
        ],
        seed=7,
    )
    config = benchmark_from_dict(raw)
    ensemble = training_config(config.architectures[0], config, tmp_path / "e")
    single = training_config(config.architectures[1], config, tmp_path / "s")
    assert len(ensemble.members()) == 3
    assert (ensemble.train.epochs, ensemble.train.max_minutes) == (2, 10.0)
    assert (single.train.epochs, single.train.max_minutes) == (6, 30.0)
    for recipe in (ensemble, single):
        assert recipe.data.test_fraction == 0.3 and recipe.data.val_fraction == 0.2
        assert recipe.train.seed == 7 and recipe.train.lr == 0.01
        assert recipe.train.tune_thresholds is False
    assert single.train.output == str(tmp_path / "s")


def test_example_names_take_each_image_type_in_turn():
    samples = _samples(9)
    from segmentation.datasets.image_types import image_type

    chosen = example_names(samples, 3)
    by_name = {s.name: s for s in samples}
    assert len({image_type(by_name[n].image) for n in chosen}) == 3
    assert len(example_names(samples, 50)) == 9


def test_slug_is_file_safe():
    assert slug("U-Net (single)") == "u-net_single"
    assert slug("FPN distance/angle") == "fpn_distance_angle"


def _write_pairs(tmp_path, samples):
    import imageio.v3 as iio

    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    for s in samples:
        iio.imwrite(images / f"{s.name}.png", s.image[..., 0] if s.image.shape[2] == 1 else s.image)
        write_labels(labels / f"{s.name}.png", s.labels)
    return images, labels


def test_test_set_from_label_folder_and_from_solution_csv(tmp_path):
    samples = _samples(3)
    images, labels = _write_pairs(tmp_path, samples)
    loaded = load_test_set(str(images), str(labels))
    assert [s.name for s in loaded] == [s.name for s in samples]
    for got, want in zip(loaded, samples, strict=True):
        np.testing.assert_array_equal(got.labels > 0, want.labels > 0)
    solution = tmp_path / "solution.csv"
    write_submission_csv(solution, {s.name: s.labels for s in samples})
    rows = list(csv.reader(solution.open()))
    with solution.open("w", newline="") as fh:  # a solution CSV has the image shapes
        writer = csv.writer(fh)
        writer.writerow([*rows[0], "Height", "Width"])
        for row in rows[1:]:
            writer.writerow([*row, 64, 64])
    from_csv = load_test_set(str(images), str(solution))
    assert [int(s.labels.max()) for s in from_csv] == [int(s.labels.max()) for s in loaded]


def test_test_set_with_unmatched_names_lists_them(tmp_path):
    samples = _samples(2)
    images, labels = _write_pairs(tmp_path, samples)
    (labels / f"{samples[0].name}.png").unlink()
    with pytest.raises(ValueError, match="without labels"):
        load_test_set(str(images), str(labels))
    with pytest.raises(FileNotFoundError, match="test.images"):
        load_test_set(str(tmp_path / "nowhere"), str(labels))


def test_training_cost_sums_member_logs(tmp_path):
    for member, rows in ((0, [(10.0, 256), (12.0, 256)]), (1, [(5.0, 128)])):
        folder = tmp_path / f"member_{member}"
        folder.mkdir()
        with (folder / "metrics.csv").open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["member", "epoch", "crops", "seconds"])
            for epoch, (seconds, crops) in enumerate(rows):
                writer.writerow([member, epoch + 1, crops, seconds])
    cost = training_cost(tmp_path / "model.pt")
    assert cost == {"train_seconds": 27.0, "train_crops": 640, "train_epochs": 3}
    assert training_cost(tmp_path / "elsewhere" / "model.pt") == {}


def test_peak_cpu_memory_sees_a_new_allocation():
    reset_peaks(torch.device("cpu"))
    before = peak_cpu_mb()
    block = np.ones(64 * 2**20 // 8)  # 64 MiB
    assert peak_cpu_mb() >= before + 60
    del block


def test_parameter_count_leaves_out_encoder_stages_that_never_run():
    from segmentation.models.registry import get_family

    family = get_family("unet")
    base = {"architecture": "unet", "encoder": "resnet18", "encoder_weights": None}
    full = family.build(base).eval()
    cut = family.build({**base, "encoder_depth": 4, "decoder_channels": [64, 32, 16, 8]}).eval()
    n_full = sum(p.numel() for p in full.parameters())
    assert count_parameters([full]) == n_full
    layer4 = sum(p.numel() for p in cut.encoder.layer4.parameters())
    assert layer4 > 8_000_000  # stored although encoder_depth 4 never runs it
    assert count_parameters([cut]) == sum(p.numel() for p in cut.parameters()) - layer4
    assert count_parameters([full, full]) == 2 * n_full


def test_only_keeps_the_named_architectures_in_file_order():
    from segmentation.benchmark.config import select_architectures

    config = benchmark_from_dict(
        _raw(
            architectures=[
                {"name": "A", "baseline": "otsu"},
                {"name": "B", "baseline": "otsu"},
                {"name": "C", "baseline": "otsu"},
            ]
        )
    )
    kept = select_architectures(config, ["C", "A"])
    assert [arch.name for arch in kept.architectures] == ["A", "C"]


def test_only_with_an_unknown_name_lists_the_file_names(tmp_path, capsys):
    from segmentation.cli import main

    path = tmp_path / "b.yaml"
    path.write_text(
        "data: {root: sample, test_fraction: 0.3}\narchitectures: [{name: Otsu, baseline: otsu}]\n"
    )
    assert main(["benchmark", str(path), "--only", "Otsu2"]) == 2
    err = capsys.readouterr().err
    assert "'Otsu2' is not an architecture" in err and "'Otsu'" in err
