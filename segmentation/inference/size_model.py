"""A size model: the nuclei's diameter read from the network's own features (Cellpose's idea).

The first segmentation pass of an image with large nuclei may cut each nucleus into pieces of about
the training size; the sizes of the masks then say "the right size" and the image is never shrunk.
The encoder sees more than the masks: its deepest features summarise texture and shape over a
receptive field of a few nuclei. As in Cellpose's ``SizeModel``, the style of an image (the global
average of its two deepest encoder stages, each scaled to unit length) is mapped to the log of its
median nucleus diameter by ridge regression, fitted on training images shown at random scales
(:mod:`segmentation.training.size_fit`). Each network of a model file (the main one, a route) has
its own size model, stored in the file (``size_model``) and covered by its checksum.

:func:`estimate_size` gives the style's estimate of a prepared image; ``segment()`` reads the style
from its own first pass instead (:class:`StyleRecorder`: the encoder has run on the image's tiles
anyway) and uses the estimate as :mod:`segmentation.inference.diameter` describes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from segmentation.inference.inputs import INPUT_MULTIPLE

#: Side of the windows the style is computed on when fitting (a multiple of the networks' stride):
#: ``segment()``'s tile on a CPU, whose first pass gives the style at inference. Pooled over 512-px
#: windows instead, the style of a 768 x 1024 Huh7 image read nuclei 10-15 % smaller.
STYLE_TILE = 1024
#: At most this many windows per image (a regular grid over larger images).
MAX_STYLE_TILES = 4


@dataclass(frozen=True)
class SizeModel:
    """Ridge regression from a style vector to the log of the median nucleus diameter.

    Attributes:
        mean: ``float64 (F,)`` mean style of the fitting set.
        weights: ``float64 (F,)`` regression weights on the centred style.
        bias: mean log diameter of the fitting set.
        fitted_on: what it was fitted on (images, scales, cross-validated error), for the card.
    """

    mean: np.ndarray
    weights: np.ndarray
    bias: float
    fitted_on: dict[str, Any]

    def predict(self, style: np.ndarray) -> float:
        """Diameter in pixels (float) of the image whose style is ``style`` (``(F,)`` float)."""
        style = np.asarray(style, np.float64)
        if style.shape != self.mean.shape:
            raise ValueError(
                f"style has shape {style.shape}, the size model expects {self.mean.shape}: it was "
                "fitted on another network"
            )
        return float(np.exp(self.weights @ (style - self.mean) + self.bias))

    def to_dict(self) -> dict[str, Any]:
        """Plain form stored in a model file (tensors and plain values)."""
        return {
            "mean": torch.from_numpy(self.mean.astype(np.float32)),
            "weights": torch.from_numpy(self.weights.astype(np.float32)),
            "bias": float(self.bias),
            "fitted_on": dict(self.fitted_on),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SizeModel:
        """Inverse of :meth:`to_dict`."""
        mean = np.asarray(torch.as_tensor(d["mean"]).float().numpy(), np.float64)
        weights = np.asarray(torch.as_tensor(d["weights"]).float().numpy(), np.float64)
        return cls(mean, weights, float(d["bias"]), dict(d.get("fitted_on") or {}))


def _windows(height: int, width: int, tile: int, limit: int) -> list[tuple[int, int, int, int]]:
    """Up to ``limit`` windows ``(top, left, h, w)`` of at most ``tile`` square, on a grid."""
    rows = 1 if height <= tile else min(int(np.ceil(height / tile)), 2)
    cols = 1 if width <= tile else min(int(np.ceil(width / tile)), max(1, limit // rows))
    out = []
    for r in range(rows):
        for c in range(cols):
            h, w = min(tile, height), min(tile, width)
            top = 0 if rows == 1 else round(r * (height - h) / (rows - 1))
            left = 0 if cols == 1 else round(c * (width - w) / (cols - 1))
            out.append((top, left, h, w))
    return out[:limit]


def pooled_stages(output: Any) -> list[torch.Tensor]:
    """The global averages of the two deepest stages of an smp encoder's output: ``[(B, C1),
    (B, C2)]`` float32 on the CPU."""
    return [f.float().mean(dim=(2, 3)).cpu() for f in output[-2:]]


def style_from_sums(sums: list[torch.Tensor], count: int) -> np.ndarray:
    """The style from summed :func:`pooled_stages` rows (``(C,)`` each) of ``count`` windows:
    each stage's mean scaled to unit length, concatenated, ``float64 (F,)``."""
    stages = [s / count for s in sums]
    stages = [s / (s.norm() + 1e-8) for s in stages]
    return torch.cat(stages).double().numpy()


