"""A model card prints as a short summary and still reads as the dict it is."""

import json

import pytest
import torch

from segmentation.inference import load_default_model, load_model
from segmentation.modelfile import atomic_save, make_checkpoint
from segmentation.models.registry import get_family


@pytest.fixture(scope="module")
def card():
    return load_default_model("cpu").model_card


def test_printing_the_card_is_a_short_summary_without_image_lists(card):
    text = str(card)
    lines = text.splitlines()
    assert len(lines) <= 32 and len(text) <= 3200, text  # a screenful
    ids = card["split"]["validation_ids"] + card["held_out_groups"]["test_ids"]
    assert not any(name in text for name in ids)  # the long lists stay out
    assert lines[0].startswith(f"{card['name']}: unet family")
    for label in ("recipe", "data", "licence", "validation", "held out", "sources", "retrain"):
        assert any(line.strip().startswith(label) for line in lines), label
    assert card["recipe"] in text and f"{card['validation']['float16']['score']:.3f}" in text
    assert f"{card['baseline']['score']:.3f}" in text  # the baseline beside it
    assert 'card["split"]["validation_ids"]' in text  # says where the lists are
    assert repr(card) == text  # the REPL shows the same


def test_the_card_is_still_a_plain_dict_of_values(card, tmp_path):
    plain = json.loads(json.dumps(card))
    assert card == plain and isinstance(card, dict)
    assert len(card["split"]["validation_ids"]) == card["split"]["validation_images"]
    torch.manual_seed(0)
    config = {"encoder": "resnet18", "encoder_depth": 3, "decoder_channels": [16, 8, 8]}
    net = get_family("unet").build(config)
    ckpt = make_checkpoint(
        family="unet",
        members=[{"config": config, "state_dict": net.state_dict()}],
        thresholds={},
        metrics={},
        recipe={},
    )
    path = atomic_save({**ckpt, "model_card": card}, tmp_path / "m.pt")  # written back as is
    assert load_model(path, "cpu").model_card == plain
    empty = load_model(atomic_save(ckpt, tmp_path / "n.pt"), "cpu").model_card
    assert empty == {} and not empty and str(empty).startswith("no model card")
