"""Test-time augmentation views: the eight rotations/mirrors of the square (dihedral group D4).

A view ``rot<k>[flip]`` turns an image by ``k * 90`` degrees (``np.rot90``, counter-clockwise as
displayed) and then, with ``flip``, mirrors it left-right. Network outputs on the view are mapped
back to the original image:

* dense maps: the inverse array operation; channels named ``cos``/``sin`` hold the x (column) and
  y (row) components of a direction field, which are turned and mirrored too
  (:func:`invert_maps`);
* Mask R-CNN instances: boxes through the inverse pixel-coordinate map (pixel ``p``'s centre at
  coordinate ``p``), box-level masks through the inverse array operation (:func:`invert_instances`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class View:
    """``rot90`` by ``turns`` quarter turns, then a left-right mirror when ``flip``."""

    turns: int
    flip: bool

    @classmethod
    def parse(cls, name: str) -> View:
        """``"rot1flip"`` -> ``View(1, True)``."""
        return cls(int(name[3]), name.endswith("flip"))

    @property
    def name(self) -> str:
        return f"rot{self.turns}" + ("flip" if self.flip else "")

    def apply(self, array: np.ndarray) -> np.ndarray:
        """Transform the last two (row, column) axes of ``array``."""
        out = np.rot90(array, self.turns, axes=(-2, -1))
        return out[..., ::-1] if self.flip else out

    def invert(self, array: np.ndarray) -> np.ndarray:
        """Undo :meth:`apply` on the last two axes."""
        out = array[..., ::-1] if self.flip else array
        return np.rot90(out, -self.turns, axes=(-2, -1))

    def shape_of(self, shape: tuple[int, int]) -> tuple[int, int]:
        """``(H, W)`` of the view of an ``(H, W)`` image."""
        return (shape[1], shape[0]) if self.turns % 2 else (shape[0], shape[1])

    def invert_vectors(self, vx: np.ndarray, vy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Vector components measured in the view -> components in the original image."""
        if self.flip:
            vx = -vx
        for _ in range(self.turns % 4):  # undo one counter-clockwise quarter turn
            vx, vy = -vy, vx
        return vx, vy

    def invert_points(
        self, x: np.ndarray, y: np.ndarray, view_shape: tuple[int, int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates in the view (``view_shape`` ``(H, W)``) -> in the original image."""
        height, width = view_shape
        if self.flip:
            x = (width - 1) - x
        for _ in range(self.turns % 4):  # undo rot90: view (x', y') <- original (W-1-y', x')
            x, y = (height - 1) - y, x
            height, width = width, height
        return x, y


def views_from_names(names: Sequence[str]) -> list[View]:
    """View objects for names from :data:`~segmentation.inference.options.TTA_VIEWS`."""
    return [View.parse(n) for n in names]


def invert_maps(view: View, maps: np.ndarray, channels: Sequence[str]) -> np.ndarray:
    """Dense ``(C, h, w)`` maps predicted on a view -> ``(C, H, W)`` maps of the original image.

    Channels named ``cos`` and ``sin`` are the x/y components of a direction field and are
    rotated/mirrored with the image; other channels are scalar.

    Returns:
        New C-contiguous float32 array.
    """
    out = np.ascontiguousarray(view.invert(maps), dtype=np.float32)
    names = list(channels)
    if "cos" in names and "sin" in names and (view.turns or view.flip):
        ic, is_ = names.index("cos"), names.index("sin")
        out[ic], out[is_] = view.invert_vectors(out[ic].copy(), out[is_].copy())
    return out


def invert_instances(view: View, raw: dict[str, Any], view_shape: tuple[int, int]) -> dict:
    """Mask R-CNN raw outputs on a view -> raw outputs on the original image.

    Args:
        view: the view the network saw.
        raw: ``boxes`` ``(N, 4)`` ``[x1, y1, x2, y2]``, ``scores`` ``(N,)``, box-level ``masks``
            ``(N, M, M)`` of the view.
        view_shape: ``(H, W)`` of the view.

    Returns:
        New dict with the same keys; boxes and masks in the original image's frame and
        ``image_shape`` the original ``(H, W)``.
    """
    boxes = np.asarray(raw["boxes"], np.float64)
    xa, ya = view.invert_points(boxes[:, 0], boxes[:, 1], view_shape)
    xb, yb = view.invert_points(boxes[:, 2], boxes[:, 3], view_shape)
    out_boxes = np.stack(
        [np.minimum(xa, xb), np.minimum(ya, yb), np.maximum(xa, xb), np.maximum(ya, yb)], axis=1
    ).astype(np.float32)
    masks = np.ascontiguousarray(view.invert(np.asarray(raw["masks"])))
    original = view.shape_of(view_shape)  # D4 shapes: the inverse swaps back the same way
    return {
        "boxes": out_boxes.reshape(-1, 4),
        "scores": np.asarray(raw["scores"], np.float32),
        "masks": masks,
        "image_shape": (int(original[0]), int(original[1])),
    }
