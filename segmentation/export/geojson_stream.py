"""Whole-slide GeoJSON for QuPath, written block by block from a label array larger than memory.

:func:`stream_geojson` reads a ``(H, W)`` label array (a Zarr array, e.g. the output of
``segment_large``, or anything sliceable like one) one block at a time and writes the same
FeatureCollection as :func:`~segmentation.export.geojson.to_geojson` would for the whole image,
in level-0 pixel coordinates, without ever holding the whole image, nor all the features.

A first pass reads the array block by block for every label's bounding box (16 bytes a nucleus);
the second writes each nucleus once, from the block that holds the top-left corner of its box,
in a window that reaches ``margin`` pixels past the block. A nucleus whose box reaches farther
(a long nucleus, or a label in parts far apart) is read in a window of its own, so no outline is
ever cut and no label is written twice.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import ndimage as ndi

from segmentation.export.geojson import DEFAULT_COLOR, nucleus_features

if TYPE_CHECKING:
    import pandas as pd


def stream_geojson(
    labels: Any,
    path: str | os.PathLike,
    *,
    table: pd.DataFrame | None = None,
    block_size: int = 2048,
    margin: int = 256,
    classification: str = "Nucleus",
    color: tuple[int, int, int] = DEFAULT_COLOR,
) -> int:
    """Write the nuclei of a large label array as a QuPath GeoJSON FeatureCollection.

    Args:
        labels: ``(H, W)`` integer labels (0 = background), read by slicing: a ``zarr.Array``,
            a NumPy array or a memory map. Labels need not be consecutive.
        path: the ``.geojson`` file, written atomically (a failed run leaves no truncated file).
        table: per-nucleus measurements with a ``label`` column (e.g. ``segment_large``'s
            nucleus table, or ``details.nuclei``); only the rows of each block's nuclei are
            converted at a time. ``None``: no measurements.
        block_size: side of the blocks read (pixels); memory grows with ``(block_size +
            2 * margin)^2`` labels.
        margin: pixels read past each block, to finish the nuclei that start in it; a nucleus
            reaching farther is read alone, in its own bounding box.
        classification: the class name QuPath shows.
        color: the class's ``(r, g, b)`` colour, 0-255.

    Returns:
        The number of Features written (one per label present).

    Raises:
        ValueError: ``labels`` is not 2-D or not integer; ``block_size`` < 1 or ``margin`` < 0;
            the table has no ``label`` column.
        segmentation.atomic.OutputError: ``path`` cannot be written.
    """
    from segmentation.atomic import atomic_write

    shape = tuple(int(v) for v in getattr(labels, "shape", ()))
    dtype = np.dtype(getattr(labels, "dtype", np.float64))
    if len(shape) != 2:
        raise ValueError(f"labels must be an (H, W) label array, got shape {shape}")
    if dtype.kind not in "iu":
        raise ValueError(f"labels must hold integers (0 = background), got dtype {dtype}")
    if block_size < 1 or margin < 0:
        raise ValueError(f"need block_size >= 1 and margin >= 0, got {block_size} and {margin}")
    lookup = _indexed(table)
    count = 0
    with atomic_write(path) as f:
        f.write('{"type":"FeatureCollection","features":[')
        for window, origin in _owned_windows(labels, shape, block_size, margin):
            rows = None if lookup is None else _rows(lookup, window)
            for feature in nucleus_features(
                window, table=rows, classification=classification, color=color, offset=origin
            ):
                f.write(",\n" if count else "\n")
                f.write(json.dumps(feature, allow_nan=False, separators=(",", ":")))
                count += 1
        f.write("\n]}\n")
    return count


def _blocks(shape: tuple[int, int], block: int) -> Iterator[tuple[int, int, int, int]]:
    """``(top, left, bottom, right)`` of each block, in raster order."""
    for top in range(0, shape[0], block):
        for left in range(0, shape[1], block):
            yield top, left, min(top + block, shape[0]), min(left + block, shape[1])


def _label_boxes(labels: Any, shape: tuple[int, int], block: int) -> tuple[np.ndarray, np.ndarray]:
    """Every label's bounding box over the whole array, read block by block.

    Returns:
        ``ids`` (n,) sorted label values (0 excluded) and ``boxes`` (n, 4) int64 ``(top, left,
        bottom, right)``, bottom and right exclusive.
    """
    found_ids, found_boxes = [], []
    for top, left, bottom, right in _blocks(shape, block):
        window = np.asarray(labels[top:bottom, left:right])
        ids, local = np.unique(window, return_inverse=True)
        slices = ndi.find_objects(local.reshape(window.shape))  # local value v -> ids[v]
        for value, (rows, cols) in enumerate(slices, start=1):
            if ids[value] != 0:
                found_ids.append(ids[value])
                found_boxes.append(
                    (rows.start + top, cols.start + left, rows.stop + top, cols.stop + left)
                )
    if not found_ids:
        return np.zeros(0, np.int64), np.zeros((0, 4), np.int64)
    ids = np.asarray(found_ids, np.int64)
    boxes = np.asarray(found_boxes, np.int64)
    order = np.argsort(ids, kind="stable")
    ids, boxes = ids[order], boxes[order]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    low = np.minimum.reduceat(boxes[:, :2], starts)
    high = np.maximum.reduceat(boxes[:, 2:], starts)
    return ids[starts], np.concatenate([low, high], axis=1)


def _owned_windows(
    labels: Any, shape: tuple[int, int], block: int, margin: int
) -> Iterator[tuple[np.ndarray, tuple[int, int]]]:
    """Yield ``(window, (row, col))``: labels read around each block, zero but for the nuclei the
    block owns (whole bounding box in the window, starting in the block); a nucleus that reaches
    farther comes in a window of its own (its bounding box)."""
    ids, boxes = _label_boxes(labels, shape, block)
    for box in _blocks(shape, block):
        owned = (
            (boxes[:, 0] >= box[0])
            & (boxes[:, 0] < box[2])
            & (boxes[:, 1] >= box[1])
            & (boxes[:, 1] < box[3])
        )
        if not owned.any():
            continue
        top, left = max(0, box[0] - margin), max(0, box[1] - margin)
        bottom, right = min(shape[0], box[2] + margin), min(shape[1], box[3] + margin)
        fits = owned & (boxes[:, 2] <= bottom) & (boxes[:, 3] <= right)
        if fits.any():
            window = np.asarray(labels[top:bottom, left:right])
            yield np.where(np.isin(window, ids[fits]), window, 0), (top, left)
        for label, (t, lf, b, r) in zip(ids[owned & ~fits], boxes[owned & ~fits], strict=True):
            window = np.asarray(labels[t:b, lf:r])
            yield np.where(window == label, window, 0), (int(t), int(lf))


def _indexed(table: Any) -> pd.DataFrame | None:
    """The table as a DataFrame indexed by label (``None`` stays ``None``)."""
    if table is None:
        return None
    import pandas as pd

    frame = table if isinstance(table, pd.DataFrame) else pd.DataFrame(table)
    if "label" not in frame.columns:
        raise ValueError("the table needs a 'label' column, as details.nuclei has")
    return frame.set_index(frame["label"].to_numpy(), drop=False)


def _rows(lookup: pd.DataFrame, window: np.ndarray) -> pd.DataFrame:
    """The table's rows of the labels present in ``window``."""
    present = np.unique(window)
    present = present[present > 0]
    return lookup.loc[lookup.index.intersection(present)]
