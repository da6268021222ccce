"""A torch ``Dataset`` of random, augmented crops with their training targets.

Reproducibility: the crop position and the augmentation of item ``i`` in epoch ``e`` are drawn
from ``numpy.random.SeedSequence([seed, e, i])`` and nothing else, so they are the same whichever
DataLoader worker computes the item and however many workers there are. Call
:meth:`CropDataset.set_epoch` before each epoch (before iterating the DataLoader; with
``persistent_workers=True`` the workers keep the epoch they were started with).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from segmentation.datasets.augment import build_augmentation, window_size
from segmentation.datasets.image_types import image_type
from segmentation.datasets.labels import relabel_sequential, validate_labels
from segmentation.datasets.normalize import CLIP_HIGH, CLIP_LOW, normalize_image, to_model_input
from segmentation.datasets.nuclear_view import nuclear_view
from segmentation.datasets.sample_type import Sample

_SPAN = CLIP_HIGH - CLIP_LOW


def _compact(image: np.ndarray) -> np.ndarray:
    """Gray-as-RGB ``(H, W, 3)`` -> ``(H, W, 1)`` (a third of the memory); others unchanged."""
    if image.shape[2] == 3 and (image[..., 1:] == image[..., :1]).all():
        return image[..., :1]
    return image


class CropDataset(torch.utils.data.Dataset):
    """Random square crops of labelled images, augmented, with ``encode(labels)`` as targets.

    Each image is normalised once, whole, with :func:`normalize_image`. Item ``i`` uses sample
    ``i % len(samples)``: a window at a random position (an image smaller than the window is
    placed at a random offset and padded with its median, labels with 0), augmented by
    :func:`build_augmentation` (colour inversion only for images that :func:`image_type` calls
    brightfield), relabelled ``1..N``, then encoded.

    Args:
        samples: samples with labels; images ``(H, W, C)`` uint8/uint16, labels ``(H, W)``.
        crop_size: side of the square crops.
        encode: ``(crop, crop)`` int32 label image -> targets (e.g. a family's
            ``encode_targets``); its return value is passed through unchanged.
        augment: apply the augmentation; when False the crop is a plain random crop.
        seed: base seed (see the module docstring).
        length: items per epoch (default: one per sample).
        scale: zoom range of the augmentation.
        stained_view: how stained tissue is seen (:func:`~segmentation.datasets.nuclear_view.
            nuclear_view`); the brightfield test for inversion uses the images as given.

    ``dataset[i]`` returns ``(image, targets)``: a ``(3, crop, crop)`` float32 tensor and
    ``encode``'s output.
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        crop_size: int,
        encode: Callable[[np.ndarray], Any],
        *,
        augment: bool = True,
        seed: int = 0,
        length: int | None = None,
        scale: tuple[float, float] = (0.75, 1.33),
        stained_view: str = "rgb",
    ) -> None:
        if not samples:
            raise ValueError("CropDataset needs at least one sample")
        if not callable(encode):
            raise TypeError(f"encode must be callable (labels -> targets), got {encode!r}")
        if int(crop_size) < 8:
            raise ValueError(f"crop_size must be an int >= 8, got {crop_size}")
        if length is not None and int(length) < 1:
            raise ValueError(f"length must be >= 1 or None, got {length}")
        unlabeled = [s.name for s in samples if s.labels is None]
        if unlabeled:
            raise ValueError(f"samples without labels cannot be used for training: {unlabeled[:5]}")
        self.crop_size = int(crop_size)
        self.encode = encode
        self.augment = bool(augment)
        self.seed = int(seed)
        self.length = len(samples) if length is None else int(length)
        self.epoch = 0
        self.names = [s.name for s in samples]
        self._labels = [validate_labels(s.labels, s.image.shape) for s in samples]
        self._images = [
            _compact(normalize_image(nuclear_view(s.image, stained_view))) for s in samples
        ]
        self._invert = [image_type(s.image) == "brightfield" for s in samples]
        self._pad = [np.median(im, axis=(0, 1)).astype(np.float32) for im in self._images]
        self._window = window_size(self.crop_size, scale) if augment else self.crop_size
        if augment:
            self._pipelines = {
                flag: build_augmentation(self.crop_size, scale=scale, invert=flag)
                for flag in (False, True)
            }

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose crops and augmentations the next items use."""
        self.epoch = int(epoch)

    def _window_at(self, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        image, labels, size = self._images[k], self._labels[k], self._window
        height, width = labels.shape
        out_image = np.empty((size, size, image.shape[2]), dtype=np.float32)
        out_image[...] = self._pad[k]
        out_labels = np.zeros((size, size), dtype=np.int32)
        # per axis: (source start, target start, extent)
        spans = []
        for extent in (height, width):
            if extent >= size:
                spans.append((int(rng.integers(0, extent - size + 1)), 0, size))
            else:
                spans.append((0, int(rng.integers(0, size - extent + 1)), extent))
        (sy, ty, ny), (sx, tx, nx) = spans
        out_image[ty : ty + ny, tx : tx + nx] = image[sy : sy + ny, sx : sx + nx]
        out_labels[ty : ty + ny, tx : tx + nx] = labels[sy : sy + ny, sx : sx + nx]
        return out_image, out_labels

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Any]:
        if not -self.length <= index < self.length:
            raise IndexError(f"index {index} out of range for a dataset of length {self.length}")
        index %= self.length
        k = index % len(self._images)
        crop_seed, aug_seed = np.random.SeedSequence([self.seed, self.epoch, index]).generate_state(
            2
        )
        image, labels = self._window_at(k, np.random.default_rng(crop_seed))
        if self.augment:
            pipeline = self._pipelines[self._invert[k]]
            pipeline.set_random_seed(int(aug_seed))
            out = pipeline(image=(image - CLIP_LOW) / _SPAN, mask=labels)
            image = out["image"] * np.float32(_SPAN) + np.float32(CLIP_LOW)
            labels = out["mask"]
        labels = relabel_sequential(np.ascontiguousarray(labels, dtype=np.int32))
        return torch.from_numpy(to_model_input(image)), self.encode(labels)
