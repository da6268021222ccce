"""One shared tester runs every registered family: build, forward, backward, finite loss, predict,
decode to a label image of the input's shape, and the oracle round trip on synthetic nuclei."""

import numpy as np
import pytest
import torch

from segmentation.datasets.normalize import prepare_image
from segmentation.datasets.synthetic import synthetic_nuclei
from segmentation.models.registry import available_families, get_family

TINY_MODELS = {
    "unet": {"encoder": "resnet18", "encoder_depth": 3, "decoder_channels": [32, 16, 8]},
    "fpn": {
        "encoder": "resnet18",
        "decoder_pyramid_channels": 16,
        "decoder_segmentation_channels": 32,
    },
    "maskrcnn": {},  # filled from the family's tiny recipe below
}


def tiny_model_config(name: str) -> dict:
    if name == "maskrcnn":
        import yaml

        from tests.paths import CONFIG_DIR

        return yaml.safe_load((CONFIG_DIR / "tiny_maskrcnn.yaml").read_text())["model"]
    return TINY_MODELS[name]


@pytest.fixture(scope="module")
def batch():
    samples = [synthetic_nuclei((64, 64), 6, seed=s) for s in range(2)]
    images = torch.from_numpy(np.stack([prepare_image(s.image) for s in samples]))
    return samples, images


def test_registry_lists_three_families():
    assert available_families() == ["fpn", "maskrcnn", "unet"]
    with pytest.raises(ValueError, match="fpn, maskrcnn, unet"):
        get_family("stardist")


@pytest.mark.parametrize("name", ["unet", "fpn", "maskrcnn"])
def test_family_contract(name, batch):
    torch.manual_seed(0)
    samples, images = batch
    family = get_family(name)
    model = family.build(tiny_model_config(name))
    targets = family.collate([family.encode_targets(s.labels) for s in samples])
    model.train()
    losses = family.training_loss(model, images, targets)
    assert "total" in losses
    assert all(torch.isfinite(v) for v in losses.values())
    losses["total"].backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad and p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    model.eval()
    raws = family.predict(model, images)
    assert len(raws) == 2
    labels = family.decode(raws[0], family.Thresholds())
    assert labels.shape == (64, 64) and labels.dtype == np.int32
    assert labels.min() >= 0


@pytest.mark.parametrize("name", ["unet", "fpn"])
def test_dense_maps_have_declared_channels(name, batch):
    samples, images = batch
    family = get_family(name)
    model = family.build(tiny_model_config(name)).eval()
    raw = family.predict(model, images)[0]
    assert raw.shape == (len(family.channels), 64, 64) and raw.dtype == np.float32
    with pytest.raises(ValueError, match="channels"):
        family.decode(raw[:2])


@pytest.mark.parametrize("name", ["unet", "fpn"])
def test_unknown_model_key_is_named(name):
    with pytest.raises(ValueError, match="encodr"):
        get_family(name).build({"encodr": "resnet18"})


def test_unknown_loss_weight_is_named():
    with pytest.raises(ValueError, match="angel"):
        get_family("fpn").build({**TINY_MODELS["fpn"], "loss_weights": {"angel": 1.0}})


@pytest.mark.parametrize("name", ["unet", "fpn", "maskrcnn"])
def test_oracle_round_trip_on_synthetic_nuclei(name):
    from segmentation.evaluation.matching import dsb_score

    sample = synthetic_nuclei((192, 192), 25, seed=3)
    family = get_family(name)
    labels = family.decode(family.oracle_raw(sample.labels))
    assert dsb_score(sample.labels, labels) > 0.85
