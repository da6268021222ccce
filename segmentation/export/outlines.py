"""Exact outlines of labelled nuclei: polygons along pixel edges, shared by every export.

A pixel ``(row, col)`` is the unit square ``[col, col + 1] x [row, row + 1]`` (the pixel-corner
convention of QuPath and ImageJ), so a vertex ``(x, y)`` is a pixel corner with integer
coordinates, ``x`` the column and ``y`` the row. A nucleus's outline runs along the edges between
its pixels and the others; filling the polygon (a pixel is inside when its centre is) gives back
exactly the nucleus's pixels.

Each label becomes a list of polygons, one per 4-connected part, each a list of rings: the outer
ring first, then one ring per hole (a 4-connected run of other pixels that the part encloses).
Outer rings have a positive signed area in ``(x, y)`` (counter-clockwise in axes with ``y`` up,
the right-hand rule of GeoJSON, RFC 7946) and holes a negative one. With 4-connected parts and
holes no ring touches itself, so the polygons are valid simple features (rings of one polygon, and
polygons of one label, may share single corners where pixels touch diagonally), as JTS (QuPath) and
GEOS (shapely) require.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from scipy import ndimage as ndi

#: One polygon: its rings, each an ``(n, 2)`` int64 array of ``(x, y)`` corners, not closed
#: (the first vertex is not repeated), outer ring first.
Polygon = list[np.ndarray]


def check_labels(labels: np.ndarray) -> np.ndarray:
    """Return ``labels`` as an array after checking it is an ``(H, W)`` non-negative integer image.

    Args:
        labels: ``(H, W)`` integer labels, 0 = background (any integer dtype; bool is read as
            one label 1).

    Raises:
        ValueError: not 2-D, not integer, or negative values (the message names shape and dtype).
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be an (H, W) label image, got shape {labels.shape}")
    if labels.dtype.kind not in "iub":
        raise ValueError(
            f"labels must hold integers (0 = background), got dtype {labels.dtype}; "
            "convert with labels.astype(np.int32)"
        )
    if labels.dtype.kind == "i" and labels.size and labels.min() < 0:
        raise ValueError(f"labels must be >= 0, got a minimum of {labels.min()}")
    return labels.view(np.uint8) if labels.dtype == bool else labels


def label_polygons(
    labels: np.ndarray, offset: tuple[int, int] = (0, 0)
) -> Iterator[tuple[int, list[Polygon]]]:
    """Yield every label's exact outline, in label order.

    Args:
        labels: ``(H, W)`` integer labels (0 = background); not modified. Labels need not be
            consecutive; absent labels are skipped.
        offset: ``(row, col)`` of ``labels[0, 0]`` in the whole image, added to every vertex
            (``x += col``, ``y += row``).

    Yields:
        ``(label, polygons)``: the label id (int) and its polygons (see :data:`Polygon`), one per
        4-connected part, in raster order of the parts.

    Example:
        >>> labels = np.zeros((4, 4), np.int32); labels[1:3, 1:3] = 7
        >>> [(label, p[0][0].tolist()) for label, p in label_polygons(labels)]
        [(7, [[1, 1], [3, 1], [3, 3], [1, 3]])]
    """
    labels = check_labels(labels)
    dy, dx = (int(v) for v in offset)
    for index, box in enumerate(ndi.find_objects(labels)):
        if box is None:
            continue
        label = index + 1
        shift = np.array([box[1].start + dx, box[0].start + dy], np.int64)
        polygons = mask_polygons(labels[box] == label)
        yield label, [[ring + shift for ring in polygon] for polygon in polygons]


