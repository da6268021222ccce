"""A loaded model (:class:`SegmentationModel`), :func:`load_model` and the device choice."""

from __future__ import annotations

import os
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from segmentation.inference.inputs import (
    INPUT_MULTIPLE,
    as_image_array,
    intensity_range,
    normalized_window,
)
from segmentation.inference.size_model import SizeModel
from segmentation.modelfile.card import ModelCard
from segmentation.modelfile.read import read_checkpoint
from segmentation.models.base import thresholds_from_dict
from segmentation.models.registry import get_family


def available_devices() -> list[str]:
    """Devices this machine can run on: ``"cpu"``, then ``"cuda:0"``... and ``"mps"`` if any."""
    names = ["cpu"]
    if torch.cuda.is_available():
        names += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        names.append("mps")
    return names


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """The device to run on, checked to exist on this machine.

    Args:
        device: ``"auto"`` (CUDA when available, ``cuda:$LOCAL_RANK`` under torchrun; else the
            CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` (Apple GPUs), or a
            ``torch.device``.

    Returns:
        The ``torch.device``.

    Raises:
        ValueError: an unknown name, or a device this machine lacks; the message lists the
            devices it has.
        TypeError: neither a string nor a ``torch.device``.
    """
    if isinstance(device, str):
        name = device.strip().lower()
        if name == "auto":
            if torch.cuda.is_available():
                return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            return torch.device("cpu")
        index = name[5:] if name.startswith("cuda:") else ""
        if name not in ("cpu", "mps", "cuda") and not (index.isdigit() and index.isascii()):
            raise ValueError(
                f"unknown device {device!r}: use auto, cpu, cuda, cuda:N or mps; available: "
                f"{', '.join(available_devices())}"
            )
        target = torch.device(name)
    elif isinstance(device, torch.device):
        target = device
    else:
        raise TypeError(f"device must be a string or a torch.device, got {device!r}")
    available = ", ".join(available_devices())
    if target.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {str(device)!r} requested but CUDA is not available on this machine "
                f"(no NVIDIA GPU, or a CPU-only torch); available: {available}"
            )
        count = torch.cuda.device_count()
        if target.index is not None and target.index >= count:
            raise ValueError(
                f"device {str(device)!r} requested but this machine has {count} CUDA "
                f"device(s); available: {available}"
            )
    elif target.type == "mps" and "mps" not in available_devices():
        raise ValueError(
            f"device {str(device)!r} requested but MPS (Apple GPU) is not available on this "
            f"machine; available: {available}"
        )
    return target


