"""Mask R-CNN training targets from label images, in torchvision's format, and their batching.

Box convention: ``[x1, y1, x2, y2]`` in pixel-index coordinates with the stop *exclusive*
(``x2 = last column + 1``), so a one-pixel nucleus gets a box of width 1, never a degenerate one
(torchvision refuses boxes with ``x2 <= x1``). torchvision's mask head learns each nucleus through
``roi_align(mask, box, (M, M))`` with ``aligned=False``; :mod:`segmentation.models.maskrcnn.roundtrip`
pastes such masks back with the exact inverse of that sampling.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy import ndimage

from segmentation.datasets.labels import validate_labels

#: Keys, dtypes and trailing shapes of one image's targets.
TARGET_KEYS = ("boxes", "labels", "masks")


def instance_boxes(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[tuple[slice, slice]]]:
    """Bounding boxes of the objects of a label image.

    Args:
        labels: ``(H, W)`` integer label image, 0 = background (any ids, gaps allowed).

    Returns:
        ``(ids, boxes, slices)``: ``ids`` ``(N,)`` int32 object ids in increasing order, ``boxes``
        ``(N, 4)`` float32 ``[x1, y1, x2, y2]`` with exclusive stops (``x2 >= x1 + 1``), and the
        ``(row slice, column slice)`` of each box.
    """
    labels = validate_labels(labels)
    ids: list[int] = []
    boxes: list[tuple[int, int, int, int]] = []
    slices: list[tuple[slice, slice]] = []
    for index, box in enumerate(ndimage.find_objects(labels)):
        if box is None:  # id not present
            continue
        rows, cols = box
        ids.append(index + 1)
        boxes.append((cols.start, rows.start, cols.stop, rows.stop))
        slices.append((rows, cols))
    return (
        np.asarray(ids, dtype=np.int32),
        np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        slices,
    )


def encode_targets(labels: np.ndarray) -> dict[str, np.ndarray]:
    """Label image -> one image's Mask R-CNN targets in torchvision's format (numpy).

    Args:
        labels: ``(H, W)`` integer label image, 0 = background, one id per nucleus. Not modified.

    Returns:
        ``{"boxes": (N, 4) float32 [x1, y1, x2, y2] (exclusive stops, never degenerate),
        "labels": (N,) int64 all ones (one class: nucleus), "masks": (N, H, W) uint8 in {0, 1}}``,
        objects in increasing id order. ``N`` may be 0 (an empty crop): torchvision trains on it.

    Example:
        >>> t = encode_targets(np.array([[0, 1], [2, 2]], dtype=np.int32))
        >>> t["boxes"].tolist()
        [[1.0, 0.0, 2.0, 1.0], [0.0, 1.0, 2.0, 2.0]]
    """
    labels = validate_labels(labels)
    ids, boxes, slices = instance_boxes(labels)
    masks = np.zeros((len(ids),) + labels.shape, dtype=np.uint8)
    for i, (k, box) in enumerate(zip(ids, slices, strict=True)):
        masks[i][box] = labels[box] == k
    return {"boxes": boxes, "labels": np.ones(len(ids), dtype=np.int64), "masks": masks}


def _check_target(index: int, target: Any) -> None:
    if not isinstance(target, dict) or set(target) != set(TARGET_KEYS):
        got = sorted(target) if isinstance(target, dict) else type(target).__name__
        raise ValueError(
            f"target {index} must be a dict with keys {list(TARGET_KEYS)} (the output of "
            f"encode_targets), got {got}"
        )
    boxes, classes, masks = (np.shape(target[k]) for k in TARGET_KEYS)
    n = boxes[0] if len(boxes) == 2 else -1
    if len(boxes) != 2 or boxes[1] != 4 or classes != (n,) or len(masks) != 3 or masks[0] != n:
        raise ValueError(
            f"target {index} has inconsistent shapes boxes {boxes}, labels {classes}, masks "
            f"{masks}; expected (N, 4), (N,), (N, H, W) as produced by encode_targets"
        )


def collate(targets: list[dict[str, Any]]) -> list[dict[str, torch.Tensor]]:
    """Targets of a batch -> the list of dicts of CPU tensors that torchvision's model expects.

    Args:
        targets: one dict per image as returned by :func:`encode_targets` (numpy arrays or
            tensors).

    Returns:
        List of ``{"boxes": float32 (N, 4), "labels": int64 (N,), "masks": uint8 (N, H, W)}``
        tensors; images keep their own ``N`` (no padding).
    """
    if not isinstance(targets, (list, tuple)) or not targets:
        raise ValueError(
            "targets must be a non-empty list with one encode_targets() dict per image, got "
            f"{type(targets).__name__}"
        )
    out = []
    for i, target in enumerate(targets):
        _check_target(i, target)
        out.append(
            {
                "boxes": torch.as_tensor(target["boxes"], dtype=torch.float32),
                "labels": torch.as_tensor(target["labels"], dtype=torch.int64),
                "masks": torch.as_tensor(target["masks"], dtype=torch.uint8),
            }
        )
    return out
