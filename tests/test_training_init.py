"""``train.init``: fine-tuning starts from a model file's weights (the shipped default model or a
finished run), and a file that does not fit the recipe is refused before any training."""

from __future__ import annotations

import pytest
import torch

from segmentation.inference.default import default_model_path
from segmentation.modelfile import read_checkpoint
from segmentation.training.config import ConfigError
from segmentation.training.fit import fit
from tests.paths import CONFIG_DIR
from tests.tiny_recipes import tiny_config

# A step so small that the trained parameters are the initial ones to float32 precision.
STILL = ["train.lr=1e-12", "train.weight_decay=0", "train.warmup_epochs=0"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """The model file of a finished tiny U-Net run."""
    return fit(tiny_config(CONFIG_DIR / "tiny_unet.yaml", tmp_path_factory.mktemp("first")))


def _parameters(path):
    """Float parameters of member 0 of a model file (batch-norm statistics left out)."""
    state = read_checkpoint(path)["members"][0]["state_dict"]
    return {k: v.float() for k, v in state.items() if "running_" not in k and v.is_floating_point()}


@pytest.mark.slow  # ~15-30 s (the shipped network trains); init from a file: the tests below
def test_default_init_starts_from_the_shipped_weights(tmp_path):
    recipe = CONFIG_DIR / "default_unet.yaml"
    tuned = fit(tiny_config(recipe, tmp_path / "init", [*STILL, "train.init=default"]))
    fresh = fit(tiny_config(recipe, tmp_path / "fresh", STILL))
    shipped = _parameters(default_model_path())
    after, scratch = _parameters(tuned), _parameters(fresh)
    assert shipped  # the shipped model holds weights (pruned ones are absent, not zero)
    for name, value in shipped.items():
        torch.testing.assert_close(after[name], value, rtol=1e-3, atol=1e-4, msg=name)
    differs = [n for n, v in shipped.items() if v.numel() > 1 and not torch.allclose(scratch[n], v)]
    assert len(differs) > len(shipped) // 2  # without init the weights are a fresh start
    assert read_checkpoint(tuned)["recipe"]["train"]["init"] == "default"


def test_init_from_a_finished_run_continues_its_weights(tmp_path, finished_run):
    recipe = CONFIG_DIR / "tiny_unet.yaml"
    second = fit(tiny_config(recipe, tmp_path / "second", [*STILL, f"train.init={finished_run}"]))
    before, after = _parameters(finished_run), _parameters(second)
    for name, value in before.items():
        torch.testing.assert_close(after[name], value, rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize(
    "recipe, extra, message",
    [
        ("tiny_fpn.yaml", [], "is a unet model and this recipe trains fpn"),
        ("tiny_unet.yaml", ["model.decoder_channels=[8,8,8]"], "model.decoder_channels"),
        ("tiny_unet.yaml", ["train.init=nowhere.pt"], "'nowhere.pt' not found"),
    ],
)
def test_a_file_that_does_not_fit_is_refused_before_training(
    tmp_path, finished_run, recipe, extra, message
):
    init = [f"train.init={finished_run}", *extra]
    config = tiny_config(CONFIG_DIR / recipe, tmp_path / "second", init)
    rows = []
    with pytest.raises(ConfigError, match=message):
        fit(config, callbacks=[rows.append])
    assert rows == []  # nothing trained


def test_init_route_starts_from_the_routes_network(tmp_path):
    recipe = CONFIG_DIR / "default_unet.yaml"
    extra = [*STILL, "train.init=default", "train.init_route=stained"]
    tuned = fit(tiny_config(recipe, tmp_path / "route", extra))
    route = read_checkpoint(default_model_path())["routes"]["stained"]["members"][0]
    main = _parameters(default_model_path())
    after = _parameters(tuned)
    wanted = {k: v.float() for k, v in route["state_dict"].items() if k in main}
    for name, value in wanted.items():
        torch.testing.assert_close(after[name], value, rtol=1e-3, atol=1e-4, msg=name)
    assert any(not torch.equal(wanted[n], main[n]) for n in wanted if wanted[n].numel() > 1)


def test_init_route_that_the_file_lacks_is_refused(tmp_path, finished_run):
    extra = [f"train.init={finished_run}", "train.init_route=stained"]
    config = tiny_config(CONFIG_DIR / "tiny_unet.yaml", tmp_path / "r", extra)
    with pytest.raises(ConfigError, match="has no 'stained' route .it has no routes"):
        fit(config)


def test_init_route_without_init_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="set train.init"):
        tiny_config(CONFIG_DIR / "tiny_unet.yaml", tmp_path / "r", ["train.init_route=stained"])
