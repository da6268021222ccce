"""Recipes: validation errors name the key; overrides; every shipped recipe parses."""

import pytest

from segmentation.training.config import (
    ConfigError,
    apply_overrides,
    config_from_dict,
    load_config,
)
from tests.paths import RECIPES as CONFIGS


def test_unknown_key_is_named():
    with pytest.raises(ConfigError, match=r"train\.epoch\b"):
        config_from_dict({"family": "unet", "train": {"epoch": 3}})


def test_wrong_type_is_named():
    with pytest.raises(ConfigError, match=r"train\.batch_size: expected int"):
        config_from_dict({"family": "unet", "train": {"batch_size": "eight"}})


def test_bool_is_not_an_int():
    with pytest.raises(ConfigError, match="train.epochs"):
        config_from_dict({"family": "unet", "train": {"epochs": True}})


def test_unknown_family_lists_valid_ones():
    with pytest.raises(ConfigError, match="unet, fpn, maskrcnn|fpn, maskrcnn, unet"):
        config_from_dict({"family": "resnet"})


def test_bad_choice_and_crop():
    with pytest.raises(ConfigError, match="train.optimizer"):
        config_from_dict({"family": "unet", "train": {"optimizer": "adam"}})
    with pytest.raises(ConfigError, match="multiple of 32"):
        config_from_dict({"family": "unet", "data": {"crop_size": 100}})


def test_missing_data_path_is_named(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("family: unet\ndata: {root: /no/such/folder}\n")
    with pytest.raises(ConfigError, match=r"data\.root: path '/no/such/folder' does not exist"):
        load_config(recipe)


def test_overrides_parse_yaml_values():
    raw = apply_overrides(
        {"family": "unet"}, ["train.epochs=3", "train.lr=1e-4", "model.encoder=x"]
    )
    config = config_from_dict(raw)
    assert config.train.epochs == 3
    assert config.train.lr == pytest.approx(1e-4)
    assert config.model["encoder"] == "x"
    with pytest.raises(ConfigError, match="section.key=value"):
        apply_overrides({}, ["epochs"])


def test_int_widens_to_float_and_none_allowed():
    config = config_from_dict({"family": "fpn", "train": {"lr": 1, "grad_clip": None}})
    assert isinstance(config.train.lr, float) and config.train.grad_clip is None


def test_members_merge_base_and_overrides():
    config = config_from_dict(
        {"family": "unet", "model": {"encoder_weights": None, "members": [{"encoder": "a"}, {}]}}
    )
    assert config.members() == [
        {"encoder_weights": None, "encoder": "a"},
        {"encoder_weights": None},
    ]


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shipped_recipes_validate(path):
    raw = apply_overrides(__import__("yaml").safe_load(path.read_text()), ["data.root=sample"])
    config = config_from_dict(raw)
    assert config.members()
