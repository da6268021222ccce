"""Loss of the U-Net family: BCE + soft Dice on each of the body, border and contact maps."""

from __future__ import annotations

import torch

from segmentation.models.dense import bce_dice_loss

MAPS = ("body", "border", "contact")
DEFAULT_LOSS_WEIGHTS = {"body": 1.0, "border": 1.0, "contact": 1.0}


def unet_loss(
    logits: torch.Tensor, targets: torch.Tensor, weights: dict[str, float]
) -> dict[str, torch.Tensor]:
    """Per-map BCE + Dice.

    Args:
        logits: ``(B, 3, H, W)`` raw network outputs (before the sigmoid).
        targets: ``(B, 3, H, W)`` float maps in [0, 1] (body, border, contact).
        weights: weight of each map's term, keys ``body``, ``border``, ``contact``.

    Returns:
        ``{"body", "border", "contact", "total"}`` scalar tensors; ``total`` is the weighted sum.
    """
    targets = targets.to(logits.device)
    out = {
        name: bce_dice_loss(logits[:, i : i + 1], targets[:, i : i + 1])
        for i, name in enumerate(MAPS)
    }
    out["total"] = sum(weights[name] * out[name] for name in MAPS)
    return out
