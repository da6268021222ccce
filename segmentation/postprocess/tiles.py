"""Decode large images one group of mask components at a time, in time linear in the pixels.

Every decoding step (seeds, watershed, merging, hole filling, size filter) stays inside one
connected component of the foreground mask, so the components can be decoded independently. On
large images the whole-image arrays outgrow the CPU caches and the time per pixel grows with the
image (measured: 1.4x per pixel at 4096² than at 1024² when decoding whole images).
:func:`decode_by_components` instead decodes the components in groups (those whose bounding box
starts in the same ``TILE`` x ``TILE`` tile) on the crop around each group, which keeps the cost
per pixel nearly flat (1.1-1.2x at 4096² vs 1024² with 512-pixel tiles) and gives the same result.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import numpy as np
from scipy import ndimage as ndi

_CROSS = ndi.generate_binary_structure(2, 1)

#: Side (pixels) of the tiles that group mask components on large images.
TILE = 512


def decode_by_components(
    maps: np.ndarray,
    mask: np.ndarray,
    decode_crop: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> np.ndarray:
    """Apply ``decode_crop`` to the whole image, or group by group of mask components.

    Args:
        maps: ``(C, H, W)`` float32 maps.
        mask: ``(H, W)`` bool foreground mask; pixels outside it are background in the result.
        decode_crop: ``(maps (C, h, w), mask (h, w)) -> (h, w)`` int32 labels numbered 1..k,
            0 outside ``mask``, reading the maps only on ``mask`` and its 4-neighbours (which
            never belong to another component, so the crops need no masking of the maps).

    Returns:
        ``(H, W)`` ``int32`` label image numbered 1..N. Images up to ``2 * TILE**2`` pixels are
        decoded in one call; larger ones group by group, each on the crop of its components'
        bounding box plus one pixel (a view of ``maps``, not a copy).
    """
    height, width = mask.shape
    if height * width <= 2 * TILE * TILE:
        return decode_crop(maps, mask)
    comp, n = ndi.label(mask, structure=_CROSS, output=np.int32)
    out = np.zeros(mask.shape, dtype=np.int32)
    boxes = ndi.find_objects(comp)
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for index, box in enumerate(boxes, start=1):
        if box is not None:
            groups[(box[0].start // TILE, box[1].start // TILE)].append(index)
    member = np.zeros(n + 1, dtype=bool)
    offset = 0
    for ids in groups.values():
        r0 = max(min(boxes[i - 1][0].start for i in ids) - 1, 0)
        r1 = min(max(boxes[i - 1][0].stop for i in ids) + 1, height)
        c0 = max(min(boxes[i - 1][1].start for i in ids) - 1, 0)
        c1 = min(max(boxes[i - 1][1].stop for i in ids) + 1, width)
        member[ids] = True
        sub = member[comp[r0:r1, c0:c1]]
        member[ids] = False
        labels = decode_crop(maps[:, r0:r1, c0:c1], sub)
        found = labels > 0
        out[r0:r1, c0:c1][found] = labels[found] + offset
        offset += int(labels.max()) if found.any() else 0
    return out
