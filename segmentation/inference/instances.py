"""Merge Mask R-CNN instances from overlapping tiles, test-time views and ensemble members.

Instances are the family's raw outputs: ``boxes`` ``(N, 4)`` ``[x1, y1, x2, y2]``, ``scores``
``(N,)`` and box-level ``masks`` ``(N, M, M)`` (see :mod:`segmentation.models.maskrcnn.decode`),
here in the coordinates of the whole image. Two instances are the same nucleus when their binary
masks (probability >= the decode's ``mask_threshold``) overlap by more than ``merge_iou`` of the
smaller one.

1. Views of one tile (TTA views x ensemble members): instances are clustered greedily by score;
   a cluster holds at most one instance per view, keeps its best instance's box and mask, and
   scores the mean over all views (a view that missed the nucleus counts 0), so nuclei found in
   only a few views are down-weighted.
2. Tiles: an instance whose box touches a tile edge inside the image is cut; where two tiles hold
   the same nucleus, the copy that is not cut and lies farthest from its tile's cut edges is kept.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from segmentation.inference.tiling import Tile
from segmentation.models.maskrcnn.paste import axis_plan, paste_planned


@dataclass
class _Window:
    y0: int
    x0: int
    mask: np.ndarray  # bool (h, w)
    area: int


class _Index:
    """Binary masks of kept instances, bucketed in square cells for overlap queries."""

    def __init__(self, cell: int = 64):
        self.cell = cell
        self.cells: defaultdict[tuple[int, int], list[int]] = defaultdict(list)
        self.windows: list[_Window] = []
        self.bounds = np.zeros((64, 5), np.int64)  # y0, x0, y1, x1, area per window

    def _keys(self, w: _Window) -> list[tuple[int, int]]:
        c = self.cell
        r0, r1 = w.y0 // c, (w.y0 + w.mask.shape[0]) // c
        c0, c1 = w.x0 // c, (w.x0 + w.mask.shape[1]) // c
        return [(r, q) for r in range(r0, r1 + 1) for q in range(c0, c1 + 1)]

    def add(self, w: _Window) -> int:
        """Index a window; returns its index."""
        k = len(self.windows)
        if k == len(self.bounds):
            self.bounds = np.concatenate([self.bounds, np.zeros_like(self.bounds)])
        self.bounds[k] = (w.y0, w.x0, w.y0 + w.mask.shape[0], w.x0 + w.mask.shape[1], w.area)
        self.windows.append(w)
        for key in self._keys(w):
            self.cells[key].append(k)
        return k

    def overlapping(
        self, w: _Window, merge_iou: float, accept=lambda j: True, first: bool = False
    ) -> list[tuple[float, int]]:
        """``(overlap fraction, index)`` of indexed windows overlapping ``w`` above ``merge_iou``.

        Only indices ``j`` with ``accept(j)`` are considered, in decreasing order of box overlap;
        ``first`` stops at the first match.
        """
        if w.area == 0:
            return []
        lists = [self.cells[key] for key in self._keys(w) if key in self.cells]
        if not lists:
            return []
        near = np.unique(np.concatenate(lists))
        b = self.bounds[near]
        inter_h = np.minimum(b[:, 2], w.y0 + w.mask.shape[0]) - np.maximum(b[:, 0], w.y0)
        inter_w = np.minimum(b[:, 3], w.x0 + w.mask.shape[1]) - np.maximum(b[:, 1], w.x0)
        box_inter = np.maximum(inter_h, 0) * np.maximum(inter_w, 0)
        # the masks cannot overlap by more than their boxes do
        possible = np.flatnonzero(box_inter > merge_iou * np.minimum(b[:, 4], w.area))
        found = []
        for k in possible[np.argsort(-box_inter[possible], kind="stable")]:
            j = int(near[k])
            if not accept(j):
                continue
            fraction = mask_overlap(w, self.windows[j])
            if fraction > merge_iou:
                found.append((fraction, j))
                if first:
                    break
        return found


def mask_overlap(a: _Window, b: _Window) -> float:
    """Intersection of two binary windows over the smaller mask's area (0 when either is empty)."""
    if a.area == 0 or b.area == 0:
        return 0.0
    y0, x0 = max(a.y0, b.y0), max(a.x0, b.x0)
    y1 = min(a.y0 + a.mask.shape[0], b.y0 + b.mask.shape[0])
    x1 = min(a.x0 + a.mask.shape[1], b.x0 + b.mask.shape[1])
    if y1 <= y0 or x1 <= x0:
        return 0.0
    sa = a.mask[y0 - a.y0 : y1 - a.y0, x0 - a.x0 : x1 - a.x0]
    sb = b.mask[y0 - b.y0 : y1 - b.y0, x0 - b.x0 : x1 - b.x0]
    return float(np.count_nonzero(sa & sb)) / min(a.area, b.area)


