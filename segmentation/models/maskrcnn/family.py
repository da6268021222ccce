"""The ``maskrcnn`` family object: torchvision's Mask R-CNN on the shared family contract."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from segmentation.models.base import thresholds_from_dict
from segmentation.models.maskrcnn.decode import MaskRCNNThresholds, decode
from segmentation.models.maskrcnn.model import build_model, predict, training_loss
from segmentation.models.maskrcnn.roundtrip import DEFAULT_MASK_SIZE, oracle_raw
from segmentation.models.maskrcnn.targets import collate, encode_targets

#: Candidate values per threshold, searched on the validation split after training.
THRESHOLD_GRID: dict[str, list[float]] = {
    "score_threshold": [0.3, 0.5, 0.6, 0.7, 0.8],
    "mask_threshold": [0.4, 0.5, 0.6],
    "nms_iou": [0.3, 0.4, 0.5, 1.0],
    "min_kept_fraction": [0.3, 0.5, 0.7],
    "min_size": [0, 4, 10],
}


class MaskRCNNFamily:
    """Mask R-CNN: detected, scored instance masks painted into one label image.

    Raw outputs are not dense maps (``dense = False``): one dict per image of ``boxes``
    ``(N, 4)``, ``scores`` ``(N,)``, box-level ``masks`` ``(N, M, M)`` probabilities and
    ``image_shape``, see :mod:`segmentation.models.maskrcnn.decode`.
    """

    name = "maskrcnn"
    dense = False
    Thresholds = MaskRCNNThresholds

    def build(self, config: dict[str, Any]) -> torch.nn.Module:
        """Model config -> torchvision ``MaskRCNN`` (see :func:`~.model.build_model`)."""
        return build_model(config)

    def inference_config(self, config: dict[str, Any]) -> dict[str, Any]:
        """The same architecture without published weights to fetch: a checkpoint already holds
        the trained weights. The normalisation layers that published weights imply are kept, so
        the trained state dict still fits."""
        config = dict(config)
        pretrained = config.get("weights") is not None or config.get("weights_backbone") is not None
        if pretrained and config.get("norm") is None:
            config["norm"] = "frozen"
        if pretrained and config.get("trainable_backbone_layers") is None:
            config["trainable_backbone_layers"] = 3
        config["weights"] = config["weights_backbone"] = None
        return config

    def encode_targets(self, labels: np.ndarray) -> dict[str, np.ndarray]:
        """``(H, W)`` labels -> ``{"boxes" (N, 4) float32, "labels" (N,) int64, "masks" (N, H, W)
        uint8}`` (see :func:`~.targets.encode_targets`)."""
        return encode_targets(labels)

    def collate(self, targets: list[dict[str, Any]]) -> list[dict[str, torch.Tensor]]:
        """Per-image targets -> list of dicts of CPU tensors (see :func:`~.targets.collate`)."""
        return collate(targets)

    def training_loss(
        self, model: torch.nn.Module, images: torch.Tensor, targets: list[dict[str, Any]]
    ) -> dict[str, torch.Tensor]:
        """``(B, 3, H, W)`` images, ``B`` targets -> torchvision's losses plus ``total``;
        the model must be in train mode (see :func:`~.model.training_loss`)."""
        return training_loss(model, images, targets)

    def predict(self, model: torch.nn.Module, images: torch.Tensor) -> list[dict[str, Any]]:
        """``(B, 3, H, W)`` images -> one raw dict per image; the model must be in eval mode
        (see :func:`~.model.predict`)."""
        return predict(model, images)

    def decode(self, raw: dict[str, Any], thresholds: Any = None) -> np.ndarray:
        """Raw dict of one image -> ``(H, W)`` int32 labels by score-ordered painting;
        ``thresholds`` is ``None``, :class:`MaskRCNNThresholds` or a dict of its fields."""
        return decode(raw, thresholds_from_dict(MaskRCNNThresholds, thresholds))

    def oracle_raw(self, labels: np.ndarray, mask_size: int = DEFAULT_MASK_SIZE) -> dict[str, Any]:
        """``(H, W)`` labels -> perfect raw outputs at the mask head's resolution (score 1.0)."""
        return oracle_raw(labels, mask_size)

    def threshold_grid(self) -> dict[str, list[float]]:
        """Candidate values per threshold field (a new dict each call)."""
        return {k: list(v) for k, v in THRESHOLD_GRID.items()}


FAMILY = MaskRCNNFamily()