class StyleRecorder:
    """Records the pooled deepest encoder stages of every forward pass of a model's networks, so
    that ``segment()`` reads an image's style from its first pass at no extra cost.

    Use as a context manager around network calls; :meth:`take` returns the rows of the last
    call, averaged over the members (``[(B, C1), (B, C2)]``), and clears them.
    """

    def __init__(self, members: list[torch.nn.Module]):
        self.members = members
        self.rows: list[list[torch.Tensor]] = []
        self.hooks: list[Any] = []

    def __enter__(self) -> StyleRecorder:
        def hook(_module: Any, _inputs: Any, output: Any) -> None:
            self.rows.append(pooled_stages(output))

        self.hooks = [net.encoder.register_forward_hook(hook) for net in self.members]
        return self

    def __exit__(self, *exc: Any) -> None:
        for handle in self.hooks:
            handle.remove()
        self.hooks = []

    def take(self) -> list[torch.Tensor]:
        rows, self.rows = self.rows, []
        return [sum(stage) / len(rows) for stage in zip(*rows, strict=True)]


@torch.no_grad()
def style_vector(
    members: list[torch.nn.Module], chw: np.ndarray, device: torch.device | str = "cpu"
) -> np.ndarray:
    """The style of a normalised image: ``float64 (F,)``.

    Args:
        members: the networks of one model (smp encoder-decoders with ``.encoder``); their
            styles are averaged.
        chw: ``(3, H, W)`` float32 network input (normalised, in the network's view).
        device: where the encoders run.

    Returns:
        The global averages of the two deepest encoder stages over up to
        :data:`MAX_STYLE_TILES` windows of :data:`STYLE_TILE` pixels, each stage scaled to unit
        length, concatenated (``F`` = the two stages' channels).
    """
    if chw.ndim != 3 or chw.shape[0] != 3:
        raise ValueError(f"chw must be a (3, H, W) normalised image, got shape {chw.shape}")
    height, width = chw.shape[1:]
    sums: list[torch.Tensor] | None = None
    windows = _windows(height, width, STYLE_TILE, MAX_STYLE_TILES)
    for top, left, h, w in windows:
        x = torch.from_numpy(np.ascontiguousarray(chw[:, top : top + h, left : left + w]))[None]
        pad_h, pad_w = (-h) % INPUT_MULTIPLE, (-w) % INPUT_MULTIPLE
        if pad_h or pad_w:
            mode = "reflect" if pad_h < h and pad_w < w else "replicate"
            x = torch.nn.functional.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        x = x.to(device)
        pooled = [
            sum(stage) / len(members)
            for stage in zip(*(pooled_stages(net.encoder(x)) for net in members), strict=True)
        ]
        pooled = [p[0] for p in pooled]
        sums = pooled if sums is None else [a + b for a, b in zip(sums, pooled, strict=True)]
    return style_from_sums(sums, len(windows))


def estimate_size(model: Any, chw: np.ndarray) -> float | None:
    """The diameter (pixels) a model's size model reads from a prepared image, or ``None`` when
    the model has no size model.

    Args:
        model: a :class:`~segmentation.inference.model.SegmentationModel` (the network that
            segments the image: a route for its kind of image, or the main one).
        chw: ``(3, H, W)`` float32 input as ``model.prepare`` gives it.
    """
    size_model = getattr(model, "size_model", None)
    if size_model is None:
        return None
    return size_model.predict(style_vector(model.members, chw, model.device))