def mask_polygons(mask: np.ndarray) -> list[Polygon]:
    """Outline a boolean mask as polygons with holes (coordinates in the mask's own frame).

    Args:
        mask: ``(H, W)`` bool.

    Returns:
        One polygon per 4-connected part of ``mask`` (raster order), each ``[outer, *holes]``
        with ``(n, 2)`` int64 ``(x, y)`` rings (outer positive area, holes negative); ``[]`` for
        an empty mask.
    """
    mask = np.asarray(mask, dtype=bool)
    parts, n = ndi.label(mask)  # 4-connected parts
    if n == 1 and _enclosed(mask).sum() == mask.sum():
        return [[_ring(mask)]]  # the common case: one part, no hole
    polygons = []
    for k, box in enumerate(ndi.find_objects(parts), start=1):
        part = parts[box] == k
        filled = _enclosed(part)
        origin = np.array([box[1].start, box[0].start], np.int64)
        rings = [_ring(filled) + origin]
        holes, _ = ndi.label(filled & ~part)  # 4-connected runs of other pixels inside
        for h, hole_box in enumerate(ndi.find_objects(holes), start=1):
            hole = _enclosed(holes[hole_box] == h)
            corner = np.array([box[1].start + hole_box[1].start, box[0].start + hole_box[0].start])
            rings.append(_ring(hole)[::-1] + corner)  # reversed: holes wind the other way
        polygons.append(rings)
    return polygons


def _enclosed(mask: np.ndarray) -> np.ndarray:
    """``mask`` with every 4-connected run of other pixels that does not reach the border added.

    The result is 4-connected when ``mask`` is, and has no two pixels that touch only at a corner
    with both other pixels outside (a closed 4-path through them would enclose one of those), so
    its boundary is one simple ring.
    """
    return ndi.binary_fill_holes(mask)  # the default cross: background runs are 4-connected


def _ring(mask: np.ndarray) -> np.ndarray:
    """The boundary of a 4-connected, hole-free mask as one ring of corners.

    Args:
        mask: ``(H, W)`` bool, one 4-connected part whose other pixels all connect (4-connected) to
            the border; see :func:`_enclosed`.

    Returns:
        ``(n, 2)`` int64 ``(x, y)`` corners (collinear vertices dropped), positive signed area,
        starting at the top-left corner, not closed.
    """
    pad = np.pad(mask, 1)
    height, width = pad.shape
    stride = width + 1  # vertex (x, y) of the padded frame is y * stride + x
    above, below = pad[:-1], pad[1:]
    left, right = pad[:, :-1], pad[:, 1:]
    starts, ends = [], []
    r, c = np.nonzero(~above & below)  # top edge of pixel (r + 1, c): (c, r + 1) -> (c + 1, r + 1)
    starts.append((r + 1) * stride + c)
    ends.append((r + 1) * stride + c + 1)
    r, c = np.nonzero(above & ~below)  # bottom edge of pixel (r, c): (c + 1, r + 1) -> (c, r + 1)
    starts.append((r + 1) * stride + c + 1)
    ends.append((r + 1) * stride + c)
    r, c = np.nonzero(left & ~right)  # right edge of pixel (r, c): (c + 1, r) -> (c + 1, r + 1)
    starts.append(r * stride + c + 1)
    ends.append((r + 1) * stride + c + 1)
    r, c = np.nonzero(~left & right)  # left edge of pixel (r, c + 1): (c + 1, r + 1) -> (c + 1, r)
    starts.append((r + 1) * stride + c + 1)
    ends.append(r * stride + c + 1)
    start = np.concatenate(starts)
    following = dict(zip(start.tolist(), np.concatenate(ends).tolist(), strict=True))
    if len(following) != start.size:
        raise AssertionError("two boundary edges leave one corner: the mask has a saddle")
    first = int(start.min())  # the top-left corner of the top row: a corner of the ring
    path = [first]
    vertex = following[first]
    while vertex != first:
        path.append(vertex)
        vertex = following[vertex]
    if len(path) != start.size:
        raise AssertionError("the mask's boundary is more than one ring: it has a hole")
    vertices = np.array(path, np.int64)
    xy = np.stack([vertices % stride, vertices // stride], axis=1) - 1  # back to the mask frame
    turn = np.any((xy - np.roll(xy, 1, axis=0)) != (np.roll(xy, -1, axis=0) - xy), axis=1)
    return xy[turn]
