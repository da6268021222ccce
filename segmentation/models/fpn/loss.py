"""Loss of the FPN distance/angle family.

Foreground: BCE + soft Dice. Energy (normalised distance to the boundary): squared error inside
nuclei, each pixel weighted by ``1 / area`` of its nucleus (rescaled to mean 1) so that small nuclei
count as much as large ones. Angle: ``1 - cos`` between the predicted and the true direction
towards the nucleus centre, inside nuclei, with the same weights.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from segmentation.models.dense import bce_dice_loss
from segmentation.models.fpn.targets import encode_targets as encode_maps

MAPS = ("foreground", "energy", "cos", "sin")
DEFAULT_LOSS_WEIGHTS = {"foreground": 1.0, "energy": 1.0, "angle": 0.5}


def nucleus_weights(labels: np.ndarray, max_weight: float = 10.0) -> np.ndarray:
    """Per-pixel weights ``(H, W)`` float32: ``1 / area`` of the pixel's nucleus, mean 1 over nuclei.

    Background is 0. Weights are clipped at ``max_weight`` so one tiny fragment at a crop edge
    cannot dominate a batch.
    """
    labels = np.asarray(labels)
    fg = labels > 0
    weights = np.zeros(labels.shape, np.float32)
    if not fg.any():
        return weights
    areas = np.bincount(labels.ravel())
    per_pixel = 1.0 / areas[labels[fg]]
    per_pixel *= fg.sum() / per_pixel.sum()  # mean weight over foreground = 1
    weights[fg] = np.minimum(per_pixel, max_weight)
    return weights


def encode_with_weights(labels: np.ndarray) -> dict[str, np.ndarray]:
    """``(H, W)`` labels -> ``{"maps": (4, H, W) float32, "weight": (H, W) float32}``."""
    return {"maps": encode_maps(labels), "weight": nucleus_weights(labels)}


def activate(logits: torch.Tensor) -> torch.Tensor:
    """Logits ``(B, 4, H, W)`` -> maps: sigmoid foreground and energy, tanh angle components."""
    return torch.cat([torch.sigmoid(logits[:, :2]), torch.tanh(logits[:, 2:4])], dim=1)


def fpn_loss(
    logits: torch.Tensor, targets: dict[str, torch.Tensor], weights: dict[str, float]
) -> dict[str, torch.Tensor]:
    """Weighted sum of the foreground, energy and angle terms.

    Args:
        logits: ``(B, 4, H, W)`` raw outputs.
        targets: ``maps`` ``(B, 4, H, W)`` float32 and ``weight`` ``(B, H, W)`` float32.
        weights: term weights, keys ``foreground``, ``energy``, ``angle``.

    Returns:
        ``{"foreground", "energy", "angle", "total"}`` scalar tensors.
    """
    logits = logits.float()
    maps = targets["maps"].to(logits.device)
    w = targets["weight"].to(logits.device)
    fg_loss = bce_dice_loss(logits[:, 0:1], maps[:, 0:1])
    denom = w.sum().clamp_min(1.0)
    energy = torch.sigmoid(logits[:, 1])
    energy_loss = (w * (energy - maps[:, 1]) ** 2).sum() / denom
    pred_vec = F.normalize(torch.tanh(logits[:, 2:4]), dim=1, eps=1e-6)
    true_vec = maps[:, 2:4]
    has_direction = (true_vec.norm(dim=1) > 0.5).float() * w  # the centre pixel has none
    cos = (pred_vec * true_vec).sum(dim=1)
    angle_loss = (has_direction * (1.0 - cos)).sum() / has_direction.sum().clamp_min(1.0)
    out = {"foreground": fg_loss, "energy": energy_loss, "angle": angle_loss}
    out["total"] = sum(weights[k] * out[k] for k in out)
    return out
