"""Decode the maps of a large image block by block with a bounded peak memory.

The dense families' decodes (U-Net, FPN) work within connected components of the foreground mask
``maps[0] > thresholds.mask``: seeds, watershed, merges, hole filling and size filters never reach
from one component into another. So a large image is decoded in groups of whole components: the
components whose bounding box starts in the same ``block x block`` cell are decoded together in the
crop that holds all of them (their boxes plus a 2-pixel margin), and only their objects are copied
into the result. The crops of neighbouring groups overlap where components cross cell borders,
every component is decoded once and whole, so the result is the same partition into nuclei as a
whole-image decode (numbered differently), at the memory cost of one crop at a time.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from scipy import ndimage as ndi

_CROSS = ndi.generate_binary_structure(2, 1)
_MARGIN = 2  # pixels around each crop: keeps finite differences (FPN divergence) exact


def can_decode_in_blocks(family: Any, thresholds: Any) -> bool:
    """True for dense families whose thresholds have a ``mask`` level for channel 0."""
    return bool(getattr(family, "dense", False)) and hasattr(thresholds, "mask")


def decode_in_blocks(family: Any, maps: np.ndarray, thresholds: Any, block: int) -> np.ndarray:
    """Decode ``(C, H, W)`` maps in groups of whole foreground components.

    Args:
        family: a dense family (``decode(maps, thresholds)``; channel 0 is the foreground
            probability and ``thresholds.mask`` its level, see :func:`can_decode_in_blocks`).
        maps: ``(C, H, W)`` float32 raw maps. Not modified.
        thresholds: the family's thresholds dataclass.
        block: side (pixels) of the cells that group components.

    Returns:
        ``(H, W)`` int32 label image, nuclei numbered ``1..N`` group by group (more than 65,535
        nuclei are fine).
    """
    if not can_decode_in_blocks(family, thresholds):
        raise ValueError(
            f"family {getattr(family, 'name', family)!r} cannot be decoded in blocks (needs dense "
            "maps and a 'mask' threshold); set SegmentOptions(decode_limit=None)"
        )
    height, width = maps.shape[1:]
    comp, n = ndi.label(maps[0] > thresholds.mask, structure=_CROSS, output=np.int32)
    out = np.zeros((height, width), np.int32)
    if n == 0:
        return out
    boxes = ndi.find_objects(comp)
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for index, box in enumerate(boxes, start=1):
        groups[(box[0].start // block, box[1].start // block)].append(index)
    member = np.zeros(n + 1, dtype=bool)
    next_label = 1
    for key in sorted(groups):
        ids = groups[key]
        r0 = max(min(boxes[i - 1][0].start for i in ids) - _MARGIN, 0)
        r1 = min(max(boxes[i - 1][0].stop for i in ids) + _MARGIN, height)
        c0 = max(min(boxes[i - 1][1].start for i in ids) - _MARGIN, 0)
        c1 = min(max(boxes[i - 1][1].stop for i in ids) + _MARGIN, width)
        crop = family.decode(maps[:, r0:r1, c0:c1], thresholds)
        member[ids] = True
        own = member[comp[r0:r1, c0:c1]]
        member[ids] = False
        values = np.unique(crop[own])
        values = values[values > 0]
        if values.size == 0:
            continue
        lut = np.zeros(int(crop.max()) + 1, np.int32)
        lut[values] = np.arange(next_label, next_label + values.size, dtype=np.int32)
        next_label += int(values.size)
        new = lut[crop]  # objects of other groups map to 0
        target = out[r0:r1, c0:c1]
        np.copyto(target, new, where=new > 0)
    return out


def decode_maps(
    family: Any, maps: np.ndarray, thresholds: Any, limit: int | None, block: int
) -> np.ndarray:
    """Decode raw dense maps: whole when ``H * W <= limit`` (or ``limit`` is None), else in blocks.

    Args:
        family: the model family.
        maps: ``(C, H, W)`` float32 raw maps.
        thresholds: the family's thresholds.
        limit: pixel count above which blocks are used.
        block: block side for :func:`decode_in_blocks`.

    Returns:
        ``(H, W)`` int32 label image.
    """
    size = maps.shape[1] * maps.shape[2]
    if limit is None or size <= limit or not can_decode_in_blocks(family, thresholds):
        return np.asarray(family.decode(maps, thresholds), dtype=np.int32)
    return decode_in_blocks(family, maps, thresholds, block)
