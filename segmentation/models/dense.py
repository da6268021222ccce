"""Shared machinery of the dense families (U-Net, FPN): a network that outputs per-pixel maps.

Each dense family supplies its map names, how raw logits become maps (``activate``), the targets
(``encode_targets``), the loss on logits and the decode; this module does the rest of the
:class:`~segmentation.models.base.Family` contract (collate, training step, prediction) once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F

from segmentation.models.base import thresholds_from_dict

#: smp architectures the dense families may use, by config name.
ARCHITECTURES: dict[str, type[torch.nn.Module]] = {
    "unet": smp.Unet,
    "unetplusplus": smp.UnetPlusPlus,
    "fpn": smp.FPN,
}

#: Keys every dense model config accepts (family modules add their own).
DENSE_MODEL_KEYS = {
    "architecture": "smp architecture: " + ", ".join(ARCHITECTURES),
    "encoder": "encoder name, e.g. resnet34, densenet121, efficientnet-b0",
    "encoder_weights": "null (from scratch, the default) or a published weight name, e.g. imagenet",
    "encoder_depth": "number of encoder stages (3-5)",
    "decoder_channels": "U-Net decoder widths (unet only)",
    "decoder_pyramid_channels": "FPN pyramid width (fpn only)",
    "decoder_segmentation_channels": "FPN segmentation head width (fpn only)",
    "members": "list of per-member overrides: an ensemble trained member by member",
    "loss_weights": "weights of the named loss terms, e.g. {energy: 1.0, angle: 0.5}",
}


def check_model_keys(config: dict[str, Any], allowed: dict[str, str], family: str) -> None:
    """Raise ValueError naming any key of ``config`` that ``family`` does not know."""
    unknown = sorted(set(config) - set(allowed))
    if unknown:
        valid = "\n".join(f"  {k}: {v}" for k, v in sorted(allowed.items()))
        raise ValueError(
            f"unknown model key(s) {unknown} for family {family!r}; valid keys:\n{valid}"
        )


def build_smp(
    config: dict[str, Any], *, default_architecture: str, classes: int
) -> torch.nn.Module:
    """Build a segmentation-models-pytorch network from a model config.

    Args:
        config: model section (``members`` already resolved away).
        default_architecture: used when the config names none.
        classes: number of output channels.

    Returns:
        Module mapping ``(B, 3, H, W)`` float32 to ``(B, classes, H, W)`` logits; ``H`` and ``W``
        must be multiples of ``2 ** encoder_depth`` (32 by default).
    """
    arch = config.get("architecture", default_architecture)
    if arch not in ARCHITECTURES:
        raise ValueError(
            f"unknown architecture {arch!r}; choose one of: {', '.join(ARCHITECTURES)}"
        )
    kwargs: dict[str, Any] = {
        "encoder_name": config.get("encoder", "resnet34"),
        "encoder_weights": config.get("encoder_weights"),
        "encoder_depth": int(config.get("encoder_depth", 5)),
        "in_channels": 3,
        "classes": classes,
    }
    if arch in ("unet", "unetplusplus") and "decoder_channels" in config:
        kwargs["decoder_channels"] = tuple(config["decoder_channels"])
    if arch == "fpn":
        for key in ("decoder_pyramid_channels", "decoder_segmentation_channels"):
            if key in config:
                kwargs[key] = int(config[key])
    try:
        return ARCHITECTURES[arch](**kwargs)
    except KeyError as err:  # smp raises KeyError for unknown encoders
        raise ValueError(
            f"unknown encoder {kwargs['encoder_name']!r}: see "
            "segmentation_models_pytorch.encoders.get_encoder_names()"
        ) from err


def soft_dice_loss(probs: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Soft Dice loss per channel, averaged: ``probs``/``target`` ``(B, C, H, W)`` float in [0, 1]."""
    dims = (0, 2, 3)
    inter = (probs * target).sum(dims)
    union = probs.sum(dims) + target.sum(dims)
    return (1.0 - (2.0 * inter + eps) / (union + eps)).mean()


