"""The GPU run script, end to end on the CPU with the bundled sample and a budget of seconds
(what `scripts/device_run.sh` does on a lent GPU), and the device kit's pieces."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from segmentation import load_model, segment
from segmentation.datasets.sample_data import load_sample
from segmentation.training.config import ConfigError, config_from_dict
from tests.paths import REPO


@pytest.mark.slow
def test_run_script_trains_scores_and_writes_its_outputs(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "OUT": str(out), "PYTHON": sys.executable}
    command = [
        "bash",
        str(REPO / "scripts/device_run.sh"),
        "configs/tiny_unet.yaml",
        "--minutes",
        "0.05",
        "--measure",
        "0.3",
        "--name",
        "ci",
        "--run-dir",
        str(tmp_path / "run"),
        "data.pipeline=tensor",
        "data.val_fraction=0.3",
        "data.test_fraction=0.2",
        "data.crop_size=64",
        "data.samples_per_epoch=16",
        "train.epochs=2",
        "train.tune_thresholds=false",
    ]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert {p.name for p in out.iterdir()} == {"ci.pt", "ci.json", "ci.log"}
    record = json.loads((out / "ci.json").read_text())
    th = record["throughput"]
    assert th["loader_crops_per_s"] > 0 and th["step_crops_per_s"] > 0
    assert th["loader_over_step"] == pytest.approx(
        th["loader_crops_per_s"] / th["step_crops_per_s"]
    )
    assert record["train_crops"] == sum(int(r["crops"]) for r in record["epochs"]) > 0
    assert 0 <= record["loader_wait_share"] <= 1
    assert 0 <= record["validation"]["val_score"] <= 1
    assert record["test"]["all"]["images"] == 2 and 0 <= record["test"]["all"]["score"] <= 1
    assert record["model_file_mib"] < 16
    assert "validation score" in (out / "ci.log").read_text()
    model = load_model(out / "ci.pt", device="cpu")
    assert str(next(model.members[0].parameters()).dtype) == "torch.float32"  # loads as float32
    labels = segment(load_sample()[0].image, model)
    assert labels.dtype == np.int32 and labels.shape == load_sample()[0].image.shape[:2]


def test_run_script_names_the_kit_when_packages_are_missing(tmp_path):
    fake = tmp_path / "python3"  # an interpreter without segmentation-models-pytorch
    fake.write_text('#!/bin/sh\n[ "$1" = "-c" ] && exit 1\nexec true\n')
    fake.chmod(0o755)
    env = {**os.environ, "OUT": str(tmp_path / "o"), "PYTHON": str(fake)}
    script = tmp_path / "repo" / "scripts"
    script.mkdir(parents=True)
    for name in ("device_run.sh", "device_env.sh"):
        (script / name).write_text((REPO / "scripts" / name).read_text())
    done = subprocess.run(
        ["bash", str(script / "device_run.sh"), "x.yaml", "--minutes", "1"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1 and "make device-kit" in done.stderr


def test_kit_pins_every_wheel_it_downloads():
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import device_kit
    finally:
        sys.path.pop(0)
    pins = device_kit.pinned_versions()
    assert all(name in pins for name in device_kit.WHEELS)
    assert pins["segmentation_models_pytorch"]


def _raw(**data):
    return {"family": "unet", "data": {"root": "sample", **data}}


def test_tensor_pipeline_options_are_validated():
    config = config_from_dict(_raw(pipeline="tensor", extra_train=["sample"], type_balance=0.5))
    assert config.data.pipeline == "tensor" and config.data.extra_train == ["sample"]
    with pytest.raises(ConfigError, match="data.pipeline"):
        config_from_dict(_raw(pipeline="gpu"))
    with pytest.raises(ConfigError, match="plain maps"):
        config_from_dict({**_raw(pipeline="tensor"), "family": "fpn"})
    with pytest.raises(ConfigError, match="extra_train"):
        config_from_dict(_raw(extra_train="sample"))
    with pytest.raises(ConfigError, match=r"extra_train\[0\]"):
        config_from_dict(_raw(extra_train=[3]))
    with pytest.raises(ConfigError, match="type_balance"):
        config_from_dict(_raw(type_balance=1.5))


def test_extra_training_data_joins_training_only(tmp_path):
    from segmentation.datasets.io import write_labels
    from segmentation.datasets.synthetic import synthetic_nuclei
    from segmentation.training.data import (
        load_extra_samples,
        load_samples,
        split_samples,
        training_split,
    )

    folder = tmp_path / "extra"
    (folder / "images").mkdir(parents=True)
    (folder / "labels").mkdir()
    import tifffile

    for i in range(2):
        s = synthetic_nuclei((64, 64), 5, seed=i)
        tifffile.imwrite(folder / "images" / f"e{i}.tif", s.image[..., 0])
        write_labels(folder / "labels" / f"e{i}.tif", s.labels)
    config = config_from_dict(_raw(extra_train=[str(folder)], val_fraction=0.3))
    samples = load_samples(config.data)
    train, val = split_samples(samples, config.data)
    extra = load_extra_samples(config.data)
    assert [s.name for s in extra] == ["e0", "e1"]
    assert all(s.labels is not None and s.labels.max() > 0 for s in extra)
    assert not {s.name for s in extra} & {s.name for s in train + val}
    joined, val2, test = training_split(config.data)  # what the trainer trains on
    assert [s.name for s in joined] == [s.name for s in train] + ["e0", "e1"]
    assert [s.name for s in val2] == [s.name for s in val] and not test