class SegmentationModel:
    """A loaded model: family, ensemble members, thresholds and normalisation, on one device.

    Attributes:
        family: the family object (see :mod:`segmentation.models.registry`).
        members: the networks (in eval mode); dense families average their raw maps, Mask R-CNN
            merges their instances.
        thresholds: the decode's thresholds dataclass (tuned on validation when trained here).
        normalization: percentile normalisation ``{"low", "high"}``.
        metrics: validation metrics recorded at training time.
        recipe: the training recipe.
        model_card: the description of a shipped model (name, recipe, data, validation scores
            and the baseline's, training budget, how to retrain; see
            :mod:`segmentation.modelfile`), empty when the file has none. A
            :class:`~segmentation.modelfile.card.ModelCard`: a dict whose ``print()`` is a
            short summary; the image name lists are ``card["split"]["validation_ids"]`` and
            ``card["held_out_groups"]["test_ids"]``.
        device: where the networks run.
        routes: kinds of image that have a network of their own (``{"stained": model}`` sends
            stained tissue to ``model``; see :meth:`for_image`), empty for most models.
        size_model: the network's :class:`~segmentation.inference.size_model.SizeModel` (the
            nuclei's diameter read from its features), or ``None``.
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
        model_card: dict[str, Any] | None = None,
        routes: dict[str, SegmentationModel] | None = None,
        size_model: Any = None,
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
        self.model_card = ModelCard(model_card or {})
        self.routes = {kind: route.to(self.device) for kind, route in (routes or {}).items()}
        self.size_model = size_model

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any], device: str | torch.device = "auto"):
        """Build from a checkpoint dict (see :mod:`segmentation.modelfile`)."""
        family = get_family(ckpt["family"])
        members = []
        for member in ckpt["members"]:
            # published weights named in the recipe are not fetched again: the file holds them
            net = family.build(family.inference_config(member["config"]))
            unused = set(member.get("unused_keys", ()))  # weights the network never runs
            missing, unexpected = net.load_state_dict(member["state_dict"], strict=not unused)
            if unexpected or set(missing) - unused:
                raise ValueError(
                    f"the weights do not fit the network: missing {sorted(set(missing) - unused)}"
                    f", unexpected {sorted(unexpected)}; the model file is damaged"
                )
            members.append(net)
        routes = {k: cls.from_checkpoint(r, device) for k, r in (ckpt.get("routes") or {}).items()}
        size_model = None
        if ckpt.get("size_model"):
            size_model = SizeModel.from_dict(ckpt["size_model"])
        return cls(
            ckpt["family"],
            members,
            ckpt.get("thresholds"),
            ckpt.get("normalization"),
            ckpt.get("metrics"),
            ckpt.get("recipe"),
            device,
            ckpt.get("model_card"),
            routes,
            size_model,
        )

    @property
    def channels(self) -> tuple[str, ...]:
        """Names of the raw map channels (dense families), else ``()``."""
        return tuple(getattr(self.family, "channels", ()))

    def to(self, device: str | torch.device) -> SegmentationModel:
        """Move the networks to ``device`` (in place); returns the model."""
        self.device = resolve_device(device)
        self.members = [m.to(self.device) for m in self.members]
        for route in self.routes.values():
            route.to(self.device)
        return self

    def for_image(self, image: np.ndarray, stained_view: str | None = None) -> SegmentationModel:
        """The model whose network segments ``image``: its route, or this model.

        Args:
            image: ``(H, W, C)`` array after the channel choice (``C`` in ``{1, 3}``).
            stained_view: the view of stained tissue the caller asked for
                (``SegmentOptions.stained_view``); ``None`` takes the route's own. A route
                trained on another view is passed over for this model's network.

        Returns:
            ``self.routes[view_kind(image)]`` when there is one (and it was trained on
            ``stained_view``), else ``self``.
        """
        from segmentation.datasets.nuclear_view import recipe_stained_view, view_kind

        if not self.routes:
            return self
        route = self.routes.get(view_kind(image))
        if route is None:
            return self
        if stained_view is not None and stained_view != recipe_stained_view(route.recipe):
            return self
        return route

    def thresholds_dict(self) -> dict[str, Any]:
        """The thresholds as a plain dict."""
        return asdict(self.thresholds) if is_dataclass(self.thresholds) else dict(self.thresholds)

    def prepare(self, image: np.ndarray | str | os.PathLike) -> np.ndarray:
        """Image (array or path) -> normalised ``(3, H, W)`` float32 network input, stained
        tissue seen as the model was trained (:mod:`segmentation.datasets.nuclear_view`); for
        this model's own network (a route prepares with ``model.for_image(image).prepare``)."""
        from segmentation.datasets.nuclear_view import nuclear_view, recipe_stained_view

        array = nuclear_view(as_image_array(image), recipe_stained_view(self.recipe))
        lo, hi = intensity_range(array, self.normalization["low"], self.normalization["high"])
        return normalized_window(array, lo, hi, 0, 0, *array.shape[:2])

    @torch.no_grad()
    def forward(self, batch: torch.Tensor) -> list[list[Any]]:
        """Run every member on a ``(B, 3, H, W)`` float32 batch (on any device).

        Returns:
            Dense families: ``[maps]``, one list of ``B`` ``(C, H, W)`` float32 maps averaged over
            the members. Mask R-CNN: one list of ``B`` instance dicts per member.
        """
        x = batch.to(self.device)
        outputs = [self.family.predict(net, x) for net in self.members]
        if not self.family.dense:
            return outputs
        mean = [sum(maps) / len(self.members) for maps in zip(*outputs, strict=True)]
        return [[np.asarray(m, np.float32) for m in mean]]

    def predict_raw(self, chw: np.ndarray) -> Any:
        """Normalised ``(3, H, W)`` float32 -> raw outputs for the whole image (one pass).

        Dense families: ``(C, H, W)`` float32 maps averaged over members (the input is padded to
        a multiple of :data:`INPUT_MULTIPLE` by reflection). Mask R-CNN: the instance dict,
        merged over members.
        """
        from segmentation.inference.instances import merge_views

        height, width = chw.shape[1:]
        x = torch.from_numpy(np.ascontiguousarray(chw, dtype=np.float32))[None]
        if not self.family.dense:
            views = [out[0] for out in self.forward(x)]
            mask_threshold = getattr(self.thresholds, "mask_threshold", 0.5)
            return merge_views(views, (height, width), mask_threshold, 0.5)
        pad_h = (-height) % INPUT_MULTIPLE
        pad_w = (-width) % INPUT_MULTIPLE
        if pad_h or pad_w:
            mode = "reflect" if pad_h < height and pad_w < width else "replicate"
            x = torch.nn.functional.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        return self.forward(x)[0][0][:, :height, :width]


def load_model(path: str | os.PathLike, device: str | torch.device = "auto") -> SegmentationModel:
    """Load a model file written by ``segmentation train`` (needs nothing else).

    Args:
        path: the ``.pt`` model file.
        device: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``...

    Returns:
        A :class:`SegmentationModel` ready for :func:`segmentation.segment`.

    Raises:
        FileNotFoundError: no such file. ValueError: not a model file written by ``segmentation
            train`` (random bytes, an empty file, a YAML recipe...), or a corrupt one (its weights
            checksum does not match: "model file X is corrupt (checksum mismatch): re-download or
            retrain it"). Files written before checksums existed load with one warning.
    """
    return SegmentationModel.from_checkpoint(read_checkpoint(Path(path)), device)
