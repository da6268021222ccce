"""Running a trained model on images: the engine behind :func:`segmentation.segment`.

Inputs are normalised over the whole image, padded (reflect) to the network's multiple, run through
every ensemble member, averaged on the raw maps, cropped back, and decoded once.
"""

from __future__ import annotations

import os
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from segmentation.datasets.normalize import normalize_image, to_model_input
from segmentation.models.dense import thresholds_from_dict
from segmentation.models.registry import get_family
from segmentation.training.checkpoint import read_checkpoint

#: Dense networks need inputs whose sides are multiples of this (5 encoder stages).
INPUT_MULTIPLE = 32


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; other strings are passed to ``torch.device``."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available; use device='cpu'")
    return torch.device(device)


def as_image_array(image: np.ndarray | str | os.PathLike) -> np.ndarray:
    """A path or array -> ``(H, W, C)`` array with ``C`` in ``{1, 3}`` (alpha dropped).

    Accepts ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` and ``(H, W, 4)`` arrays of integer or float
    dtype; a 3-D stack or any other shape raises ValueError naming the shape.
    """
    if isinstance(image, str | os.PathLike):
        from segmentation.datasets.io import read_image

        return read_image(image)
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array or a file path, got {type(image).__name__}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(
            f"image must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got shape {image.shape}; "
            "3-D stacks are not supported: segment one plane at a time"
        )
    if min(image.shape[:2]) < 1:
        raise ValueError(f"image is empty (shape {image.shape})")
    return image[:, :, :3] if image.shape[2] == 4 else image


class SegmentationModel:
    """A loaded model: family, ensemble members, thresholds and normalisation, on one device.

    Attributes:
        family: the family object (see :mod:`segmentation.models.registry`).
        members: the networks (in eval mode); dense families average their raw maps.
        thresholds: the decode's thresholds dataclass (tuned on validation when trained here).
        normalization: percentile normalisation ``{"low", "high"}``.
        metrics: validation metrics recorded at training time.
        recipe: the training recipe.
        device: where the networks run.
    """

    def __init__(
        self,
        family_name: str,
        members: list[torch.nn.Module],
        thresholds: Any = None,
        normalization: dict[str, float] | None = None,
        metrics: dict[str, Any] | None = None,
        recipe: dict[str, Any] | None = None,
        device: str | torch.device = "auto",
    ):
        if not members:
            raise ValueError("a model needs at least one network")
        self.family = get_family(family_name)
        self.device = resolve_device(device)
        self.members = [m.to(self.device).eval() for m in members]
        self.thresholds = thresholds_from_dict(self.family.Thresholds, thresholds)
        self.normalization = dict(normalization or {"low": 1.0, "high": 99.8})
        self.metrics = dict(metrics or {})
        self.recipe = recipe or {}

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any], device: str | torch.device = "auto"):
        """Build from a checkpoint dict (see :mod:`segmentation.training.checkpoint`)."""
        family = get_family(ckpt["family"])
        members = []
        for member in ckpt["members"]:
            net = family.build(member["config"])
            net.load_state_dict(member["state_dict"])
            members.append(net)
        return cls(
            ckpt["family"],
            members,
            ckpt.get("thresholds"),
            ckpt.get("normalization"),
            ckpt.get("metrics"),
            ckpt.get("recipe"),
            device,
        )

    def thresholds_dict(self) -> dict[str, Any]:
        """The thresholds as a plain dict."""
        return asdict(self.thresholds) if is_dataclass(self.thresholds) else dict(self.thresholds)

    def prepare(self, image: np.ndarray | str | os.PathLike) -> np.ndarray:
        """Image (array or path) -> normalised ``(3, H, W)`` float32 network input."""
        array = as_image_array(image)
        norm = normalize_image(array, self.normalization["low"], self.normalization["high"])
        return to_model_input(norm)

    @torch.no_grad()
    def predict_raw(self, chw: np.ndarray) -> Any:
        """Normalised ``(3, H, W)`` float32 -> raw outputs for the whole image.

        Dense families: ``(C, H, W)`` float32 maps averaged over members. Mask R-CNN: the
        family's instance dict (first member).
        """
        height, width = chw.shape[1:]
        x = torch.from_numpy(np.ascontiguousarray(chw))[None]
        if not self.family.dense:
            return self.family.predict(self.members[0], x.to(self.device))[0]
        pad_h = (-height) % INPUT_MULTIPLE
        pad_w = (-width) % INPUT_MULTIPLE
        if pad_h or pad_w:
            mode = "reflect" if pad_h < height and pad_w < width else "replicate"
            x = torch.nn.functional.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        x = x.to(self.device)
        total = None
        for net in self.members:
            maps = self.family.predict(net, x)[0]
            total = maps if total is None else total + maps
        return (total / len(self.members))[:, :height, :width]

    def segment(self, image: np.ndarray | str | os.PathLike) -> np.ndarray:
        """Image (array or path) -> ``(H, W)`` int32 label image."""
        raw = self.predict_raw(self.prepare(image))
        return self.family.decode(raw, self.thresholds).astype(np.int32, copy=False)


def load_model(path: str | os.PathLike, device: str | torch.device = "auto") -> SegmentationModel:
    """Load a model file written by ``segmentation train`` (needs nothing else).

    Args:
        path: the ``.pt`` model file.
        device: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``...

    Returns:
        A :class:`SegmentationModel` ready for :meth:`~SegmentationModel.segment`.
    """
    return SegmentationModel.from_checkpoint(read_checkpoint(Path(path)), device)


def segment(
    image: np.ndarray | str | os.PathLike,
    model: SegmentationModel | str | os.PathLike | None = None,
    *,
    device: str | torch.device = "auto",
) -> np.ndarray:
    """Segment the nuclei of one 2-D image.

    Args:
        image: ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)`` array (uint8, uint16 or
            float; alpha is dropped), or a PNG/TIFF path.
        model: a model file path or a loaded :class:`SegmentationModel`.
        device: where to run the network when ``model`` is a path.

    Returns:
        ``(H, W)`` int32 label image: 0 = background, 1..N = nuclei.

    Example:
        >>> labels = segment("cells.png", model="runs/unet/model.pt")  # doctest: +SKIP
    """
    if model is None:
        raise ValueError(
            "no model given and no default model ships yet; pass model='path/to/model.pt' "
            "(train one with `segmentation train configs/unet_ensemble.yaml`)"
        )
    if not isinstance(model, SegmentationModel):
        model = load_model(model, device)
    return model.segment(image)
