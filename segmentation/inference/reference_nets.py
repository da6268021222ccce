"""Fixed, training-free "networks" for the dense families, built from classical image filters.

They map a normalised ``(B, 3, H, W)`` image of bright nuclei on a dark background (fluorescence;
``invert=True`` for dark nuclei on a bright background) to the logits a trained U-Net or FPN would
give, with fixed convolutions: Gaussian smoothing, a wide local-mean background (``context``
pixels each way, the widest reach), Sobel gradients and Hessian curvature. Their outputs look like
nucleus maps, so they exercise tiling, test-time augmentation, block decoding and benchmarks of the
post-processing on realistic maps without trained weights (none can be downloaded here); they are
translation-equivariant like a real network, and their reach is known (``context`` plus the
smoothing radius). Defaults were set on synthetic fluorescence images (DSB score about 0.6 against
the truth); they are not models to segment real data with.

Use them with :class:`~segmentation.inference.model.SegmentationModel`::

    model = SegmentationModel("unet", [ReferenceUnet()], device="cpu")
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _gaussian(sigma: float) -> torch.Tensor:
    """1-D Gaussian kernel ``(k,)``, radius ``ceil(3 sigma)``, sum 1."""
    radius = max(1, int(math.ceil(3 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _separable(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Zero-padded 2-D convolution of ``(B, 1, H, W)`` with the outer product of a 1-D kernel."""
    r = kernel.numel() // 2
    x = F.conv2d(x, kernel.view(1, 1, -1, 1), padding=(r, 0))
    return F.conv2d(x, kernel.view(1, 1, 1, -1), padding=(0, r))


def _local_mean(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over the ``(2r + 1)^2`` window, counting only pixels inside the image (separable)."""
    k = 2 * radius + 1
    x = F.avg_pool2d(x, (k, 1), stride=1, padding=(radius, 0), count_include_pad=False)
    return F.avg_pool2d(x, (1, k), stride=1, padding=(0, radius), count_include_pad=False)


class _Filters(nn.Module):
    """Shared filter bank: smoothing, background, gradients, curvature (all fixed buffers)."""

    def __init__(self, sigma: float, context: int, invert: bool):
        super().__init__()
        self.context = int(context)
        self.invert = bool(invert)
        self.register_buffer("gauss", _gaussian(sigma))
        sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8.0
        second = torch.tensor(
            [
                [[0.0, 0.0, 0.0], [1.0, -2.0, 1.0], [0.0, 0.0, 0.0]],  # d2/dx2
                [[0.0, 1.0, 0.0], [0.0, -2.0, 0.0], [0.0, 1.0, 0.0]],  # d2/dy2
                [[0.25, 0.0, -0.25], [0.0, 0.0, 0.0], [-0.25, 0.0, 0.25]],  # d2/dxdy
            ]
        )
        self.register_buffer("grad", torch.stack([sobel, sobel.T])[:, None])
        self.register_buffer("hessian", second[:, None])

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        m = x.float().mean(dim=1, keepdim=True)
        if self.invert:
            m = 1.0 - m
        s = _separable(m, self.gauss)
        background = _local_mean(s, self.context)
        g = F.conv2d(s, self.grad, padding=1)
        h = F.conv2d(s, self.hessian, padding=1)
        dxx, dyy, dxy = h[:, 0:1], h[:, 1:2], h[:, 2:3]
        spread = torch.sqrt(((dxx - dyy) / 2) ** 2 + dxy**2)
        return {
            "smooth": s,
            "signal": s - 0.5 * background,
            "gx": g[:, 0:1],
            "gy": g[:, 1:2],
            "curvature": (dxx + dyy) / 2 + spread,  # largest Hessian eigenvalue: > 0 in valleys
        }


class ReferenceUnet(nn.Module):
    """Body, border and contact logits ``(B, 3, H, W)`` for the ``unet`` family.

    Args:
        sigma: Gaussian smoothing (pixels).
        context: half-width of the local-mean background window (pixels).
        level: background-corrected intensity above which a pixel is nucleus.
        edge: gradient magnitude above which a pixel is border.
        valley: curvature above which a nucleus pixel is a contact between two nuclei.
        gain: steepness of the logits.
        invert: dark nuclei on a bright background.
    """

    def __init__(
        self,
        sigma: float = 1.5,
        context: int = 15,
        level: float = 0.15,
        edge: float = 0.1,
        valley: float = 0.01,
        gain: float = 40.0,
        invert: bool = False,
    ):
        super().__init__()
        self.filters = _Filters(sigma, context, invert)
        self.level, self.edge, self.valley, self.gain = level, edge, valley, gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.filters.features(x)
        body = self.gain * (f["signal"] - self.level)
        magnitude = torch.sqrt(f["gx"] ** 2 + f["gy"] ** 2 + 1e-12)
        border = self.gain * (magnitude - self.edge)
        contact = torch.minimum(self.gain * 4 * (f["curvature"] - self.valley), body)
        return torch.cat([body, border, contact], dim=1)


class ReferenceFpn(nn.Module):
    """Foreground, energy, cos and sin logits ``(B, 4, H, W)`` for the ``fpn`` family.

    Energy is the smoothed intensity relative to its local maximum (``peak`` pixels each way), so
    every nucleus's brightest core is 1 and a dimmer valley between two touching nuclei is lower;
    the direction towards the centre is the intensity gradient (uphill).

    Args:
        sigma, context, level, gain, invert: as for :class:`ReferenceUnet`.
        peak: half-width of the local-maximum window (pixels).
        core: relative intensity above which energy exceeds 0.5.
    """

    def __init__(
        self,
        sigma: float = 1.0,
        context: int = 15,
        level: float = 0.15,
        peak: int = 8,
        core: float = 0.8,
        gain: float = 40.0,
        invert: bool = False,
    ):
        super().__init__()
        self.filters = _Filters(sigma, context, invert)
        self.level, self.peak, self.core, self.gain = level, int(peak), core, gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.filters.features(x)
        foreground = self.gain * (f["signal"] - self.level)
        s = f["smooth"]
        k, p = 2 * self.peak + 1, self.peak
        local_max = F.max_pool2d(s, (k, 1), stride=1, padding=(p, 0))
        local_max = F.max_pool2d(local_max, (1, k), stride=1, padding=(0, p))
        ratio = s / local_max.clamp_min(1e-3)
        energy = self.gain * (ratio - self.core)
        norm = torch.sqrt(f["gx"] ** 2 + f["gy"] ** 2 + 1e-8)
        direction = torch.atanh(0.95 * torch.cat([f["gx"], f["gy"]], dim=1) / norm)
        return torch.cat([foreground, energy, direction], dim=1)