def bce_dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE-with-logits plus soft Dice, ``(B, C, H, W)`` logits against ``(B, C, H, W)`` targets."""
    bce = F.binary_cross_entropy_with_logits(logits.float(), target.float())
    return bce + soft_dice_loss(torch.sigmoid(logits.float()), target.float())


@dataclass
class DenseFamily:
    """A family whose network outputs dense per-pixel maps.

    Attributes:
        name: registry name.
        channels: names of the raw map channels, in order.
        Thresholds: the decode's thresholds dataclass.
        default_architecture: smp architecture used when the config names none.
        model_keys: the model config keys the family accepts (with help text).
        encode_fn: ``(H, W)`` labels -> targets for one image (numpy; dict or array).
        loss_fn: ``(logits (B, C, H, W), batched targets, loss_weights) -> dict`` of losses with
            ``total``.
        activate_fn: logits ``(B, C, H, W)`` -> raw maps ``(B, C, H, W)`` (sigmoid/tanh...).
        decode_fn: ``(maps (C, H, W) float32, thresholds) -> (H, W) int32``.
        oracle_fn: ``(H, W)`` labels -> perfect raw maps ``(C, H, W)`` float32.
        grid: candidate values per threshold field for the validation search.
    """

    name: str
    channels: tuple[str, ...]
    Thresholds: type
    default_architecture: str
    model_keys: dict[str, str]
    encode_fn: Callable[[np.ndarray], Any]
    loss_fn: Callable[[torch.Tensor, Any, dict[str, float]], dict[str, torch.Tensor]]
    activate_fn: Callable[[torch.Tensor], torch.Tensor]
    decode_fn: Callable[[np.ndarray, Any], np.ndarray]
    oracle_fn: Callable[[np.ndarray], np.ndarray]
    grid: dict[str, list[float]]
    default_loss_weights: dict[str, float]
    dense: bool = True

    def build(self, config: dict[str, Any]) -> torch.nn.Module:
        """Model config -> smp network ``(B, 3, H, W) -> (B, len(channels), H, W)`` logits."""
        check_model_keys(config, self.model_keys, self.name)
        weights = dict(self.default_loss_weights)
        unknown = sorted(set(config.get("loss_weights") or {}) - set(weights))
        if unknown:
            raise ValueError(
                f"unknown loss weight(s) {unknown} for family {self.name!r}; valid: {sorted(weights)}"
            )
        weights.update(config.get("loss_weights") or {})
        arch_config = {k: v for k, v in config.items() if k not in ("members", "loss_weights")}
        model = build_smp(
            arch_config, default_architecture=self.default_architecture, classes=len(self.channels)
        )
        model.loss_weights = {k: float(v) for k, v in weights.items()}
        return model

    def inference_config(self, config: dict[str, Any]) -> dict[str, Any]:
        """The same network without published encoder weights to fetch (a checkpoint holds the
        trained weights)."""
        return {**config, "encoder_weights": None}

    def encode_targets(self, labels: np.ndarray) -> Any:
        """``(H, W)`` int labels -> this family's training targets (numpy)."""
        return self.encode_fn(labels)

    def collate(self, targets: list[Any]) -> Any:
        """Stack per-image targets (arrays, or dicts of arrays) into CPU tensors ``(B, ...)``."""
        if isinstance(targets[0], dict):
            return {k: torch.from_numpy(np.stack([t[k] for t in targets])) for k in targets[0]}
        return torch.from_numpy(np.stack(targets))

    def training_loss(
        self, model: torch.nn.Module, images: torch.Tensor, targets: Any
    ) -> dict[str, torch.Tensor]:
        """``(B, 3, H, W)`` images and batched targets -> named losses including ``total``."""
        weights = getattr(model, "module", model).loss_weights  # unwrap DistributedDataParallel
        return self.loss_fn(model(images), targets, weights)

    @torch.no_grad()
    def predict(self, model: torch.nn.Module, images: torch.Tensor) -> list[np.ndarray]:
        """``(B, 3, H, W)`` images -> list of ``B`` float32 maps ``(C, H, W)`` on the CPU."""
        maps = self.activate_fn(model(images).float())
        return list(maps.cpu().numpy())

    def decode(self, raw: np.ndarray, thresholds: Any = None) -> np.ndarray:
        """Raw maps ``(C, H, W)`` float32 -> ``(H, W)`` int32 label image."""
        raw = np.asarray(raw)
        if raw.ndim != 3 or raw.shape[0] != len(self.channels):
            raise ValueError(
                f"{self.name} maps must have shape ({len(self.channels)}, H, W) with channels "
                f"{self.channels}, got shape {raw.shape}"
            )
        return self.decode_fn(raw, thresholds_from_dict(self.Thresholds, thresholds))

    def oracle_raw(self, labels: np.ndarray) -> np.ndarray:
        """``(H, W)`` labels -> the ``(C, H, W)`` float32 maps a perfect network would output."""
        return self.oracle_fn(labels)

    def threshold_grid(self) -> dict[str, list[float]]:
        """Candidate values per threshold field, for the validation search."""
        return {k: list(v) for k, v in self.grid.items()}


def modules_run(net: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, set[str]]:
    """Forward ``x`` through ``net`` without gradients, recording which modules ran.

    segmentation-models-pytorch keeps every encoder stage even when ``encoder_depth`` runs fewer;
    the modules missing from the returned set hold weights that inference never uses.

    Args:
        net: a dense network (in the mode the caller wants, usually ``eval``).
        x: ``(B, 3, H, W)`` float32 input on the network's device.

    Returns:
        The output and the names (as in ``net.named_modules()``) of the modules that ran.
    """
    called: set[str] = set()
    hooks = [
        module.register_forward_hook(lambda *_, name=name: called.add(name))
        for name, module in net.named_modules()
    ]
    try:
        with torch.no_grad():
            out = net(x)
    finally:
        for hook in hooks:
            hook.remove()
    return out, called
