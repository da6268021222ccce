"""The Mask R-CNN oracle: what a perfect network gives after the mask head's resolution.

A perfect Mask R-CNN predicts each nucleus's exact box, a score of 1 and, as its mask, exactly the
training target torchvision builds for it: ``roi_align(gt_mask, box, (M, M), aligned=False)``
(``project_masks_on_boxes`` in ``torchvision.models.detection.roi_heads``). Decoding those raw outputs
measures what the ``M x M`` resolution and the painting cost, with no network error at all.
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision.ops import roi_align

from segmentation.datasets.labels import validate_labels
from segmentation.models.maskrcnn.decode import MaskRCNNThresholds, decode
from segmentation.models.maskrcnn.targets import instance_boxes

#: Default mask head resolution (torchvision's Mask R-CNN: 14x14 RoI features upsampled to 28x28).
DEFAULT_MASK_SIZE = 28


def check_mask_size(mask_size: int) -> int:
    """Validate a mask head resolution: an even integer >= 2 (the head upsamples by 2)."""
    if isinstance(mask_size, bool) or not isinstance(mask_size, (int, np.integer)):
        raise TypeError(f"mask_size must be an integer, got {type(mask_size).__name__}")
    if mask_size < 2 or mask_size % 2:
        raise ValueError(
            f"mask_size must be an even integer >= 2 (the mask head doubles its RoI features), "
            f"got {mask_size}; use e.g. 28 or 56"
        )
    return int(mask_size)


def oracle_raw(labels: np.ndarray, mask_size: int = DEFAULT_MASK_SIZE) -> dict[str, np.ndarray]:
    """Raw outputs a perfect network would give for a label image.

    Args:
        labels: ``(H, W)`` integer label image, 0 = background. Not modified.
        mask_size: mask head resolution ``M`` (even, default 28).

    Returns:
        ``{"boxes": (N, 4) float32, "scores": (N,) float32 all 1.0, "masks": (N, M, M) float32
        in [0, 1], "image_shape": (H, W)}``, the format :func:`decode` reads; ``masks[i]`` equals
        torchvision's mask target for nucleus ``i`` on its ground-truth box.
    """
    labels = validate_labels(labels)
    m = check_mask_size(mask_size)
    ids, boxes, slices = instance_boxes(labels)
    h, w = labels.shape
    masks = np.zeros((len(ids), m, m), dtype=np.float32)
    for i, (k, (rows, cols)) in enumerate(zip(ids, slices, strict=True)):
        # A crop with a one-pixel margin gives roi_align exactly the samples of the full image.
        r0, r1 = max(rows.start - 1, 0), min(rows.stop + 1, h)
        c0, c1 = max(cols.start - 1, 0), min(cols.stop + 1, w)
        crop = torch.from_numpy((labels[r0:r1, c0:c1] == k).astype(np.float32))[None, None]
        x1, y1, x2, y2 = boxes[i]
        roi = torch.tensor([[0.0, x1 - c0, y1 - r0, x2 - c0, y2 - r0]], dtype=torch.float32)
        masks[i] = roi_align(crop, roi, (m, m), spatial_scale=1.0, sampling_ratio=-1)[0, 0].numpy()
    return {
        "boxes": boxes,
        "scores": np.ones(len(ids), dtype=np.float32),
        "masks": masks,
        "image_shape": (h, w),
    }


def mask_roundtrip(
    labels: np.ndarray,
    mask_size: int = DEFAULT_MASK_SIZE,
    thresholds: MaskRCNNThresholds | None = None,
) -> np.ndarray:
    """Encode every nucleus at the mask head's resolution and decode it back.

    Args:
        labels: ``(H, W)`` integer label image. Not modified.
        mask_size: mask head resolution ``M`` (even, default 28).
        thresholds: decode thresholds; ``None`` uses the defaults.

    Returns:
        ``(H, W)`` int32 label image: ``decode(oracle_raw(labels, mask_size), thresholds)``.
        Compare it with ``labels`` (e.g. ``dsb_score``) to see what the resolution costs.
    """
    return decode(oracle_raw(labels, mask_size), thresholds)
