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


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.val_every=0", r"train\.val_every must be at least 1, got 0"),
        ("train.batch_size=0", r"train\.batch_size must be at least 1, got 0"),
        ("train.epochs=-1", r"train\.epochs must be at least 1"),
        ("data.samples_per_epoch=0", r"data\.samples_per_epoch must be at least 1"),
        ("train.lr=0", r"train\.lr must be above 0"),
        ("train.grad_clip=0", r"train\.grad_clip must be above 0.*null turns clipping off"),
    ],
)
def test_values_that_would_divide_by_zero_or_never_train_are_named(override, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict(apply_overrides({"family": "unet"}, [override]))


def test_malformed_yaml_names_the_file_and_line(tmp_path):
    recipe = tmp_path / "broken.yaml"
    recipe.write_text("family: unet\ntrain:\n  epochs: 3\n  lr 0.1\n")
    with pytest.raises(ConfigError, match=r"broken.yaml' is not valid YAML \(line 5, column 1"):
        load_config(recipe)
    with pytest.raises(ConfigError, match=r"override 'train.lr=\[1': the value '\[1' is not valid"):
        load_config(CONFIGS[0], ["train.lr=[1"])


def test_a_recipe_whose_top_level_is_a_list_is_refused(tmp_path):
    recipe = tmp_path / "list.yaml"
    recipe.write_text("- family: unet\n- train: {epochs: 1}\n")
    with pytest.raises(ConfigError, match=r"list.yaml' holds a list at its top level.*family:"):
        load_config(recipe, ["train.epochs=2"])


def test_cli_train_reports_malformed_yaml_without_a_traceback(tmp_path, capsys):
    from segmentation.cli import main

    recipe = tmp_path / "broken.yaml"
    recipe.write_text("family: unet\ntrain: {epochs: 3\n")
    assert main(["train", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert "broken.yaml' is not valid YAML" in err and "Traceback" not in err
