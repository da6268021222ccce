"""Training augmentation (albumentations), applied identically to an image and its label image.

The pipeline takes a square window of side :func:`window_size` cut from a normalised image, scales
it about its centre (labels with nearest-neighbour interpolation, so label values are never mixed),
takes the central ``crop_size`` square, then applies flips, 90-degree rotations, brightness and
contrast changes, Gaussian blur and Gaussian noise, and (``invert=True``, meant for
brightfield-like images) colour inversion ``x -> 1 - x``. The window is large enough that the
smallest scale still fills the crop, so no padding is invented at the crop's border.

Photometric transforms of albumentations clip float images to ``[0, 1]``:
:class:`~segmentation.datasets.torch_dataset.CropDataset` maps the normalised range
``[CLIP_LOW, CLIP_HIGH]`` onto ``[0, 1]`` before the pipeline and back after it.
"""

from __future__ import annotations

import math

import albumentations as A
import cv2


def window_size(crop_size: int, scale: tuple[float, float] = (0.75, 1.33)) -> int:
    """Side of the square window to cut so that scaling by ``scale[0]`` still fills the crop.

    Args:
        crop_size: side of the final crop, in pixels.
        scale: ``(smallest, largest)`` zoom factor.

    Returns:
        ``ceil(crop_size / min(scale[0], 1))``, an int >= ``crop_size``.
    """
    return int(math.ceil(crop_size / min(float(scale[0]), 1.0) - 1e-9))


def build_augmentation(
    crop_size: int,
    *,
    scale: tuple[float, float] = (0.75, 1.33),
    p: float = 0.5,
    invert: bool = False,
) -> A.Compose:
    """Build the augmentation pipeline.

    Args:
        crop_size: side of the output crop; inputs must be squares of side
            ``window_size(crop_size, scale)``.
        scale: ``(smallest, largest)`` zoom factor of the random scaling (applied with
            probability ``p``; 1.0 keeps the size).
        p: probability of each photometric transform and of the scaling (blur and noise use
            ``p / 2``). Flips and rotations always have probability 0.5.
        invert: add a colour inversion ``x -> 1 - x`` with probability 0.5.

    Returns:
        An ``albumentations.Compose`` called as ``pipeline(image=image, mask=labels)`` with a
        float32 ``(S, S, C)`` image in ``[0, 1]`` and an ``(S, S)`` integer label image; it returns
        ``(crop_size, crop_size, C)`` and ``(crop_size, crop_size)``. Reseed it with
        ``pipeline.set_random_seed(s)`` for reproducible output.
    """
    if int(crop_size) < 8:
        raise ValueError(f"crop_size must be an int >= 8, got {crop_size}")
    if not 0 < scale[0] <= scale[1]:
        raise ValueError(f"scale must be (low, high) with 0 < low <= high, got {scale}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be a probability in [0, 1], got {p}")
    crop_size = int(crop_size)
    transforms = [
        A.Affine(
            scale=tuple(float(s) for s in scale),
            keep_ratio=True,
            interpolation=cv2.INTER_LINEAR,
            mask_interpolation=cv2.INTER_NEAREST,
            border_mode=cv2.BORDER_CONSTANT,  # never visible: the window covers the crop
            p=p,
        ),
        A.CenterCrop(crop_size, crop_size),
        A.HorizontalFlip(p=0.5),
        A.VerticalFlip(p=0.5),
        A.RandomRotate90(p=0.5),
        A.RandomBrightnessContrast(brightness_limit=0.15, contrast_limit=0.2, p=p),
        A.GaussianBlur(sigma_limit=(0.3, 1.2), p=p / 2),
        A.GaussNoise(std_range=(0.005, 0.03), p=p / 2),
    ]
    if invert:
        transforms.append(A.InvertImg(p=0.5))
    return A.Compose(transforms, seed=0)
