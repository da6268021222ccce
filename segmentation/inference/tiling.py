"""Overlapping tiles over an image and the weights that blend their raw maps.

Tiles are ``tile_size`` squares placed every ``tile_size - overlap`` pixels (rounded down to the
network's stride, so that tiles share the whole image's sampling grid); the last tile of a row or
column covers what is left, padded up to the network's input multiple. Neighbouring tiles overlap
by at least ``overlap`` pixels. Each tile's maps are
weighted by a window that falls smoothly to zero (smoothstep) over the ``overlap`` pixels next to
every tile edge that lies inside the image, and is 1 elsewhere: pixels near a tile's cut edge,
where the network sees zero padding instead of the neighbouring image, count little, and the
blended map is continuous across tiles.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tile:
    """One tile: the window ``[y0:y0 + height, x0:x0 + width]`` of the image.

    The window may extend beyond the image's bottom/right edge by less than the network's input
    multiple (padding of the last tile of a row or column); ``cut`` flags the edges (top, bottom, left, right) that lie
    inside the image, where a neighbouring tile continues.
    """

    y0: int
    x0: int
    height: int
    width: int
    cut: tuple[bool, bool, bool, bool]


def _axis_spans(size: int, tile: int, overlap: int, multiple: int, pad: bool) -> list[tuple]:
    """``(start, extent)`` of the tiles along one axis; starts are multiples of ``multiple``."""

    def extent(length: int) -> int:
        return -(-length // multiple) * multiple if pad else length

    if size <= tile:
        return [(0, extent(size))]
    stride = max(multiple, (tile - overlap) // multiple * multiple)
    spans = []
    start = 0
    while start + tile < size:
        spans.append((start, tile))
        start += stride
    spans.append((start, extent(size - start)))
    return spans


def tile_grid(
    shape: tuple[int, int],
    tile_size: int | None,
    overlap: int,
    multiple: int = 32,
    pad: bool = True,
) -> list[Tile]:
    """Overlapping tiles covering an image.

    Tiles start at multiples of ``multiple`` (the network's total stride), so that every tile sees
    the same sampling grid as a whole-image pass and a pixel far from cut edges gets the same
    output; the last tile of a row or column is shortened to what is left of the image.

    Args:
        shape: ``(H, W)`` of the image.
        tile_size: tile side in pixels (a multiple of ``multiple``), or ``None`` for one tile
            holding the whole image.
        overlap: minimum overlap of neighbouring tiles, ``0 <= overlap < tile_size / 2``.
        multiple: the network's input multiple and stride.
        pad: round tile sides up to ``multiple`` (padding beyond the image's bottom/right edge),
            for networks that need it; else tiles end at the image edge.

    Returns:
        Tiles in row-major order; one tile when the image fits in one.
    """
    height, width = int(shape[0]), int(shape[1])
    if tile_size is None:
        tile_size = -(-max(height, width) // multiple) * multiple
    if tile_size % multiple:
        raise ValueError(f"tile_size must be a multiple of {multiple}, got {tile_size}")
    if not 0 <= overlap < tile_size / 2:
        raise ValueError(
            f"tile_overlap must satisfy 0 <= overlap < tile_size / 2, got {overlap} with "
            f"tile_size {tile_size}; lower the overlap or raise tile_size"
        )
    rows = _axis_spans(height, tile_size, overlap, multiple, pad)
    cols = _axis_spans(width, tile_size, overlap, multiple, pad)
    return [
        Tile(y, x, th, tw, (y > 0, y + th < height, x > 0, x + tw < width))
        for y, th in rows
        for x, tw in cols
    ]


def _ramp(length: int, overlap: int, cut_start: bool, cut_end: bool) -> np.ndarray:
    """1-D weights: smoothstep from ~0 to 1 over ``overlap`` pixels at each cut end."""
    w = np.ones(length, np.float32)
    if overlap <= 0:
        return w
    n = min(overlap, length)
    t = (np.arange(n, dtype=np.float32) + 0.5) / overlap
    ramp = t * t * (3.0 - 2.0 * t)
    if cut_start:
        w[:n] = np.minimum(w[:n], ramp)
    if cut_end:
        w[length - n :] = np.minimum(w[length - n :], ramp[::-1])
    return w


def blend_window(tile: Tile, overlap: int) -> np.ndarray:
    """``(height, width)`` float32 weights of a tile's maps: > 0 everywhere, 1 in the middle."""
    top, bottom, left, right = tile.cut
    wy = _ramp(tile.height, overlap, top, bottom)
    wx = _ramp(tile.width, overlap, left, right)
    return wy[:, None] * wx[None, :]


class MapBlender:
    """Accumulates weighted tile maps into full-size ``(C, H, W)`` float32 maps.

    Args:
        channels: number of map channels ``C``.
        shape: ``(H, W)`` of the image.
        overlap: the tiles' overlap (sets the blend window).
    """

    def __init__(self, channels: int, shape: tuple[int, int], overlap: int):
        self.shape = (int(shape[0]), int(shape[1]))
        self.overlap = overlap
        self.total = np.zeros((channels, *self.shape), np.float32)
        self.weight = np.zeros(self.shape, np.float32)

    def add(self, tile: Tile, maps: np.ndarray, scale: float = 1.0) -> None:
        """Add one tile's ``(C, tile.height, tile.width)`` maps, weighted by ``scale`` x window."""
        h = min(tile.height, self.shape[0] - tile.y0)
        w = min(tile.width, self.shape[1] - tile.x0)
        window = blend_window(tile, self.overlap)[:h, :w] * np.float32(scale)
        ys, xs = slice(tile.y0, tile.y0 + h), slice(tile.x0, tile.x0 + w)
        self.total[:, ys, xs] += maps[:, :h, :w] * window
        self.weight[ys, xs] += window

    def result(self) -> np.ndarray:
        """The blended ``(C, H, W)`` float32 maps (the accumulator, divided in place)."""
        if not (self.weight > 0).all():
            raise RuntimeError("some pixels are covered by no tile; this is a bug in tile_grid")
        self.total /= self.weight
        return self.total
