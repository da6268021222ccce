"""``segmentation finetune``: bad input refused before any training, and a short run that writes an
ordinary model file (the fine-tuned network in place, a card naming the base model)."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from segmentation.cli import main
from segmentation.datasets.io import write_labels
from segmentation.datasets.synthetic import synthetic_nuclei
from segmentation.inference import load_model, segment
from segmentation.inference.default import default_model_path
from segmentation.modelfile import atomic_save, make_checkpoint, read_checkpoint
from segmentation.models.registry import get_family
from segmentation.training.finetune import finetune, split_for_validation


def _folders(tmp_path, n_images=2, nuclei=14, shape=(160, 160)):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for i in range(n_images):
        sample = synthetic_nuclei(shape, nuclei, seed=i, radius_range=(7, 11))
        Image.fromarray(sample.image[..., 0]).save(images / f"img{i}.png")
        write_labels(masks / f"img{i}_masks.tif", sample.labels)
    return images, masks


def test_the_held_out_part_is_the_end_of_the_longer_side():
    sample = synthetic_nuclei((100, 300), 10, seed=0)
    train, val = split_for_validation(sample, 0.2)
    assert train.image.shape[:2] == (100, 240) and val.labels.shape == (100, 60)
    np.testing.assert_array_equal(np.concatenate([train.labels, val.labels], 1), sample.labels)


def test_too_few_nuclei_are_refused_before_training(tmp_path):
    images, masks = _folders(tmp_path, n_images=1, nuclei=6)
    with pytest.raises(ValueError, match="hold .* annotated nuclei in all; annotate at least 20"):
        finetune(images, masks, minutes=0.01, progress=False)


def test_a_model_of_another_family_is_refused(tmp_path):
    images, masks = _folders(tmp_path)
    config = {"encoder": "resnet18", "encoder_depth": 3}
    net = get_family("fpn").build(config)
    ckpt = make_checkpoint(
        family="fpn",
        members=[{"config": config, "state_dict": net.state_dict()}],
        thresholds={},
        metrics={},
        recipe={},
    )
    path = atomic_save(ckpt, tmp_path / "fpn.pt")
    with pytest.raises(ValueError, match="is a fpn model; fine-tuning adapts U-Net models"):
        finetune(images, masks, model=path, minutes=0.01, progress=False)


def test_bad_arguments_are_refused(tmp_path):
    images, masks = _folders(tmp_path)
    with pytest.raises(ValueError, match="minutes must be above 0"):
        finetune(images, masks, minutes=0, progress=False)
    with pytest.raises(ValueError, match="one label image per image"):
        finetune([np.zeros((64, 64), np.uint8)], [], progress=False)
    assert main(["finetune", str(images), str(masks), "--output", str(tmp_path / "x.tif")]) == 2


def test_a_short_finetune_writes_a_model_file_that_segments(tmp_path, capsys):
    images, masks = _folders(tmp_path)
    out = tmp_path / "mine.pt"
    # not pytest.warns: its "always" filter makes CPU training about 10x slower (torch 2.14)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        code = main(
            ["finetune", str(images), str(masks), "--output", str(out), "--minutes", "0.05"]
            + ["--device", "cpu", "--no-progress"]
        )
    assert any(re.search("held-out parts .* hold [0-9]+ nuclei", str(w.message)) for w in caught)
    assert code == 0 and "wrote" in capsys.readouterr().out
    ckpt = read_checkpoint(out)  # checksummed
    card = ckpt["model_card"]
    assert card["finetuned_from"] == "the default model" and card["network"] == "main"
    assert card["images"] == ["img0", "img1"] and card["nuclei"] > 20 and card["epochs"] >= 1
    parts = card["held_out_parts"]
    assert set(parts) == {"score_before", "score_after"}
    # the base weights compete: the result never scores lower on the held-out parts
    assert parts["score_after"] >= parts["score_before"]
    shipped = read_checkpoint(default_model_path())
    assert "stained" in ckpt["routes"]  # the other network is kept, unchanged
    route, before = ckpt["routes"]["stained"]["members"][0], shipped["routes"]["stained"]
    assert all(
        torch.equal(v, before["members"][0]["state_dict"][k])
        for k, v in route["state_dict"].items()
    )
    main_before = shipped["members"][0]["state_dict"]
    changed = [
        k for k, v in ckpt["members"][0]["state_dict"].items() if not torch.equal(v, main_before[k])
    ]
    assert bool(changed) == (card["weights"] == "fine-tuned")  # the main network trained
    # a few held-out nuclei: the thresholds are the base model's, not fitted to noise
    assert card["thresholds"].startswith("the base model's")
    assert ckpt["thresholds"] == shipped["thresholds"]
    model = load_model(out, "cpu")
    labels = segment(synthetic_nuclei((128, 128), 10, seed=5).image, model)
    assert labels.shape == (128, 128) and labels.max() > 0
    weights = ckpt["members"][0]["state_dict"]
    assert all(v.dtype == torch.float16 for v in weights.values() if v.is_floating_point())


@pytest.mark.slow  # a second fine-tune, ~8 s
def test_a_finetune_that_scores_lower_keeps_the_base_weights(tmp_path, monkeypatch):
    import segmentation.training.finetune as ft

    tuned_network = ft._tuned_network

    def worse_when_trained(network, best, val, device, retune):
        tuned = tuned_network(network, best, val, device, retune)
        return {**tuned, "_validation": -1.0} if best is not None else tuned

    monkeypatch.setattr(ft, "_tuned_network", worse_when_trained)
    monkeypatch.setattr(ft, "MIN_TUNING_NUCLEI", 1)  # enough held-out nuclei to re-tune
    images, masks = _folders(tmp_path)
    out = tmp_path / "mine.pt"
    finetune(images, masks, minutes=0.03, output=out, device="cpu", progress=False)
    ckpt = read_checkpoint(out)
    assert ckpt["model_card"]["weights"].startswith("base")
    assert ckpt["model_card"]["thresholds"].startswith("tuned on the")
    shipped = read_checkpoint(default_model_path())["members"][0]["state_dict"]
    kept = ckpt["members"][0]["state_dict"]
    assert all(torch.equal(v, shipped[k]) for k, v in kept.items())
