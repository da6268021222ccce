"""The network of a BioImage Model Zoo package: image -> raw maps, as the toolkit computes them.

This file is copied into every package written by
:func:`segmentation.export.bioimageio.to_bioimageio` as ``architecture.py``, the source of its
``pytorch_state_dict`` weights: it needs only ``torch`` and ``segmentation_models_pytorch`` (not
this toolkit), so keep it free of other imports.

:class:`NucleusMaps` runs each member network of an ensemble (a segmentation-models-pytorch
model rebuilt from its constructor arguments), turns its logits into maps (sigmoid, and tanh for
the last ``tanh_channels`` channels), and averages the maps over the members, exactly as
``SegmentationModel.forward`` does.
"""

from __future__ import annotations

from typing import Any

import segmentation_models_pytorch as smp
import torch


class NucleusMaps(torch.nn.Module):
    """Ensemble of dense networks -> averaged activated maps.

    Args:
        members: one dict per network: ``{"architecture": "Unet", "kwargs": {...}}``, the name
            of a ``segmentation_models_pytorch`` class and its constructor arguments
            (``encoder_weights`` should be ``None``: the state dict holds the weights), and
            optionally ``"unused": ["encoder.layer4", ...]``, submodules that never run (smp keeps
            every encoder stage even when ``encoder_depth`` runs fewer), left out of the weights.
        tanh_channels: the last ``tanh_channels`` output channels are squashed by ``tanh``
            (angle components of the ``fpn`` family); the others by a sigmoid.

    Shapes:
        ``forward``: ``(B, 3, H, W)`` float32 normalised image -> ``(B, C, H, W)`` float32
        maps; ``H`` and ``W`` multiples of ``2 ** encoder_depth``.
    """

    def __init__(self, members: list[dict[str, Any]], tanh_channels: int = 0):
        super().__init__()
        if not members:
            raise ValueError("NucleusMaps needs at least one member network")
        self.members = torch.nn.ModuleList()
        for member in members:
            net = getattr(smp, member["architecture"])(**member["kwargs"])
            for name in member.get("unused", ()):
                parent, _, child = name.rpartition(".")
                setattr(net.get_submodule(parent), child, torch.nn.Identity())
            self.members.append(net)
        self.tanh_channels = int(tanh_channels)

    def activate(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, C, H, W)`` -> maps of the same shape (sigmoid, then tanh channels)."""
        if self.tanh_channels <= 0:
            return torch.sigmoid(logits)
        split = logits.shape[1] - self.tanh_channels
        return torch.cat([torch.sigmoid(logits[:, :split]), torch.tanh(logits[:, split:])], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = None
        for net in self.members:
            maps = self.activate(net(x).float())
            total = maps if total is None else total + maps
        return total / len(self.members)
