"""Training crops cut, augmented and batched on the training device, from targets computed once.

:class:`CropDataset` computes a crop's targets from its labels on the CPU for every crop (about 100
crops/s per core): too slow to feed a GPU. :class:`TensorCrops` instead computes each image's
targets once, keeps the normalised images and their targets as tensors on the training device, and
cuts a whole batch of crops there in a few tensor operations:

* geometry, the same for an image and its targets: a random window at a random zoom (``scale``),
  a random 90-degree rotation and random flips (bilinear sampling for the image, nearest for the
  targets; outside the image the image's median and target 0, as :class:`CropDataset` pads).
  Targets must be maps that such a transform leaves valid: scalar maps like the U-Net family's
  body, border and contact (not direction fields);
* photometry, per crop, on the network's input range mapped to ``[0, 1]``: brightness and contrast,
  gamma, Gaussian blur and noise, inversion of bright-background images (``image_type``
  brightfield), and for colour images random grayscale, a per-channel gain (stain) jitter and
  inversion.

Images are drawn with weights ``n_type ** -type_balance`` (``n_type``: images of the same
:func:`~segmentation.datasets.image_types.image_type`), so ``type_balance=1`` gives each image type
the same share of crops and ``0`` each image the same share.

Reproducible: a batch depends only on ``(seed, epoch, step)`` and the device type.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from segmentation.datasets.image_types import image_type
from segmentation.datasets.labels import validate_labels
from segmentation.datasets.normalize import CLIP_HIGH, CLIP_LOW, normalize_image
from segmentation.datasets.nuclear_view import nuclear_view
from segmentation.datasets.sample_type import Sample

_SPAN = CLIP_HIGH - CLIP_LOW


@dataclass(frozen=True)
class Photometric:
    """Probabilities and ranges of the photometric augmentation (all per crop).

    Attributes:
        p: probability of brightness/contrast and of gamma (blur and noise use ``p / 2``).
        brightness, contrast: half-widths of the additive and multiplicative jitter.
        gamma: ``(low, high)`` range of the gamma exponent.
        blur_sigma: ``(low, high)`` Gaussian blur sigma in pixels.
        noise_std: ``(low, high)`` standard deviation of the added Gaussian noise.
        invert_bright: probability of inverting a bright-background (brightfield) image.
        invert_colour: probability of inverting a colour (stained-tissue) image, whose
            background is bright too.
        grayscale: probability of turning a colour image gray (its channel mean).
        stain: half-width of the per-channel gain jitter of colour images (0 switches it off).
    """

    p: float = 0.5
    brightness: float = 0.15
    contrast: float = 0.2
    gamma: tuple[float, float] = (0.7, 1.5)
    blur_sigma: tuple[float, float] = (0.3, 1.2)
    noise_std: tuple[float, float] = (0.005, 0.03)
    invert_bright: float = 0.5
    invert_colour: float = 0.0
    grayscale: float = 0.0
    stain: float = 0.0


def _as_chw_uint8(image: np.ndarray) -> np.ndarray:
    """Normalised ``(H, W, C)`` float32 in [CLIP_LOW, CLIP_HIGH] -> ``(3, H, W)`` uint8."""
    q = np.rint((image - CLIP_LOW) * (255.0 / _SPAN)).astype(np.uint8)
    chw = np.moveaxis(q, 2, 0)
    return np.ascontiguousarray(np.broadcast_to(chw, (3, *chw.shape[1:])))


class TensorCrops:
    """Random augmented training crops of whole images, cut in batches on ``device``.

    Args:
        samples: samples with labels; images ``(H, W, C)`` uint8/uint16, labels ``(H, W)``.
        encode: ``(H, W)`` int32 labels -> ``(K, H, W)`` float32 target maps (a dense family's
            ``encode_targets``); called once per image.
        crop_size: side of the square crops.
        device: where the images, targets and crops live.
        scale: ``(low, high)`` zoom range (applied with probability ``photometric.p``).
        type_balance: exponent of the image-type weighting (module docstring), in ``[0, 1]``.
        photometric: the photometric augmentation; ``None`` switches it off.
        stained_view: how stained tissue is seen (:func:`~segmentation.datasets.nuclear_view.
            nuclear_view`); image types (for ``type_balance``) come from the images as given.
        seed: base seed.

    Memory: 3 bytes per image pixel plus ``K`` bytes (binary targets) or ``2 K`` bytes (float16
    targets) per pixel, on ``device``.
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        encode: Callable[[np.ndarray], np.ndarray],
        crop_size: int,
        device: torch.device | str = "cpu",
        *,
        scale: tuple[float, float] = (0.75, 1.33),
        type_balance: float = 0.0,
        photometric: Photometric | None = None,
        stained_view: str = "rgb",
        seed: int = 0,
    ) -> None:
        if not samples:
            raise ValueError("TensorCrops needs at least one sample")
        if int(crop_size) < 8:
            raise ValueError(f"crop_size must be an int >= 8, got {crop_size}")
        if not 0 < scale[0] <= scale[1]:
            raise ValueError(f"scale must be (low, high) with 0 < low <= high, got {scale}")
        if not 0.0 <= type_balance <= 1.0:
            raise ValueError(f"type_balance must lie in [0, 1], got {type_balance}")
        unlabeled = [s.name for s in samples if s.labels is None]
        if unlabeled:
            raise ValueError(f"samples without labels cannot be used for training: {unlabeled[:5]}")
        self.device = torch.device(device)
        self.crop_size = int(crop_size)
        self.scale = (float(scale[0]), float(scale[1]))
        self.photometric = photometric
        self.seed = int(seed)
        self.epoch = 0
        images, targets, shapes, pads, bright, colour, types = [], [], [], [], [], [], []
        for s in samples:
            labels = validate_labels(s.labels, s.image.shape)
            maps = np.asarray(encode(labels))
            if maps.ndim != 3 or maps.shape[1:] != labels.shape:
                raise ValueError(
                    f"encode must return (K, H, W) maps for {labels.shape} labels, got {maps.shape}"
                )
            norm = normalize_image(nuclear_view(s.image, stained_view))
            images.append(_as_chw_uint8(norm).reshape(3, -1))
            binary = bool(np.isin(maps, (0.0, 1.0)).all())
            targets.append(
                maps.reshape(maps.shape[0], -1).astype(np.uint8 if binary else np.float16)
            )
            shapes.append(labels.shape)
            pads.append(np.median(images[-1], axis=1).astype(np.float32) / 255.0)
            kind = image_type(s.image)
            types.append(kind)
            bright.append(kind == "brightfield")
            colour.append(norm.shape[2] == 3 and not np.array_equal(norm[..., 0], norm[..., 1]))
        self.channels = targets[0].shape[0]
        if any(t.shape[0] != self.channels for t in targets):
            raise ValueError("encode returned different channel counts for different images")
        self.binary_targets = all(t.dtype == np.uint8 for t in targets)
        tdtype = np.uint8 if self.binary_targets else np.float16
        sizes = [h * w for h, w in shapes]
        offsets = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
        self._images = torch.from_numpy(np.concatenate(images, axis=1)).to(self.device)
        self._targets = torch.from_numpy(
            np.concatenate([t.astype(tdtype) for t in targets], axis=1)
        ).to(self.device)
        self._offsets = torch.from_numpy(offsets[:-1]).to(self.device)
        self._heights = torch.tensor([h for h, _ in shapes], device=self.device)
        self._widths = torch.tensor([w for _, w in shapes], device=self.device)
        self._pads = torch.from_numpy(np.stack(pads)).to(self.device)
        self._heights_cpu = torch.tensor([h for h, _ in shapes])
        self._widths_cpu = torch.tensor([w for _, w in shapes])
        self._bright_cpu = torch.tensor(bright)
        self._colour_cpu = torch.tensor(colour)
        counts = {t: types.count(t) for t in set(types)}
        weights = np.array([counts[t] ** -float(type_balance) for t in types], dtype=np.float64)
        self.weights = torch.from_numpy(weights / weights.sum())  # (N,) float64, on the CPU
        self.type_counts = counts

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose batches :meth:`batch` and :meth:`epoch_batches` draw."""
        self.epoch = int(epoch)

    def _generator(self, step: int) -> torch.Generator:
        """A CPU generator for batch ``step`` of the current epoch: every per-crop decision is
        drawn on the CPU (so drawing never waits for the GPU, and the crops and their
        augmentation parameters are the same on any device); only the noise field is drawn on the
        device, from a seed drawn here."""
        seed = int(np.random.SeedSequence([self.seed, self.epoch, step]).generate_state(1)[0])
        return torch.Generator().manual_seed(seed)

    def batch(self, size: int, step: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """One batch of crops.

        Args:
            size: crops in the batch.
            step: index of the batch within the epoch (changes the draw).

        Returns:
            ``(images, targets)`` on ``device``: ``(B, 3, S, S)`` float32 network input (range
            ``[CLIP_LOW, CLIP_HIGH]``) and ``(B, K, S, S)`` float32 target maps.
        """
        g = self._generator(step)
        dev, n, s = self.device, int(size), self.crop_size
        k = torch.multinomial(self.weights, n, replacement=True, generator=g)
        p = self.photometric.p if self.photometric is not None else 0.5
        log_zoom = torch.empty(n).uniform_(
            math.log(self.scale[0]), math.log(self.scale[1]), generator=g
        )
        zoom = torch.where(torch.rand(n, generator=g) < p, torch.exp(log_zoom), torch.ones(n))
        # output offsets (u right, v down) from the crop centre -> source offsets: M (u, v)
        quarter = torch.randint(0, 4, (n,), generator=g)
        flip = torch.rand(n, 2, generator=g) < 0.5
        cos_t = torch.tensor([1.0, 0.0, -1.0, 0.0])[quarter]
        sin_t = torch.tensor([0.0, 1.0, 0.0, -1.0])[quarter]
        fx = torch.where(flip[:, 0], -1.0, 1.0)
        fy = torch.where(flip[:, 1], -1.0, 1.0)
        # matrix M (n, 2, 2): flips first, then rotation, then zoom
        m = (
            torch.stack(
                [
                    torch.stack([cos_t * fx, -sin_t * fy], dim=1),
                    torch.stack([sin_t * fx, cos_t * fy], dim=1),
                ],
                dim=1,
            )
            / zoom[:, None, None]
        )
        half = s / (2.0 * zoom)  # half the window side in source pixels
        cy = self._centre(self._heights_cpu[k].float(), half, g)
        cx = self._centre(self._widths_cpu[k].float(), half, g)
        k_dev, m, cx, cy = (self._to_device(t) for t in (k, m, cx, cy))
        grid = torch.arange(s, device=dev, dtype=torch.float32) - (s - 1) / 2.0
        v, u = torch.meshgrid(grid, grid, indexing="ij")
        uv = torch.stack([u.reshape(-1), v.reshape(-1)])  # (2, S*S)
        src = m @ uv  # (n, 2, S*S)
        x = src[:, 0] + cx[:, None] - 0.5
        y = src[:, 1] + cy[:, None] - 0.5
        images = self._bilinear(k_dev, x, y).view(n, 3, s, s)
        targets = self._nearest(k_dev, x, y).view(n, self.channels, s, s)
        if self.photometric is not None:
            images = self._photometric(images, k, g)
        return images * _SPAN + CLIP_LOW, targets

    def _to_device(self, t: torch.Tensor) -> torch.Tensor:
        """A small CPU tensor on the device without waiting for the GPU: a copy from pageable
        memory would first wait for the stream's queued work; from pinned memory it does not."""
        if self.device.type != "cuda":
            return t.to(self.device)
        return t.pin_memory().to(self.device, non_blocking=True)

    @staticmethod
    def _centre(extent: torch.Tensor, half: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """Window centre along one axis: the window inside the image where it fits, else the
        image at a random place inside the window."""
        r = torch.rand(extent.shape, generator=g)
        low = torch.minimum(half, extent - half)
        high = torch.maximum(half, extent - half)
        return low + r * (high - low)

    def _bilinear(self, k: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Image values at float source positions ``(n, P)``, ``(n, 3, P)`` in [0, 1]."""
        h, w = self._heights[k][:, None], self._widths[k][:, None]
        x0, y0 = torch.floor(x), torch.floor(y)
        ax, ay = (x - x0)[:, None], (y - y0)[:, None]
        x0, y0 = x0.long(), y0.long()
        pad = self._pads[k][:, :, None]
        out = 0.0
        for dy, wy in ((0, 1 - ay), (1, ay)):
            for dx, wx in ((0, 1 - ax), (1, ax)):
                xi, yi = x0 + dx, y0 + dy
                inside = ((xi >= 0) & (xi < w) & (yi >= 0) & (yi < h))[:, None]
                index = self._offsets[k][:, None] + yi.clamp(0) * w + xi.clamp(0)
                index = torch.where(inside[:, 0], index, 0)
                values = self._images[:, index].permute(1, 0, 2).float() / 255.0
                out = out + wy * wx * torch.where(inside, values, pad)
        return out

    def _nearest(self, k: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Target values at the nearest source pixel, ``(n, K, P)`` float32 (0 outside)."""
        h, w = self._heights[k][:, None], self._widths[k][:, None]
        xi, yi = torch.round(x).long(), torch.round(y).long()
        inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
        index = self._offsets[k][:, None] + yi.clamp(0) * w + xi.clamp(0)
        index = torch.where(inside, index, 0)
        values = self._targets[:, index].permute(1, 0, 2).float()
        return torch.where(inside[:, None], values, 0.0)

    def _photometric(
        self, images: torch.Tensor, k: torch.Tensor, g: torch.Generator
    ) -> torch.Tensor:
        """Per-crop photometric augmentation of ``(n, 3, S, S)`` images in [0, 1]; ``k`` (the
        crops' image indices) and ``g`` are on the CPU, where every decision is drawn."""
        ph, dev, n = self.photometric, self.device, images.shape[0]

        def on_device(t: torch.Tensor) -> torch.Tensor:
            return self._to_device(t.view(n, -1, 1, 1))

        def chance(prob: float) -> torch.Tensor:
            return torch.rand(n, generator=g) < prob

        def uniform(low: float, high: float, channels: int = 1) -> torch.Tensor:
            return on_device(low + (high - low) * torch.rand(n, channels, generator=g))

        colour = self._colour_cpu[k]
        if ph.grayscale > 0:
            gray = images.mean(dim=1, keepdim=True).expand_as(images)
            images = torch.where(on_device(chance(ph.grayscale) & colour), gray, images)
        if ph.stain > 0:
            gain = uniform(1 - ph.stain, 1 + ph.stain, 3)
            images = torch.where(on_device(colour), images * gain, images)
        if ph.invert_bright > 0 or ph.invert_colour > 0:
            bright = self._bright_cpu[k]
            invert = (chance(ph.invert_bright) & bright) | (chance(ph.invert_colour) & colour)
            images = torch.where(on_device(invert), 1.0 - images, images)
        mean = images.mean(dim=(1, 2, 3), keepdim=True)
        contrast = uniform(1 - ph.contrast, 1 + ph.contrast)
        shift = uniform(-ph.brightness, ph.brightness)
        jitter = on_device(chance(ph.p))
        images = torch.where(jitter, (images - mean) * contrast + mean + shift, images)
        gamma = uniform(*ph.gamma)
        images = torch.where(on_device(chance(ph.p)), images.clamp(0, 1) ** gamma, images)
        if ph.blur_sigma[1] > 0:
            sigma = float(torch.empty(1).uniform_(*ph.blur_sigma, generator=g))  # one per batch
            chosen = chance(ph.p / 2).nonzero().view(-1)  # on the CPU: no wait for the GPU
            if len(chosen):
                chosen = self._to_device(chosen)
                images = images.index_copy(0, chosen, _gaussian_blur(images[chosen], sigma))
        if ph.noise_std[1] > 0:
            std = uniform(*ph.noise_std)
            noisy = on_device(chance(ph.p / 2))
            seed = int(torch.randint(0, 2**62, (1,), generator=g))
            device_g = torch.Generator(device=dev).manual_seed(seed)
            noise = torch.randn(images.shape, device=dev, generator=device_g) * std
            images = torch.where(noisy, images + noise, images)
        return images.clamp(0.0, 1.0)

    def epoch_batches(
        self, batch_size: int, steps: int
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The ``steps`` batches of the current epoch (see :meth:`set_epoch`)."""
        for step in range(int(steps)):
            yield self.batch(batch_size, step)


def _gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(n, C, H, W)`` images (replicated edges), as weighted sums of
    shifted copies (faster than a depthwise convolution for these small kernels on a CPU)."""
    radius = max(1, int(math.ceil(3 * sigma)))
    taps = torch.exp(
        -(torch.arange(-radius, radius + 1, dtype=torch.float64) ** 2) / (2 * sigma**2)
    )
    taps = (taps / taps.sum()).tolist()
    out = images
    for dim in (2, 3):
        size = out.shape[dim]
        padded = torch.cat(
            [out.narrow(dim, 0, 1).expand_as(out.narrow(dim, 0, radius))]
            + [out]
            + [out.narrow(dim, size - 1, 1).expand_as(out.narrow(dim, 0, radius))],
            dim=dim,
        )
        out = sum(w * padded.narrow(dim, i, size) for i, w in enumerate(taps))
    return out


def crops_from_recipe(
    data, encode: Callable[[np.ndarray], np.ndarray], samples: Sequence[Sample], device, seed: int
) -> TensorCrops:
    """The :class:`TensorCrops` a recipe's ``data`` section asks for: its crop size,
    ``type_balance`` and ``aug_*`` keys (the other photometric settings keep their defaults)."""
    photometric = Photometric(
        grayscale=data.aug_grayscale, stain=data.aug_stain, invert_colour=data.aug_invert_colour
    )
    return TensorCrops(
        samples,
        encode,
        data.crop_size,
        device,
        type_balance=data.type_balance,
        photometric=photometric,
        stained_view=data.stained_view,
        seed=seed,
    )
