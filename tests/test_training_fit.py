"""The trainer end to end on tiny CPU recipes: smoke runs, resume, checkpoints, DDP, segment()."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from segmentation import load_model, segment
from segmentation.modelfile import atomic_save, read_checkpoint
from segmentation.training.config import load_config
from segmentation.training.fit import fit
from tests.paths import CONFIG_DIR, REPO
from tests.paths import RECIPES as CONFIGS
from tests.tiny_recipes import TINY, tiny_config

# the full-size Mask R-CNN and ensemble recipes take 8-19 s; their tiny recipes run by default
SLOW_RECIPES = ("mask_rcnn", "unet_ensemble", "fpn_distance_angle")  # tiny_fpn covers the family


@pytest.mark.parametrize(
    "path",
    [pytest.param(p, marks=pytest.mark.slow) if p.stem in SLOW_RECIPES else p for p in CONFIGS],
    ids=[p.stem for p in CONFIGS],
)
def test_two_step_smoke_run_per_recipe(path, tmp_path):
    rows = []
    config = tiny_config(path, tmp_path)
    model_path = fit(config, callbacks=[rows.append])
    n_members = len(config.members())
    assert [r["member"] for r in rows] == list(range(n_members))  # one epoch per member
    assert all(np.isfinite(r["total"]) and r["crops"] == 4 for r in rows)  # 2 steps of 2 crops
    ckpt = read_checkpoint(model_path)
    assert ckpt["family"] == yaml.safe_load(path.read_text())["family"]
    assert len(ckpt["members"]) == n_members
    assert {"val_score", "val_f1_0.7"} <= set(ckpt["metrics"])
    assert (tmp_path / "member_0" / "metrics.csv").exists()


def _weights(path: Path) -> dict:
    return read_checkpoint(path)["members"][0]["state_dict"]


def test_resume_reproduces_uninterrupted_run(tmp_path):
    recipe = CONFIG_DIR / "tiny_unet.yaml"
    extra = ["train.epochs=2", "data.samples_per_epoch=4"]
    fit(tiny_config(recipe, tmp_path / "full", extra))

    class Interrupt(Exception):
        pass

    def stop_after_first_epoch(row):
        if row["epoch"] == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        fit(tiny_config(recipe, tmp_path / "cut", extra), callbacks=[stop_after_first_epoch])
    assert (
        read_checkpoint(tmp_path / "cut" / "member_0" / "last.pt")["training_state"]["epoch"] == 0
    )
    fit(tiny_config(recipe, tmp_path / "cut", extra), resume=True)
    full = _weights(tmp_path / "full" / "member_0" / "last.pt")
    resumed = _weights(tmp_path / "cut" / "member_0" / "last.pt")
    for name, value in full.items():
        if value.is_floating_point():
            torch.testing.assert_close(resumed[name], value, rtol=1e-4, atol=1e-5, msg=name)


def test_killed_write_leaves_previous_checkpoint_loadable(tmp_path, monkeypatch):
    model_path = fit(tiny_config(CONFIG_DIR / "tiny_unet.yaml", tmp_path))
    before = read_checkpoint(model_path)

    def dying_save(obj, f):
        f.write(b"partial bytes")
        raise KeyboardInterrupt("killed while saving")

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        atomic_save({"format": "junk"}, model_path)
    monkeypatch.undo()
    after = read_checkpoint(model_path)
    assert after["metrics"] == before["metrics"]
    assert not [p for p in model_path.parent.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize(
    "recipe",
    ["tiny_unet", pytest.param("tiny_fpn", marks=pytest.mark.slow)]
    + [pytest.param("tiny_maskrcnn", marks=pytest.mark.slow)],  # ~4 s each; fit smoke runs above
)
def test_load_model_and_segment(recipe, tmp_path):
    model_path = fit(tiny_config(CONFIG_DIR / f"{recipe}.yaml", tmp_path))
    assert load_model(model_path).family.name == recipe.removeprefix("tiny_")
    model = load_model(model_path, device="cpu")
    image = np.random.default_rng(0).integers(0, 255, (45, 70, 4), dtype=np.uint8)  # RGBA, odd size
    labels = segment(image, model=model)
    assert labels.shape == (45, 70) and labels.dtype == np.int32
    assert segment(image[..., 0], model=str(model_path), device="cpu").shape == (45, 70)


def test_segment_rejects_bad_inputs(tmp_path):
    model_path = fit(tiny_config(CONFIG_DIR / "tiny_unet.yaml", tmp_path))
    model = load_model(model_path, device="cpu")
    with pytest.raises(ValueError, match="3-D stacks"):
        segment(np.zeros((5, 32, 32, 3), np.uint8), model=model)
    with pytest.raises(ValueError, match="NaN"):
        segment(np.full((32, 32), np.nan, np.float32), model=model)
    with pytest.raises(TypeError, match="model must be a model file path"):
        segment(np.zeros((32, 32), np.uint8), model=[model])
    with pytest.raises(FileNotFoundError, match="not found"):
        load_model(tmp_path / "missing.pt")
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        load_model(empty)


def test_cli_train_reports_bad_recipe(tmp_path, capsys):
    from segmentation.cli import main

    recipe = tmp_path / "bad.yaml"
    recipe.write_text("family: unet\ntrain: {epochz: 1}\n")
    assert main(["train", str(recipe)]) == 2
    assert "train.epochz" in capsys.readouterr().err


@pytest.mark.slow  # two processes: ~22 s
def test_two_process_ddp_keeps_replicas_identical(tmp_path):
    recipe = tmp_path / "ddp.yaml"
    config = load_config(CONFIG_DIR / "tiny_unet.yaml")
    raw = config.to_dict()
    recipe.write_text(yaml.safe_dump(raw))
    overrides = [*TINY, "data.samples_per_epoch=8", "train.epochs=2", f"train.output={tmp_path}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
        "--master_port=29517", "-m", "segmentation", "train", str(recipe), *overrides,
    ]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    checksums = json.loads((tmp_path / "member_0" / "ddp_replicas.json").read_text())["checksums"]
    assert len(checksums) == 2
    assert checksums[0] == pytest.approx(checksums[1], rel=0, abs=0)
    assert (tmp_path / "model.pt").exists()


def test_loading_never_fetches_published_weights(tmp_path, monkeypatch):
    """A recipe that started from published weights reloads from the file alone, offline."""
    import socket

    from segmentation.modelfile import make_checkpoint
    from segmentation.models.registry import get_family

    config = {"encoder": "resnet18", "encoder_depth": 3, "decoder_channels": [16, 8, 4]}
    net = get_family("unet").build(config)
    ckpt = make_checkpoint(
        family="unet",
        members=[
            {"config": {**config, "encoder_weights": "imagenet"}, "state_dict": net.state_dict()}
        ],
        thresholds={},
        metrics={},
        recipe={},
    )
    atomic_save(ckpt, tmp_path / "m.pt")

    def no_network(*args, **kwargs):
        raise AssertionError("loading a model file tried to open a network connection")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    model = load_model(tmp_path / "m.pt", device="cpu")
    assert segment(np.zeros((40, 40), np.uint8), model=model).shape == (40, 40)
