"""The tiles a block's window is predicted in: fitted to the window, so that few pixels are
predicted twice.

``segment()`` cuts an image into tiles of ``tile_size`` (1024 on a CPU) overlapping by 96 pixels;
every tile border inside the image costs an overlap predicted twice. A block's window is a known,
fixed size (a 2048 core with its halo is 2176 or 2304 pixels wide), and tiles of 1024 cut it
into three columns where two tiles of 1152 or 1216 would do: 8-9 % more pixels through the
network for 2048 blocks, 40-50 % for blocks of 1024 (1280-pixel windows, one tile of 1280 instead
of two). :func:`fit_tiles` picks, per window, the tile side between ``tile_size`` and
:data:`MAX_GROWTH` times it that sends the fewest pixels through the network, and shrinks the
batch so that a batch holds no more pixels than ``batch_size`` tiles of ``tile_size`` (the
worker's peak memory stays that of ``segment()``'s tiles). The choice depends only on the
window's shape and the settings, so every worker and every restart cuts the same tiles.
"""

from __future__ import annotations

import math

#: Tiles grow to at most this many times ``tile_size`` to fit a window.
MAX_GROWTH = 1.25


def tile_cost(shape: tuple[int, int], tile: int, overlap: int, multiple: int, pad: bool) -> int:
    """Pixels the network sees for an image of ``shape`` cut into tiles of side ``tile``
    (:func:`~segmentation.inference.tiling.tile_grid`'s tiles, padding included)."""
    from segmentation.inference.tiling import tile_grid

    return sum(t.height * t.width for t in tile_grid(shape, tile, overlap, multiple, pad))


def fit_tiles(
    shape: tuple[int, int],
    tile_size: int,
    overlap: int,
    batch_size: int,
    multiple: int = 32,
    pad: bool = True,
) -> tuple[int, int]:
    """The tile side and batch size for one window.

    Args:
        shape: ``(h, w)`` of the window as the network sees it (after any rescale).
        tile_size: the tile side asked for (a multiple of ``multiple``): the smallest tried.
        overlap: the tiles' minimum overlap (pixels).
        batch_size: the tiles per forward pass asked for.
        multiple: the network's input multiple.
        pad: tiles are padded to ``multiple`` (dense networks).

    Returns:
        ``(tile, batch)``: the side in ``[tile_size, MAX_GROWTH * tile_size]`` that sends the
        fewest pixels through the network (ties: the smallest), and the batch size that keeps
        ``batch * tile ** 2 <= batch_size * tile_size ** 2`` (at least 1).
    """
    largest = math.floor(tile_size * MAX_GROWTH / multiple) * multiple
    best = (tile_cost(shape, tile_size, overlap, multiple, pad), tile_size)
    for tile in range(tile_size + multiple, largest + 1, multiple):
        best = min(best, (tile_cost(shape, tile, overlap, multiple, pad), tile))
    tile = best[1]
    batch = max(1, min(batch_size, batch_size * tile_size * tile_size // (tile * tile)))
    return tile, batch
