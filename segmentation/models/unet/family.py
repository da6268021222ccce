"""The ``unet`` family: U-Nets predicting body, border and contact maps, decoded by watershed."""

from __future__ import annotations

import torch

from segmentation.models.dense import DENSE_MODEL_KEYS, DenseFamily
from segmentation.models.unet.decode import UnetThresholds, decode
from segmentation.models.unet.loss import DEFAULT_LOSS_WEIGHTS, MAPS, unet_loss
from segmentation.models.unet.targets import encode_targets

FAMILY = DenseFamily(
    name="unet",
    channels=MAPS,
    Thresholds=UnetThresholds,
    default_architecture="unet",
    model_keys=DENSE_MODEL_KEYS,
    encode_fn=encode_targets,
    loss_fn=unet_loss,
    activate_fn=torch.sigmoid,
    decode_fn=decode,
    oracle_fn=encode_targets,
    grid={
        "mask": [0.3, 0.4, 0.5, 0.6],
        "seed_body": [0.4, 0.5, 0.6, 0.7, 0.8],
        "seed_border": [0.3, 0.5, 0.7],
        "seed_contact": [0.3, 0.5, 0.7],
        "min_size": [5, 10, 20],
        "min_seed_size": [1, 3, 5],
        "merge_contact": [0.0, 0.1, 0.2, 0.3],
    },
    default_loss_weights=DEFAULT_LOSS_WEIGHTS,
)
