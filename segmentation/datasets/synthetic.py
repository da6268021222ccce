"""Synthetic nuclei: an image with its exact label image, for tests, demos and benchmarks.

Nuclei are ellipses with a slightly wavy outline, placed one after the other. With
``touching=True`` about half of them are placed against an earlier nucleus; a new nucleus may cover
up to ``overlap`` of its own area with earlier ones, and the earlier nucleus keeps the shared pixels
(it lies on top). A candidate is rejected when it would be split in two, or keep too few pixels, so
every label ``1..N`` is present and 4-connected. The image is rendered from the final label image,
so labels are exact: per-nucleus brightness, a rim-to-centre profile, smooth texture, optical blur
and noise, in one of three looks (dark-field fluorescence, brightfield, H&E-like histology).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import ndimage

from segmentation.datasets.sample_type import Sample

MODALITIES = ("fluorescence", "brightfield", "histology")


def _check_args(shape, n_nuclei, modality, radius_range, overlap) -> tuple[int, int]:
    if len(shape) != 2 or min(shape) < 8:
        raise ValueError(f"shape must be (H, W) with H, W >= 8, got {shape}")
    if not isinstance(n_nuclei, int | np.integer) or n_nuclei < 0:
        raise ValueError(f"n_nuclei must be an integer >= 0, got {n_nuclei!r}")
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
    if len(radius_range) != 2 or not 1.5 <= radius_range[0] <= radius_range[1]:
        raise ValueError(
            f"radius_range must be (low, high) with 1.5 <= low <= high, got {radius_range}"
        )
    if not 0.0 <= overlap < 0.5:
        raise ValueError(f"overlap must be in [0, 0.5), got {overlap}")
    return int(shape[0]), int(shape[1])


def _place(labels, profile, k, cy, cx, a, b, theta, wobble, overlap, touching) -> bool:
    """Try to paint ellipse ``k``; returns False (and paints nothing) when rejected."""
    height, width = labels.shape
    margin = 0 if touching else 2
    reach = int(math.ceil(a * 1.1)) + margin + 1
    y0, y1 = max(0, int(cy) - reach), min(height, int(cy) + reach + 1)
    x0, x1 = max(0, int(cx) - reach), min(width, int(cx) + reach + 1)
    if y1 <= y0 or x1 <= x0:
        return False
    dy = np.arange(y0, y1, dtype=np.float32)[:, None] - cy
    dx = np.arange(x0, x1, dtype=np.float32)[None, :] - cx
    cos, sin = math.cos(theta), math.sin(theta)
    u = (dx * cos + dy * sin) / a
    v = (-dx * sin + dy * cos) / b
    angle = np.arctan2(v, u)
    outline = 1.0 + wobble[0] * np.sin(3 * angle + wobble[1]) + wobble[2] * np.sin(5 * angle)
    rho = np.sqrt(u * u + v * v) / outline
    inside = rho <= 1.0
    window = labels[y0:y1, x0:x1]
    if margin and np.any(window[rho <= 1.0 + margin / b]):
        return False
    own = inside & (window == 0)
    n_inside, n_own = int(inside.sum()), int(own.sum())
    if n_own < max(4, 0.3 * math.pi * a * b) or n_inside - n_own > overlap * n_inside:
        return False
    if ndimage.label(own)[1] != 1:
        return False
    window[own] = k
    profile[y0:y1, x0:x1][own] = 1.0 - rho[own] ** 2
    return True


def _render(labels, profile, modality, rng) -> np.ndarray:
    n = int(labels.max())
    shape = labels.shape
    texture = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), 1.5)
    texture *= np.float32(1.0 / max(float(texture.std()), 1e-6))
    strength = np.concatenate(([0.0], rng.uniform(0.35, 1.0, n))).astype(np.float32)[labels]
    nucleus = strength * (0.7 + 0.3 * profile) * (1.0 + 0.12 * texture)
    inside = labels > 0
    if modality == "fluorescence":
        image = np.where(inside, nucleus, np.float32(0.04))[..., None]
        noise_sd = 0.025
    elif modality == "brightfield":
        ramp = np.linspace(-0.05, 0.05, shape[1], dtype=np.float32)[None, :]
        background = 0.82 + ramp + 0.01 * texture
        image = np.where(inside, background - 0.55 * nucleus, background)[..., None]
        noise_sd = 0.02
    else:  # histology: pink eosin stroma, purple hematoxylin nuclei
        stroma = np.clip(0.5 + 0.35 * ndimage.gaussian_filter(texture, 4.0), 0.0, 1.0)[..., None]
        white = np.array([0.95, 0.93, 0.95], np.float32)
        eosin = np.array([0.90, 0.55, 0.75], np.float32)
        hema = np.array([0.30, 0.18, 0.50], np.float32)
        background = white + (eosin - white) * stroma
        darkness = np.clip(0.55 + 0.45 * nucleus, 0.0, 1.0)[..., None]
        stained = background + (hema - background) * darkness
        image = np.where(inside[..., None], stained, background)
        noise_sd = 0.02
    image = ndimage.gaussian_filter(image, sigma=(0.8, 0.8, 0))
    image += rng.normal(0.0, noise_sd, image.shape).astype(np.float32)
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def synthetic_nuclei(
    shape: tuple[int, int] = (256, 256),
    n_nuclei: int = 40,
    *,
    seed: int = 0,
    modality: str = "fluorescence",
    radius_range: tuple[float, float] = (5, 18),
    touching: bool = True,
    overlap: float = 0.1,
) -> Sample:
    """Draw an image of nuclei with its exact label image.

    Args:
        shape: ``(H, W)`` of the image.
        n_nuclei: number of nuclei wanted; fewer are placed (with a warning) when the image cannot
            hold them.
        seed: seed of the random generator; the same arguments give the same sample.
        modality: ``"fluorescence"`` (bright nuclei on black, 1 channel), ``"brightfield"`` (dark
            nuclei on a bright background, 1 channel) or ``"histology"`` (purple nuclei on pink
            stroma, 3 channels).
        radius_range: range of the ellipses' major semi-axis in pixels (the minor one is 0.6-1x).
        touching: place about half of the nuclei against earlier ones; when False, nuclei keep at
            least 2 pixels apart and ``overlap`` is ignored.
        overlap: largest fraction of a nucleus' ellipse that earlier nuclei may cover, in
            ``[0, 0.5)``.

    Returns:
        :class:`Sample` named ``"synthetic-<modality>-<seed>"`` with a ``(H, W, C)`` uint8 image
        (``C`` = 1, or 3 for histology) and ``(H, W)`` int32 labels ``1..N``, each label present
        and 4-connected.
    """
    height, width = _check_args(shape, n_nuclei, modality, radius_range, overlap)
    rng = np.random.default_rng(seed)
    labels = np.zeros((height, width), dtype=np.int32)
    profile = np.zeros((height, width), dtype=np.float32)
    placed: list[tuple[float, float, float]] = []
    attempts, max_attempts = 0, 30 * n_nuclei + 100
    while len(placed) < n_nuclei and attempts < max_attempts:
        attempts += 1
        a = rng.uniform(*radius_range)
        b = a * rng.uniform(0.6, 1.0)
        theta = rng.uniform(0.0, math.pi)
        wobble = (rng.uniform(0.0, 0.06), rng.uniform(0.0, 2 * math.pi), rng.uniform(0.0, 0.03))
        if touching and placed and rng.random() < 0.5:
            cy, cx, r = placed[rng.integers(len(placed))]
            phi = rng.uniform(0.0, 2 * math.pi)
            dist = (r + 0.5 * (a + b)) * rng.uniform(0.85, 1.05)
            cy, cx = cy + dist * math.sin(phi), cx + dist * math.cos(phi)
            if not (0 <= cy < height and 0 <= cx < width):
                continue
        else:
            cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        k = len(placed) + 1
        if _place(labels, profile, k, cy, cx, a, b, theta, wobble, overlap, touching):
            placed.append((cy, cx, 0.5 * (a + b)))
    if len(placed) < n_nuclei:
        warnings.warn(
            f"synthetic_nuclei placed {len(placed)} of {n_nuclei} nuclei: the {shape} image is "
            "too full; use a larger shape, smaller radius_range or fewer nuclei",
            stacklevel=2,
        )
    image = _render(labels, profile, modality, rng)
    return Sample(name=f"synthetic-{modality}-{seed}", image=image, labels=labels)
