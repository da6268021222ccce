"""Fixtures shared by several test modules."""

import pytest
import torch

from segmentation.modelfile import atomic_save, make_checkpoint
from segmentation.models.registry import get_family

SMALL_UNET = {"encoder": "resnet18", "encoder_depth": 3, "decoder_channels": [16, 8, 8]}


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A small untrained U-Net model file (seeded: it finds a few dozen "nuclei" in synthetic
    images), written by the toolkit's own checkpoint code."""
    torch.manual_seed(0)
    net = get_family("unet").build(SMALL_UNET)
    ckpt = make_checkpoint(
        family="unet",
        members=[{"config": SMALL_UNET, "state_dict": net.state_dict()}],
        thresholds={},
        metrics={},
        recipe={},
    )
    return atomic_save(ckpt, tmp_path_factory.mktemp("model") / "model.pt")
