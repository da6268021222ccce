"""Mask R-CNN decode: paint scored instance masks into one non-overlapping label image.

Raw outputs of one image (what :func:`segmentation.models.maskrcnn.model.predict` returns) are a
dict of numpy arrays:

- ``boxes`` ``(N, 4)`` float32 ``[x1, y1, x2, y2]`` in the image's pixel coordinates,
- ``scores`` ``(N,)`` float32 in [0, 1],
- ``masks``: either box-level ``(N, M, M)`` float32 probabilities, the mask head's output over each
  box (then ``image_shape`` = ``(H, W)`` must be given), or full-image ``(N, H, W)`` float32
  probabilities (no ``image_shape`` key).

Box-level masks are the default because they are small: 500 detections at 28x28 take 1.5 MB where
pasted 1024x1024 float32 masks would take 2 GB. Decode pastes them one at a time into their box
with the exact inverse of the ``roi_align`` sampling that made the mask head's training targets
(:mod:`segmentation.models.maskrcnn.paste`), so it never holds more than one pasted mask.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from segmentation.models.maskrcnn.paste import axis_plan, paste_box_mask, paste_planned

__all__ = ["MaskRCNNThresholds", "decode", "paste_box_mask", "remove_small_and_relabel"]


@dataclass(frozen=True)
class MaskRCNNThresholds:
    """Post-processing thresholds of the ``maskrcnn`` family.

    Attributes:
        score_threshold: detections scoring below are ignored (0..1). Default 0.5.
        mask_threshold: a pixel belongs to an instance where its mask probability is >= this
            (0 < t <= 1). Default 0.5, the threshold Mask R-CNN is trained for.
        nms_iou: detections whose box IoU with a better-scoring kept one exceeds this are
            dropped before painting; 1.0 (the default) disables it: the model already applies
            box NMS (``box_nms_thresh`` 0.5) and painting resolves the remaining overlaps.
        min_kept_fraction: an instance is dropped when less than this fraction of its mask is
            still free once better-scoring instances are painted (0..1). Default 0.5.
        min_size: painted objects with fewer pixels are removed (>= 0). Default 4.
    """

    score_threshold: float = 0.5
    mask_threshold: float = 0.5
    nms_iou: float = 1.0
    min_kept_fraction: float = 0.5
    min_size: int = 4

    def __post_init__(self) -> None:
        checks = {
            "score_threshold": (0.0, 1.0, False),
            "mask_threshold": (0.0, 1.0, True),
            "nms_iou": (0.0, 1.0, False),
            "min_kept_fraction": (0.0, 1.0, False),
        }
        for name, (low, high, open_low) in checks.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
                raise TypeError(f"{name} must be a number, got {type(value).__name__}")
            if not (low < value <= high if open_low else low <= value <= high):
                bracket = "(" if open_low else "["
                raise ValueError(f"{name} must be in {bracket}{low}, {high}], got {value}")
        size = self.min_size
        if isinstance(size, bool) or not isinstance(size, (int, float, np.number)):
            raise TypeError(f"min_size must be an integer, got {type(size).__name__}")
        if size < 0 or float(size) != int(size):
            raise ValueError(f"min_size must be a whole number >= 0, got {size}")
        object.__setattr__(self, "min_size", int(size))


def _check_raw(raw: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int], bool]:
    if not isinstance(raw, dict) or not {"boxes", "scores", "masks"} <= set(raw):
        got = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
        raise ValueError(
            "maskrcnn raw outputs must be a dict with keys 'boxes', 'scores', 'masks' (and "
            f"'image_shape' for box-level masks), as returned by predict(); got {got}"
        )
    boxes, scores, masks = (np.asarray(raw[k]) for k in ("boxes", "scores", "masks"))
    n = len(scores) if scores.ndim == 1 else -1
    if boxes.shape != (n, 4) or masks.ndim != 3 or masks.shape[0] != n:
        hint = "; squeeze the channel axis with masks[:, 0]" if masks.ndim == 4 else ""
        raise ValueError(
            f"inconsistent raw outputs: boxes {boxes.shape}, scores {scores.shape}, masks "
            f"{masks.shape}; expected (N, 4), (N,), (N, M, M) or (N, H, W){hint}"
        )
    for name, value in (("boxes", boxes), ("scores", scores), ("masks", masks)):
        if value.dtype.kind not in "fiu" or (value.size and not np.isfinite(value).all()):
            raise ValueError(
                f"raw {name} must be finite real numbers, got {value.dtype} with NaN/inf"
            )
    box_level = "image_shape" in raw
    if box_level:
        shape = tuple(int(s) for s in raw["image_shape"])
        if len(shape) != 2 or min(shape) < 0:
            raise ValueError(f"image_shape must be (H, W), got {raw['image_shape']}")
    else:
        shape = tuple(masks.shape[1:])
    return boxes, scores, masks, shape, box_level


class _BoxGrid:
    """Boxes kept so far, bucketed in square cells: greedy NMS in time linear in the boxes."""

    def __init__(self, n: int, cell: float) -> None:
        self.cell = cell
        self.cells: defaultdict[tuple[int, int], list[int]] = defaultdict(list)
        self.boxes = np.zeros((n, 4), dtype=np.float64)
        self.n = 0

    def suppresses(self, box: np.ndarray, iou: float) -> bool:
        """True when a kept box overlaps ``box`` with IoU > ``iou``; else keep ``box``."""
        x0, y0, x1, y1 = (math.floor(v / self.cell) for v in box)
        keys = [(r, c) for r in range(y0, y1 + 1) for c in range(x0, x1 + 1)]
        near = [j for key in keys for j in self.cells.get(key, ())]
        if near:
            other = self.boxes[near]
            w = np.minimum(other[:, 2], box[2]) - np.maximum(other[:, 0], box[0])
            h = np.minimum(other[:, 3], box[3]) - np.maximum(other[:, 1], box[1])
            inter = np.maximum(w, 0.0) * np.maximum(h, 0.0)
            areas = (other[:, 2] - other[:, 0]) * (other[:, 3] - other[:, 1])
            union = areas + (box[2] - box[0]) * (box[3] - box[1]) - inter
            if np.any(inter > iou * union):
                return True
        for key in keys:
            self.cells[key].append(self.n)
        self.boxes[self.n] = box
        self.n += 1
        return False


def _full_mask_window(probs: np.ndarray, threshold: float) -> tuple[int, int, np.ndarray]:
    binary = probs >= threshold
    rows, cols = np.flatnonzero(binary.any(axis=1)), np.flatnonzero(binary.any(axis=0))
    if rows.size == 0:
        return 0, 0, binary[:0, :0]
    return rows[0], cols[0], binary[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def remove_small_and_relabel(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Drop objects with fewer than ``min_size`` pixels and renumber the rest ``1..N``.

    Args:
        labels: ``(H, W)`` int32 label image with ids ``0..K``. Not modified.
        min_size: minimum object area in pixels.

    Returns:
        New ``(H, W)`` int32 label image; surviving objects keep their relative order.
    """
    areas = np.bincount(labels.ravel())
    keep = areas >= min_size
    keep[0] = False
    lut = np.zeros(len(areas), dtype=np.int32)
    lut[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    return lut[labels]


def decode(raw: dict[str, Any], thresholds: MaskRCNNThresholds | None = None) -> np.ndarray:
    """Score-ordered painting of instance masks into one ``(H, W)`` int32 label image.

    Detections below ``score_threshold`` are ignored, box NMS at ``nms_iou`` drops duplicates,
    then instances are painted from the highest score down: each pixel goes to the best-scoring
    mask whose probability is >= ``mask_threshold`` there; an instance keeping less than
    ``min_kept_fraction`` of its mask area is dropped; objects under ``min_size`` pixels are
    removed; ids are ``1..N`` in decreasing score order. Ties keep the input order.

    Args:
        raw: one image's raw outputs (see the module docstring). Not modified.
        thresholds: :class:`MaskRCNNThresholds`; ``None`` uses the defaults.

    Returns:
        ``(H, W)`` int32 label image, 0 = background; all zeros when nothing survives.

    Example:
        >>> masks = np.zeros((2, 4, 4), np.float32); masks[0, :2] = 0.9; masks[1, 1:] = 0.8
        >>> raw = {"boxes": np.array([[0, 0, 4, 2], [0, 1, 4, 4]], np.float32),
        ...        "scores": np.array([0.6, 0.9], np.float32), "masks": masks}
        >>> decode(raw, MaskRCNNThresholds(min_size=0))[:, 0].tolist()
        [2, 1, 1, 1]
    """
    t = MaskRCNNThresholds() if thresholds is None else thresholds
    if not isinstance(t, MaskRCNNThresholds):
        names = [f.name for f in fields(MaskRCNNThresholds)]
        raise TypeError(
            f"thresholds must be MaskRCNNThresholds or None, got {type(t).__name__}; build one "
            f"with MaskRCNNThresholds(**values), fields {names}"
        )
    boxes, scores, masks, shape, box_level = _check_raw(raw)
    out = np.zeros(shape, dtype=np.int32)
    keep = np.flatnonzero(scores >= t.score_threshold)
    order = keep[np.argsort(-scores[keep], kind="stable")]
    grid = _BoxGrid(len(order), cell=64.0) if t.nms_iou < 1.0 else None
    boxes = boxes.astype(np.float64)
    if box_level:
        masks = masks.astype(np.float32, copy=False)
        ys = axis_plan(boxes[:, 1], boxes[:, 3], masks.shape[1], shape[0])
        xs = axis_plan(boxes[:, 0], boxes[:, 2], masks.shape[2], shape[1])
    next_id = 1
    for i in order:
        if grid is not None and grid.suppresses(boxes[i], t.nms_iou):
            continue
        if box_level:
            y0, x0, probs = paste_planned(masks[i], ys, xs, i)
            binary = probs >= t.mask_threshold
        else:
            y0, x0, binary = _full_mask_window(masks[i], t.mask_threshold)
        area = int(binary.sum())
        if area == 0:
            continue
        window = out[y0 : y0 + binary.shape[0], x0 : x0 + binary.shape[1]]
        free = binary & (window == 0)
        n_free = int(free.sum())
        if n_free == 0 or n_free < t.min_kept_fraction * area:
            continue
        window[free] = next_id
        next_id += 1
    return remove_small_and_relabel(out, t.min_size)