def _windows(raw: dict[str, Any], order: np.ndarray, threshold: float) -> list[_Window]:
    """Binary image windows of instances ``order`` (pasting planned for all boxes at once)."""
    boxes = np.asarray(raw["boxes"], np.float64)
    masks = np.asarray(raw["masks"], np.float32)
    shape = raw["image_shape"]
    if len(boxes) == 0:
        return []
    ys = axis_plan(boxes[:, 1], boxes[:, 3], masks.shape[1], int(shape[0]))
    xs = axis_plan(boxes[:, 0], boxes[:, 2], masks.shape[2], int(shape[1]))
    out = []
    for i in order:
        y0, x0, probs = paste_planned(masks[i], ys, xs, int(i))
        binary = probs >= threshold
        out.append(_Window(y0, x0, binary, int(binary.sum())))
    return out


def shift_instances(raw: dict[str, Any], dy: int, dx: int, shape: tuple[int, int]) -> dict:
    """Instances of a tile at ``(dy, dx)`` -> the same instances in an image of ``shape``."""
    boxes = np.asarray(raw["boxes"], np.float32).reshape(-1, 4) + np.float32([dx, dy, dx, dy])
    return {
        "boxes": boxes,
        "scores": np.asarray(raw["scores"], np.float32),
        "masks": np.asarray(raw["masks"], np.float32),
        "image_shape": (int(shape[0]), int(shape[1])),
    }


def _concat(parts: list[dict[str, Any]], shape: tuple[int, int], mask_size: int) -> dict:
    if not parts or sum(len(p["scores"]) for p in parts) == 0:
        return {
            "boxes": np.zeros((0, 4), np.float32),
            "scores": np.zeros(0, np.float32),
            "masks": np.zeros((0, mask_size, mask_size), np.float32),
            "image_shape": (int(shape[0]), int(shape[1])),
        }
    return {
        "boxes": np.concatenate([p["boxes"] for p in parts]).astype(np.float32),
        "scores": np.concatenate([p["scores"] for p in parts]).astype(np.float32),
        "masks": np.concatenate([p["masks"] for p in parts]).astype(np.float32),
        "image_shape": (int(shape[0]), int(shape[1])),
    }


