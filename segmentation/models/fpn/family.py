"""The ``fpn`` family: a feature-pyramid network regressing foreground, energy and angle maps."""

from __future__ import annotations

from segmentation.models.dense import DENSE_MODEL_KEYS, DenseFamily
from segmentation.models.fpn.decode import FpnThresholds, decode
from segmentation.models.fpn.loss import (
    DEFAULT_LOSS_WEIGHTS,
    MAPS,
    activate,
    encode_with_weights,
    fpn_loss,
)
from segmentation.models.fpn.targets import encode_targets

FAMILY = DenseFamily(
    name="fpn",
    channels=MAPS,
    Thresholds=FpnThresholds,
    default_architecture="fpn",
    model_keys=DENSE_MODEL_KEYS,
    encode_fn=encode_with_weights,
    loss_fn=fpn_loss,
    activate_fn=activate,
    decode_fn=decode,
    oracle_fn=encode_targets,
    grid={
        "mask": [0.3, 0.4, 0.5, 0.6],
        "seed_energy": [0.3, 0.4, 0.5, 0.6, 0.7],
        "min_size": [5, 10, 20],
        "merge_flow": [-1.0, -0.3, -0.1, 0.1],
        "merge_region_flow": [0.3, 0.5, 0.7],
        "flow_barrier": [0.0, 1.0, 2.0],
    },
    default_loss_weights=DEFAULT_LOSS_WEIGHTS,
)
