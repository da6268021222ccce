"""The default model shipped inside the package: offline loading, segment() without a model, its
model card, the CLI and demo on it, and the checkpoint helpers and script that ship it."""

import importlib.util
import socket

import numpy as np
import pytest
import torch

from segmentation.baselines import otsu_watershed
from segmentation.cli import main
from segmentation.datasets.sample_data import load_sample
from segmentation.evaluation.dataset import evaluate_dataset
from segmentation.inference import (
    SegmentationModel,
    default,
    default_model_path,
    load_default_model,
    load_model,
    model_card_summary,
    segment,
    segment_files,
)
from segmentation.modelfile import (
    MODEL_CARD_KEYS,
    atomic_save,
    check_model_card,
    drop_unused_weights,
    half_precision,
    make_checkpoint,
    read_checkpoint,
)
from segmentation.modelfile.checksum import weights_sha256
from segmentation.models.registry import get_family
from tests.paths import REPO

SMALL_UNET = {"encoder": "resnet18", "encoder_depth": 3, "decoder_channels": [16, 8, 8]}


@pytest.fixture(scope="module")
def samples():
    return load_sample()


@pytest.fixture(scope="module")
def default_predictions(samples):
    model = load_default_model("cpu")
    return [segment(s.image, model) for s in samples]


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No network (connect/create_connection raise), an empty TORCH_HOME, an empty model cache."""

    def refuse(*args, **kwargs):
        raise OSError("network access attempted in an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(default, "_CACHE", {})


def test_the_shipped_file_exists_and_is_small():
    path = default_model_path()
    assert path == REPO / "segmentation" / "weights" / "default_unet.pt"
    assert path.is_file()
    assert path.stat().st_size <= 25e6  # 25 MB, the limit scripts/ship_default_model.py checks


def test_segment_without_a_model_works_offline(offline, samples, tmp_path):
    sample = next(s for s in samples if s.name.startswith("fluo-large"))
    labels = segment(sample.image, device="cpu")
    assert labels.shape == sample.image.shape[:2] and labels.dtype == np.int32
    assert labels.max() > 0  # nuclei found
    assert not list((tmp_path / "torch_home").rglob("*"))  # nothing fetched or cached
    (result,) = segment_files([sample.image], device="cpu")
    np.testing.assert_array_equal(result.labels, labels)


def test_the_model_card_is_complete(samples):
    card = load_default_model("cpu").model_card
    assert set(MODEL_CARD_KEYS) <= set(card)
    check_model_card(card, complete=True)
    assert card["recipe"].startswith("configs/") and (REPO / card["recipe"]).is_file()
    assert "stage1_train" in card["data"] and card["licence"]
    split = card["split"]
    assert split["validation_images"] == len(split["validation_ids"]) > 0
    for dtype in ("float32", "float16"):
        assert 0.0 <= card["validation"][dtype]["score"] <= 1.0
        assert 0.0 <= card["validation"][dtype]["f1_0.7"] <= 1.0
    assert card["validation"]["float32"]["score"] - card["validation"]["float16"]["score"] <= 0.002
    assert card["baseline"]["name"] == "Otsu + watershed" and "score" in card["baseline"]
    assert card["weights_dtype"] == "float16" and card["parameters"] > 0
    assert card["training"]["machine"] and card["retrain"]
    summary = model_card_summary(card)
    assert card["name"] in summary and f"{card['validation']['float16']['score']:.3f}" in summary


def test_no_model_means_the_default_model(samples, default_predictions):
    sample = samples[0]
    np.testing.assert_array_equal(segment(sample.image, device="cpu"), default_predictions[0])
    np.testing.assert_array_equal(
        segment(sample.image), segment(sample.image, load_default_model())
    )


def test_the_default_model_beats_the_otsu_baseline_on_the_sample(samples, default_predictions):
    model_score = evaluate_dataset(
        [(s.labels, p) for s, p in zip(samples, default_predictions, strict=True)]
    ).mean_score
    otsu_score = evaluate_dataset([(s.labels, otsu_watershed(s.image)) for s in samples]).mean_score
    assert model_score > otsu_score, f"default model {model_score:.3f} vs Otsu {otsu_score:.3f}"


def test_the_model_is_loaded_once_per_device_and_file(monkeypatch):
    monkeypatch.setattr(default, "_CACHE", {})
    first = load_default_model("cpu")
    assert load_default_model("cpu") is first
    assert load_default_model(torch.device("cpu")) is first


def test_a_missing_default_model_says_how_to_restore_it(monkeypatch, tmp_path):
    missing = tmp_path / "weights" / "default_unet.pt"
    monkeypatch.setattr(default, "default_model_path", lambda: missing)
    with pytest.raises(FileNotFoundError, match="reinstall the package") as err:
        segment(np.zeros((64, 64), np.uint8))
    assert str(missing) in str(err.value) and "ship_default_model.py" in str(err.value)


def test_cli_segment_without_model(samples, default_predictions, tmp_path, capsys):
    import imageio.v3 as iio

    from segmentation.datasets.io import read_labels

    image = tmp_path / "in" / "cells.png"
    image.parent.mkdir()
    iio.imwrite(image, samples[0].image)
    out = tmp_path / "out"
    assert main(["segment", str(image), "--output", str(out), "--no-progress"]) == 0
    np.testing.assert_array_equal(read_labels(out / "cells_labels.tif"), default_predictions[0])
    assert (out / "cells_overlay.png").is_file() and (out / "cells_nuclei.csv").is_file()
    assert "cells.png:" in capsys.readouterr().out


def test_demo_uses_the_default_model(tmp_path, capsys, samples):
    assert main(["demo", "--output", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "overall" in text
    assert load_default_model("cpu").model_card["name"] in text  # the card's one-line summary
    assert sum(s.name in text for s in samples) == len(samples)
    assert len(list(tmp_path.glob("*_overlay.png"))) == len(samples)
    assert not (tmp_path / "model").exists()  # nothing trained


def test_demo_minutes_needs_train(tmp_path, capsys):
    assert main(["demo", "--output", str(tmp_path), "--minutes", "1"]) == 2
    assert "--train" in capsys.readouterr().err


# --- the helpers that ship it -------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_checkpoint():
    torch.manual_seed(0)
    net = get_family("unet").build(SMALL_UNET)
    return make_checkpoint(
        family="unet",
        members=[{"config": SMALL_UNET, "state_dict": net.state_dict()}],
        thresholds={},
        metrics={"val_score": 0.1},
        recipe={"family": "unet", "model": dict(SMALL_UNET), "data": {"val_fraction": 0.3}},
    )


def test_half_precision_casts_floats_and_leaves_its_input(small_checkpoint):
    before = {k: v.clone() for k, v in small_checkpoint["members"][0]["state_dict"].items()}
    half = half_precision(small_checkpoint)
    state = half["members"][0]["state_dict"]
    assert {v.dtype for v in state.values() if v.is_floating_point()} == {torch.float16}
    assert state["encoder.bn1.num_batches_tracked"].dtype == torch.int64
    assert half["training_state"] is None
    for key, value in small_checkpoint["members"][0]["state_dict"].items():
        assert torch.equal(value, before[key]) and value.dtype == before[key].dtype


def test_unused_weights_are_dropped_and_the_outputs_unchanged(small_checkpoint, tmp_path):
    pruned = drop_unused_weights(small_checkpoint)
    member = pruned["members"][0]
    unused = member["unused_keys"]  # encoder_depth 3: smp keeps the two last resnet stages
    assert {k.split(".")[1] for k in unused} == {"layer3", "layer4"}
    assert not set(unused) & set(member["state_dict"])
    assert "unused_keys" not in small_checkpoint["members"][0]  # input untouched
    again = drop_unused_weights(pruned)["members"][0]  # pruning a pruned model changes nothing
    assert again["unused_keys"] == unused and set(again["state_dict"]) == set(member["state_dict"])
    image = np.random.default_rng(0).integers(0, 255, (96, 96), dtype=np.uint8)
    full = SegmentationModel.from_checkpoint(small_checkpoint, "cpu")
    small = load_model(atomic_save(pruned, tmp_path / "pruned.pt"), "cpu")
    assert torch.equal(
        full.members[0](torch.ones(1, 3, 64, 64)), small.members[0](torch.ones(1, 3, 64, 64))
    )
    np.testing.assert_array_equal(segment(image, full), segment(image, small))
    member["state_dict"] = dict(member["state_dict"])
    del member["state_dict"]["encoder.conv1.weight"]  # a used weight: the file is damaged
    with pytest.raises(ValueError, match="damaged"):
        SegmentationModel.from_checkpoint(pruned, "cpu")


def test_model_cards_hold_plain_values_only(tmp_path, small_checkpoint):
    with pytest.raises(ValueError, match="model_card.scores.f1"):
        check_model_card({"scores": {"f1": torch.tensor(0.5)}})
    with pytest.raises(TypeError, match="must be a dict"):
        check_model_card(["name"])
    with pytest.raises(ValueError, match="lacks the keys"):
        check_model_card({"name": "x"}, complete=True)
    card = {"name": "m", "validation": {"float16": {"score": 0.5, "f1_0.7": 0.6}}}
    path = atomic_save({**small_checkpoint, "model_card": card}, tmp_path / "m.pt")
    assert load_model(path, "cpu").model_card == card
    assert load_model(atomic_save(small_checkpoint, tmp_path / "n.pt"), "cpu").model_card == {}


def _ship_script():
    spec = importlib.util.spec_from_file_location("ship", REPO / "scripts/ship_default_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ship_script_scores_checks_and_writes_a_card(small_checkpoint, tmp_path, capsys):
    ship = _ship_script()
    source = atomic_save(small_checkpoint, tmp_path / "run" / "model.pt")
    (tmp_path / "run" / "member_0").mkdir()
    (tmp_path / "run" / "member_0" / "metrics.csv").write_text(
        "member,epoch,crops,seconds\n0,1,64,10.5\n0,2,64,11.0\n"
    )
    recipe = tmp_path / "small.yaml"
    recipe.write_text(
        "# A small recipe. Retrain it:\n#   segmentation train small.yaml\n"
        "#   python scripts/ship_default_model.py run/model.pt\nfamily: unet\n"
    )
    out = tmp_path / "weights" / "default_unet.pt"
    args = [str(source), "--data", "sample", "--output", str(out), "--recipe", str(recipe)]
    assert ship.main(args) == 0
    shipped = read_checkpoint(out)
    assert shipped["weights_sha256"] == weights_sha256(shipped["members"])  # verified at load
    card = shipped["model_card"]
    assert set(MODEL_CARD_KEYS) <= set(card)
    assert card["split"]["validation_images"] == 4 and card["split"]["train_images"] == 6
    assert card["data"].startswith("DSB2018 stage1_train (10 images), 6 train / 4 validation")
    assert card["retrain"] == [
        "segmentation train small.yaml",
        "python scripts/ship_default_model.py run/model.pt",
    ]
    assert card["training"]["crops"] == 128 and card["training"]["seconds"] == 21.5
    assert card["parameters"] < sum(
        v.numel() for v in small_checkpoint["members"][0]["state_dict"].values()
    )
    assert shipped["members"][0]["unused_keys"] and shipped["training_state"] is None
    assert out.stat().st_size < (tmp_path / "run" / "model.pt").stat().st_size / 4
    assert "wrote" in capsys.readouterr().out

    assert ship.main([*args, "--max-mb", "0.001"]) == 2  # too large: refused
    assert "over --max-mb" in capsys.readouterr().err
    better = dict(card, validation={"float16": {"score": 2.0, "f1_0.7": 1.0}})
    atomic_save({**shipped, "model_card": better}, out)
    assert ship.main(args) == 2  # would replace a better model on the same split
    assert "--force" in capsys.readouterr().err
    assert ship.main([*args, "--force", "--max-loss", "-1"]) == 2  # any float16 loss refused
    assert "float16 loses" in capsys.readouterr().err
    assert read_checkpoint(out)["model_card"]["validation"]["float16"]["score"] == 2.0  # untouched


def test_ship_script_refuses_a_recipe_without_validation_split(small_checkpoint, tmp_path, capsys):
    ckpt = {**small_checkpoint, "recipe": {"data": {"val_fraction": 0.0}}}
    source = atomic_save(ckpt, tmp_path / "model.pt")
    args = [str(source), "--data", "sample", "--output", str(tmp_path / "out.pt")]
    assert _ship_script().main(args) == 2
    assert "val_fraction 0" in capsys.readouterr().err
    assert not (tmp_path / "out.pt").exists()


@pytest.mark.slow  # ~8 s; the refusal on held-out sources below is the same rule
def test_ship_script_compares_on_held_out_groups(small_checkpoint, tmp_path, monkeypatch, capsys):
    from segmentation.datasets.sample_data import load_sample

    ship = _ship_script()
    recipe = {
        **small_checkpoint["recipe"],
        "data": {"val_fraction": 0.3, "test_fraction": 0.3, "split": "group", "groups": None},
    }
    source = atomic_save({**small_checkpoint, "recipe": recipe}, tmp_path / "run" / "model.pt")
    out = tmp_path / "weights" / "default_unet.pt"
    args = [
        str(source),
        "--data",
        "sample",
        "--output",
        str(out),
        "--recipe",
        "configs/tiny_unet.yaml",
    ]
    assert ship.main(args) == 0
    card = read_checkpoint(out)["model_card"]
    held = card["held_out_groups"]
    assert card["split"]["split"] == "group" and held["images"] == card["split"]["test_images"] > 0
    assert set(held) >= {"float16", "baseline", "test_ids"} and "previous" not in held
    assert held["float16"]["all"]["images"] == held["images"]
    assert not set(held["test_ids"]) & set(card["split"]["validation_ids"])
    assert "held-out acquisition groups" in capsys.readouterr().out

    # a shipped model that is perfect on the held-out groups: the new one is refused
    truth = {s.image.tobytes(): s.labels for s in load_sample()}

    class Perfect:
        def segment(self, image):
            return truth[image.tobytes()]

    _previous_model_is(ship, Perfect, monkeypatch)
    assert ship.main(args) == 2
    assert "scores higher" in capsys.readouterr().err
    assert ship.main([*args, "--force"]) == 0  # --force replaces it anyway


@pytest.mark.slow  # ~11 s; the route itself: tests/test_inference_routes.py
def test_ship_script_adds_a_network_for_stained_tissue(small_checkpoint, tmp_path, capsys):
    ship = _ship_script()
    data = {"val_fraction": 0.3, "test_fraction": 0.3, "split": "group", "groups": None}
    recipe = {**small_checkpoint["recipe"], "data": {**data, "extra_train": ["data/bbbc039"]}}
    main_file = atomic_save({**small_checkpoint, "recipe": recipe}, tmp_path / "run" / "model.pt")
    torch.manual_seed(1)
    weights = get_family("unet").build(SMALL_UNET).state_dict()
    route_recipe = {
        **recipe,
        "data": {**data, "stained_view": "hematoxylin"},
        "train": {"init": "default"},
    }
    route = make_checkpoint(
        family="unet",
        members=[{"config": SMALL_UNET, "state_dict": weights}],
        thresholds={"mask": 0.4},
        metrics={"val_score": 0.2},
        recipe=route_recipe,
    )
    route_file = atomic_save(route, tmp_path / "stained" / "model.pt")
    out = tmp_path / "weights" / "default_unet.pt"
    args = [str(main_file), "--data", "sample", "--output", str(out)]
    args += ["--recipe", "configs/tiny_unet.yaml", "--stained-machine", "a laptop"]
    kept = ["--stained", str(route_file), "--stained-thresholds", "keep"]
    assert ship.main([*args, *kept]) == 0
    assert load_model(out, "cpu").routes["stained"].thresholds.mask == 0.4  # as trained
    assert ship.main([*args, "--stained", str(route_file), "--force"]) == 0
    model = load_model(out, "cpu")
    assert set(model.routes) == {"stained"}
    tuned = model.model_card["routes"]["stained"]["thresholds_tuned"]
    assert tuned["images"] >= 1 and tuned["score"] >= tuned["score_before"]
    assert "tuned on" in capsys.readouterr().out
    assert read_checkpoint(out)["routes"]["stained"]["members"][0]["unused_keys"]  # pruned too
    assert " + BBBC039 (training only), " in model.model_card["data"]  # extra data, licence
    assert model.model_card["licence"].endswith(
        "BBBC039 v1 images and masks (Broad Institute), CC0 1.0"
    )
    entry = model.model_card["routes"]["stained"]
    assert entry["view"] == "hematoxylin" and entry["init"] == "default"
    assert entry["training"]["machine"] == "a laptop"
    assert "stained      a network of its own, seeing hematoxylin" in str(model.model_card)
    assert "stained images: a network of their own" in model_card_summary(model.model_card)
    capsys.readouterr()
    # a network for stained tissue trained on another split may have seen the held-out images
    moved = {**route_recipe, "data": {**route_recipe["data"], "split_seed": 5}}
    other = atomic_save({**route, "recipe": moved}, tmp_path / "other" / "model.pt")
    assert ship.main([*args, "--stained", str(other), "--force"]) == 2
    assert "another split (data.['split_seed'] differ)" in capsys.readouterr().err


@pytest.mark.slow  # ~12-23 s; the ship script's checks: test_ship_script_scores_checks_and_writes_a_card
def test_ship_script_judges_on_held_out_sources(small_checkpoint, tmp_path, monkeypatch, capsys):
    import hashlib

    from PIL import Image

    from segmentation.datasets.io import write_labels
    from segmentation.datasets.sample_data import load_sample
    from segmentation.datasets.synthetic import synthetic_nuclei

    ship = _ship_script()
    root = tmp_path / "data" / "koyuncu_fluo"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()

    def key(image):
        return hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()

    truth = {key(s.image): s.labels for s in load_sample()}
    for i in range(2):
        sample = synthetic_nuclei((96, 96), 8, seed=i)
        Image.fromarray(sample.image[..., 0]).save(root / "images" / f"Huh7_{i}.png")
        write_labels(root / "labels" / f"Huh7_{i}.tif", sample.labels)
        truth[key(sample.image)] = sample.labels
    recipe = {
        **small_checkpoint["recipe"],
        "data": {"val_fraction": 0.3, "test_fraction": 0.3, "split": "group", "groups": None},
    }
    source = atomic_save({**small_checkpoint, "recipe": recipe}, tmp_path / "run" / "model.pt")
    out = tmp_path / "weights" / "default_unet.pt"
    args = [str(source), "--data", "sample", "--output", str(out)]
    args += ["--recipe", "configs/tiny_unet.yaml", "--sources", "huh7"]
    args += ["--data-root", str(tmp_path / "data")]
    assert ship.main(args) == 0
    card = read_checkpoint(out)["model_card"]
    entry = card["held_out_sources"]["huh7"]
    assert entry["modality"] == "fluorescence" and entry["float16"]["images"] == 2
    assert {"score", "f1_0.9", "matched_iou"} <= set(entry["baseline"])
    assert "held-out sources" in capsys.readouterr().out

    class Perfect:  # the shipped model: perfect everywhere
        def segment(self, image):
            return truth[key(image)]

    _previous_model_is(ship, Perfect, monkeypatch)
    assert ship.main([*args, "--group-tolerance", "1.0"]) == 2  # the groups let it pass ...
    assert "held-out sources ['huh7']" in capsys.readouterr().err  # ... the source does not


def _previous_model_is(ship, stand_in: type, monkeypatch) -> None:
    """Make the ship script read the model file already there (it has a card) as ``stand_in()``,
    whose ``segment(image)`` gives the labels."""
    real_load, real_segment = ship.SegmentationModel.from_checkpoint, ship.segment
    monkeypatch.setattr(
        ship.SegmentationModel,
        "from_checkpoint",
        lambda ckpt, device: stand_in() if ckpt.get("model_card") else real_load(ckpt, device),
    )
    monkeypatch.setattr(
        ship,
        "segment",
        lambda image, model=None, **kw: (
            model.segment(image)
            if isinstance(model, stand_in)
            else real_segment(image, model, **kw)
        ),
    )
