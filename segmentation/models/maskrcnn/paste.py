"""Paste box-level masks into the image: the exact inverse of the mask head's ``roi_align``.

torchvision builds each mask target as ``roi_align(gt_mask, box, (M, M), aligned=False)``: bin
``i`` of an RoI ``[low, high]`` (one axis, pixel ``p``'s centre at coordinate ``p``) is centred at
``low + (i + 0.5) * extent / M`` with ``extent = max(high - low, 1)``. So pixel ``p`` reads the
mask at ``u = (p - low) * M / extent - 0.5``, linearly interpolated and clamped to the first/last
bin, for every ``p`` in ``[low, low + extent]``. torchvision's own ``paste_masks_in_image`` uses a
different convention that shifts masks by about half a pixel, which costs about 0.2 of DSB score
on nuclei (see ``benchmarks/bench_maskrcnn_oracle.py``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class AxisPlan(NamedTuple):
    """Interpolation along one axis for ``N`` boxes; box ``i`` owns ``[offsets[i]:offsets[i+1]]``.

    Attributes:
        start: ``(N,)`` first image pixel of each box's window.
        offsets: ``(N + 1,)`` slice bounds into the per-pixel arrays.
        i0, i1: per-pixel lower/upper mask bin (intp).
        w0, w1: per-pixel interpolation weights of ``i0``/``i1`` (float32, sum to 1).
    """

    start: np.ndarray
    offsets: np.ndarray
    i0: np.ndarray
    i1: np.ndarray
    w0: np.ndarray
    w1: np.ndarray


def axis_plan(low: np.ndarray, high: np.ndarray, m: int, size: int) -> AxisPlan:
    """Window and bilinear weights of ``N`` RoIs ``[low, high]`` on an axis of ``size`` pixels.

    Args:
        low, high: ``(N,)`` float RoI bounds in pixel coordinates.
        m: mask bins along this axis.
        size: image pixels along this axis (windows are clipped to ``[0, size)``).
    """
    low = np.asarray(low, dtype=np.float64)
    extent = np.maximum(np.asarray(high, dtype=np.float64) - low, 1.0)
    start = np.maximum(np.ceil(low), 0).astype(np.intp)
    stop = np.minimum(np.floor(low + extent).astype(np.intp) + 1, size)
    count = np.maximum(stop - start, 0)
    offsets = np.zeros(len(low) + 1, dtype=np.intp)
    np.cumsum(count, out=offsets[1:])
    within = np.arange(offsets[-1]) - np.repeat(offsets[:-1], count)
    u = (within + np.repeat(start - low, count)) * np.repeat(m / extent, count) - 0.5
    np.minimum(np.maximum(u, 0.0, out=u), m - 1, out=u)
    i0 = u.astype(np.intp)  # floor: u >= 0
    w1 = (u - i0).astype(np.float32)
    return AxisPlan(start, offsets, i0, np.minimum(i0 + 1, m - 1), 1.0 - w1, w1)


def paste_planned(
    mask: np.ndarray, ys: AxisPlan, xs: AxisPlan, i: int
) -> tuple[int, int, np.ndarray]:
    """Paste mask ``i`` (``(M, M)``) with precomputed plans; returns ``(y0, x0, probs (h, w))``."""
    ry = slice(ys.offsets[i], ys.offsets[i + 1])
    rx = slice(xs.offsets[i], xs.offsets[i + 1])
    rows = mask[ys.i0[ry]] * ys.w0[ry, None] + mask[ys.i1[ry]] * ys.w1[ry, None]
    probs = rows[:, xs.i0[rx]] * xs.w0[rx] + rows[:, xs.i1[rx]] * xs.w1[rx]
    return int(ys.start[i]), int(xs.start[i]), probs.astype(np.float32, copy=False)


def paste_box_mask(
    mask: np.ndarray, box: np.ndarray, image_shape: tuple[int, int]
) -> tuple[int, int, np.ndarray]:
    """Paste one box-level mask into the image it was predicted on.

    Args:
        mask: ``(M, M)`` float probabilities over the box (the mask head's output).
        box: ``[x1, y1, x2, y2]`` float in the image's pixel coordinates.
        image_shape: ``(H, W)`` of the image.

    Returns:
        ``(y0, x0, probs)``: ``probs`` ``(h, w)`` float32 holds the pasted probabilities of the
        image window ``[y0:y0 + h, x0:x0 + w]`` (the box clipped to the image; empty when the box
        lies outside). Pixels outside the window have probability 0.
    """
    mask = np.asarray(mask, dtype=np.float32)
    box = np.asarray(box, dtype=np.float64)
    ys = axis_plan(box[1:2], box[3:4], mask.shape[0], int(image_shape[0]))
    xs = axis_plan(box[0:1], box[2:3], mask.shape[1], int(image_shape[1]))
    return paste_planned(mask, ys, xs, 0)
