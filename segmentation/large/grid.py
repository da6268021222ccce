"""The block grid of a large image: cores that tile the image, and windows (core + halo) around them.

Cores are ``block_size`` squares in row-major order (the last row and column shorter); every pixel
of the image lies in exactly one core, and the output Zarr array is chunked on the cores, so that
each block writes one chunk. A block is segmented in its window: the core grown by ``halo`` pixels
on every side, cut at the image's edges.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Box:
    """The rectangle ``[y0:y1, x0:x1]`` of an image (pixels, ``y1`` and ``x1`` exclusive)."""

    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)``."""
        return self.y1 - self.y0, self.x1 - self.x0

    def intersect(self, other: Box) -> Box | None:
        """The common rectangle of two boxes, or ``None`` when they do not overlap."""
        y0, y1 = max(self.y0, other.y0), min(self.y1, other.y1)
        x0, x1 = max(self.x0, other.x0), min(self.x1, other.x1)
        return Box(y0, y1, x0, x1) if y0 < y1 and x0 < x1 else None

    def local(self, inner: Box) -> tuple[slice, slice]:
        """Slices selecting ``inner`` (a box inside this one) from an array covering this box."""
        return (
            slice(inner.y0 - self.y0, inner.y1 - self.y0),
            slice(inner.x0 - self.x0, inner.x1 - self.x0),
        )


@dataclass(frozen=True)
class BlockGrid:
    """Cores of ``block_size`` over an ``(height, width)`` image, with ``halo``-wide windows.

    Attributes:
        height, width: the image's size in pixels.
        block_size: side of the cores (the output's chunks).
        halo: pixels added on every side of a core to form its window.
    """

    height: int
    width: int
    block_size: int
    halo: int

    @property
    def blocks(self) -> tuple[int, int]:
        """Number of block rows and columns."""
        return -(-self.height // self.block_size), -(-self.width // self.block_size)

    def __len__(self) -> int:
        rows, cols = self.blocks
        return rows * cols

    def indices(self) -> Iterator[tuple[int, int]]:
        """``(row, col)`` of every block, row-major (the order of :meth:`number`)."""
        rows, cols = self.blocks
        for r in range(rows):
            for c in range(cols):
                yield r, c

    def number(self, index: tuple[int, int]) -> int:
        """Row-major position of a block."""
        return index[0] * self.blocks[1] + index[1]

    def core(self, index: tuple[int, int]) -> Box:
        """The core of block ``(row, col)``."""
        r, c = index
        b = self.block_size
        return Box(r * b, min((r + 1) * b, self.height), c * b, min((c + 1) * b, self.width))

    def window(self, index: tuple[int, int]) -> Box:
        """The core grown by ``halo`` on every side, cut at the image's edges."""
        core, h = self.core(index), self.halo
        return Box(
            max(core.y0 - h, 0),
            min(core.y1 + h, self.height),
            max(core.x0 - h, 0),
            min(core.x1 + h, self.width),
        )

    def neighbourhood(self, index: tuple[int, int]) -> list[tuple[int, int]]:
        """The block and its (up to 8) neighbours, faces and corners, row-major."""
        rows, cols = self.blocks
        r, c = index
        return [
            (i, j)
            for i in range(max(r - 1, 0), min(r + 2, rows))
            for j in range(max(c - 1, 0), min(c + 2, cols))
        ]