def merge_views(
    views: list[dict[str, Any]], shape: tuple[int, int], mask_threshold: float, merge_iou: float
) -> dict[str, Any]:
    """Cluster the instances of several views of one image (or tile) into one set.

    Args:
        views: raw outputs per view, all in the same image frame of ``shape`` ``(H, W)``.
        shape: ``(H, W)``.
        mask_threshold: mask probability that makes a pixel part of an instance.
        merge_iou: overlap above which two instances of different views are one nucleus.

    Returns:
        Raw outputs (``boxes``, ``scores``, ``masks``, ``image_shape``): one instance per cluster,
        the cluster's best box and mask, score = sum of its members' scores / ``len(views)``.
    """
    mask_size = views[0]["masks"].shape[-1] if views else 28
    if len(views) == 1:
        return _concat(views, shape, mask_size)
    flat = _concat(views, shape, mask_size)
    source = np.concatenate([np.full(len(v["scores"]), i) for i, v in enumerate(views)])
    order = np.argsort(-flat["scores"], kind="stable")
    index = _Index()
    members: list[set[int]] = []
    total: list[float] = []
    best: list[int] = []
    for i, w in zip(order, _windows(flat, order, mask_threshold), strict=True):
        view = int(source[i])
        found = index.overlapping(w, merge_iou, lambda j, v=view: v not in members[j], True)
        if found:
            j = found[0][1]
            members[j].add(view)
            total[j] += float(flat["scores"][i])
            continue
        index.add(w)
        members.append({view})
        total.append(float(flat["scores"][i]))
        best.append(int(i))
    keep = np.asarray(best, dtype=np.intp)
    return {
        "boxes": flat["boxes"][keep].reshape(-1, 4),
        "scores": (np.asarray(total, np.float32) / len(views)).reshape(-1),
        "masks": flat["masks"][keep].reshape(-1, mask_size, mask_size),
        "image_shape": (int(shape[0]), int(shape[1])),
    }


def _distance_to_cuts(box: np.ndarray, tile: Tile) -> float:
    """Distance (pixels) from a box to the nearest cut edge of its tile; inf when none."""
    top, bottom, left, right = tile.cut
    x1, y1, x2, y2 = (float(v) for v in box)
    gaps = []
    if top:
        gaps.append(y1 - tile.y0)
    if bottom:
        gaps.append(tile.y0 + tile.height - 1 - y2)
    if left:
        gaps.append(x1 - tile.x0)
    if right:
        gaps.append(tile.x0 + tile.width - 1 - x2)
    return min(gaps) if gaps else math.inf


def merge_tiles(
    tiles: list[tuple[Tile, dict[str, Any]]],
    shape: tuple[int, int],
    mask_threshold: float,
    merge_iou: float,
    min_score: float = 0.0,
) -> dict[str, Any]:
    """Merge the instances of overlapping tiles into one set for the whole image.

    Args:
        tiles: ``(tile, raw)`` pairs, ``raw`` already in whole-image coordinates.
        shape: ``(H, W)`` of the image.
        mask_threshold, merge_iou: see :func:`merge_views`.
        min_score: instances scoring below are dropped first (the decode's ``score_threshold``:
            it would ignore them anyway).

    Returns:
        Raw outputs for the whole image; duplicates across tiles removed (the copy farthest from
        its tile's cut edges is kept, uncut copies before cut ones).
    """
    mask_size = tiles[0][1]["masks"].shape[-1] if tiles else 28
    flat = _concat([raw for _, raw in tiles], shape, mask_size)
    source = np.concatenate(
        [np.full(len(raw["scores"]), i) for i, (_, raw) in enumerate(tiles)] or [np.zeros(0)]
    ).astype(np.intp)
    strong = np.flatnonzero(flat["scores"] >= min_score)
    if len(tiles) > 1 and strong.size:
        gap = np.array([_distance_to_cuts(flat["boxes"][i], tiles[source[i]][0]) for i in strong])
        order = strong[np.lexsort((-flat["scores"][strong], -gap, gap < 1.0))]  # last key first
        index = _Index()
        kept_source: list[int] = []
        keep = []
        for i, w in zip(order, _windows(flat, order, mask_threshold), strict=True):
            other_tile = lambda j, s=source[i]: kept_source[j] != s  # noqa: E731
            if index.overlapping(w, merge_iou, other_tile, first=True):
                continue
            index.add(w)
            kept_source.append(int(source[i]))
            keep.append(int(i))
        strong = np.sort(np.asarray(keep, dtype=np.intp))
    return {
        "boxes": flat["boxes"][strong].reshape(-1, 4),
        "scores": flat["scores"][strong].reshape(-1),
        "masks": flat["masks"][strong].reshape(-1, mask_size, mask_size),
        "image_shape": (int(shape[0]), int(shape[1])),
    }
