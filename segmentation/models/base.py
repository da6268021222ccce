"""The contract every model family fulfils.

A family turns label images into training targets, builds a network, computes its loss, and decodes
the network's raw outputs into a label image. The trainer, ``segment()`` and the benchmark only talk
to this interface, so they never branch on a family's name.

Raw outputs of dense families (``unet``, ``fpn``) are float32 numpy maps ``(C, H, W)``
(probabilities after the sigmoid, unit-vector components after tanh); they can be averaged across
an ensemble, tiles and test-time augmentations before ``decode``. Mask R-CNN's raw outputs are a
dict of scored instances (see ``segmentation.models.maskrcnn``).
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch


@runtime_checkable
class Family(Protocol):
    """What a model family provides (one object per family, found through the registry).

    Attributes:
        name: registry name (``"unet"``, ``"fpn"``, ``"maskrcnn"``).
        Thresholds: dataclass of post-processing thresholds; ``Thresholds()`` holds the defaults.
        dense: True when raw outputs are ``(C, H, W)`` maps that can be averaged.
    """

    name: str
    Thresholds: type
    dense: bool

    def build(self, config: dict[str, Any]) -> torch.nn.Module:
        """Model config (the YAML ``model:`` section) -> network taking ``(B, 3, H, W)`` float32."""

    def inference_config(self, config: dict[str, Any]) -> dict[str, Any]:
        """A member config that rebuilds the trained architecture without downloading anything."""

    def encode_targets(self, labels: np.ndarray) -> Any:
        """``(H, W)`` int label image -> training targets for one image (numpy)."""

    def collate(self, targets: list[Any]) -> Any:
        """Targets of a batch (as returned by ``encode_targets``) -> torch tensors on the CPU."""

    def training_loss(
        self, model: torch.nn.Module, images: torch.Tensor, targets: Any
    ) -> dict[str, torch.Tensor]:
        """Forward a batch ``(B, 3, H, W)`` in train mode -> named losses, including ``"total"``."""

    def predict(self, model: torch.nn.Module, images: torch.Tensor) -> list[Any]:
        """Forward a batch ``(B, 3, H, W)`` in eval mode, no grad -> raw outputs, one per image."""

    def decode(self, raw: Any, thresholds: Any = None) -> np.ndarray:
        """Raw outputs for one image -> ``(H, W)`` int32 label image, 0 = background."""

    def oracle_raw(self, labels: np.ndarray) -> Any:
        """``(H, W)`` labels -> the raw outputs a perfect network would give (for the oracle)."""

    def threshold_grid(self) -> dict[str, list[float]]:
        """Candidate values per threshold field, searched on the validation split after training."""


def thresholds_from_dict(cls: type, values: Any) -> Any:
    """``None``, a ``cls`` instance or a dict of its fields -> a ``cls`` thresholds dataclass.

    Raises:
        TypeError: ``values`` is none of those.
        ValueError: a dict key is not a field of ``cls`` (the message lists the valid ones).
    """
    if values is None:
        return cls()
    if isinstance(values, cls):
        return values
    if not isinstance(values, dict):
        raise TypeError(
            f"thresholds must be {cls.__name__}, a dict or None, got {type(values).__name__}"
        )
    names = sorted(f.name for f in fields(cls))
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ValueError(f"unknown threshold(s) {unknown} for {cls.__name__}; valid: {names}")
    return cls(**values)
