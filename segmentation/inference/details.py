"""Per-nucleus measurements and the details :func:`~segmentation.inference.segment` can return.

The table is a pandas DataFrame, one row per nucleus in label order, with the columns (and dtypes)
of :data:`NUCLEUS_DTYPE`; pandas is imported when a table is built, so that ``import
segmentation`` stays light. Sums are accumulated in row chunks with ``np.bincount`` so that an
8192 x 8192 image with 100,000 nuclei costs a few small arrays, not a loop over nuclei.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import ndimage as ndi

if TYPE_CHECKING:
    import pandas as pd

#: Columns of the per-nucleus table and their dtypes. Coordinates are pixels of the input image
#: (rows ``y``, columns ``x``); the bounding box is ``[y0, y1) x [x0, x1)``; ``score`` is the
#: network's confidence (NaN where none is known).
NUCLEUS_DTYPE = np.dtype(
    [
        ("label", np.int32),
        ("area", np.int64),
        ("centroid_y", np.float64),
        ("centroid_x", np.float64),
        ("bbox_y0", np.int32),
        ("bbox_x0", np.int32),
        ("bbox_y1", np.int32),
        ("bbox_x1", np.int32),
        ("mean_intensity", np.float64),
        ("score", np.float32),
    ]
)

_ROWS = 512  # rows per accumulation chunk


@dataclass
class SegmentDetails:
    """What :func:`~segmentation.inference.segment` returns next to the labels.

    Attributes:
        nuclei: per-nucleus table, a ``pandas.DataFrame`` with the columns and dtypes of
            :data:`NUCLEUS_DTYPE` (``label``, ``area``, ``centroid_y``...), one row per label
            ``1..N`` in label order (index ``0..N-1``).
        raw: the raw network outputs the labels were decoded from, at the network's scale: dense
            families ``(C, h, w)`` float32 maps (blended over tiles, averaged over views and
            members); Mask R-CNN the merged instance dict (``boxes``, ``scores``, ``masks``,
            ``image_shape``).
        channels: names of the raw map channels (dense families), else ``()``.
        scale: the resize factor applied before inference (``h = round(H * scale)``).
        tiles: number of tiles the image was predicted in.
        views: test-time views x ensemble members averaged per tile.
        timings: seconds spent in ``network`` (normalising tiles, forward passes, blending),
            ``decode`` (instance merging, post-processing, resizing back) and ``table`` (the
            per-nucleus scores and measurements).
        network: which of the model's networks segmented the image: ``"main"``, or the kind of
            image whose network of its own did (``"stained"``: the model's
            :attr:`~segmentation.inference.SegmentationModel.routes`).
    """

    nuclei: pd.DataFrame
    raw: Any
    channels: tuple[str, ...] = ()
    scale: float = 1.0
    tiles: int = 1
    views: int = 1
    timings: dict[str, float] = field(default_factory=dict)
    network: str = "main"


def nucleus_table(
    labels: np.ndarray, image: np.ndarray, scores: np.ndarray | None = None
) -> pd.DataFrame:
    """Measure every nucleus of a label image.

    Args:
        labels: ``(H, W)`` int32 label image numbered ``1..N`` (0 = background).
        image: ``(H, W, C)`` or ``(H, W)`` image of the same height and width; the mean intensity
            is the mean over the nucleus's pixels and the image's channels, in the image's units.
        scores: ``(N + 1,)`` per-label scores (index = label), or ``None`` (score NaN).

    Returns:
        ``pandas.DataFrame`` with the columns and dtypes of :data:`NUCLEUS_DTYPE`, ``N`` rows in
        label order, index ``0..N-1`` (labels absent from the image get area 0 and NaN
        centroid/intensity).
    """
    import pandas as pd

    labels = np.asarray(labels)
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.shape[:2] != labels.shape:
        raise ValueError(
            f"image {image.shape[:2]} and labels {labels.shape} must share height and width"
        )
    n = int(labels.max()) if labels.size else 0
    area = np.zeros(n + 1, np.float64)
    sum_y = np.zeros(n + 1, np.float64)
    sum_x = np.zeros(n + 1, np.float64)
    sum_i = np.zeros(n + 1, np.float64)
    cols = np.arange(labels.shape[1], dtype=np.float64)
    for r0 in range(0, labels.shape[0], _ROWS):
        lab = labels[r0 : r0 + _ROWS]
        flat = lab.ravel()
        rows = np.repeat(np.arange(r0, r0 + lab.shape[0], dtype=np.float64), lab.shape[1])
        area += np.bincount(flat, minlength=n + 1)
        sum_y += np.bincount(flat, weights=rows, minlength=n + 1)
        sum_x += np.bincount(flat, weights=np.tile(cols, lab.shape[0]), minlength=n + 1)
        pixel = image[r0 : r0 + _ROWS].astype(np.float32).mean(axis=2).ravel()
        sum_i += np.bincount(flat, weights=pixel, minlength=n + 1)
    table = np.zeros(n, NUCLEUS_DTYPE)
    table["label"] = np.arange(1, n + 1)
    table["area"] = area[1:].astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        table["centroid_y"] = sum_y[1:] / area[1:]
        table["centroid_x"] = sum_x[1:] / area[1:]
        table["mean_intensity"] = sum_i[1:] / area[1:]
    boxes = ndi.find_objects(labels)
    present = np.array([box is not None for box in boxes], dtype=bool)
    if present.any():
        corners = np.array(
            [(b[0].start, b[1].start, b[0].stop, b[1].stop) for b in boxes if b is not None]
        )
        for column, name in enumerate(("bbox_y0", "bbox_x0", "bbox_y1", "bbox_x1")):
            table[name][present] = corners[:, column]
    table["score"] = np.nan if scores is None else np.asarray(scores, np.float32)[1 : n + 1]
    return pd.DataFrame(table)


def dense_scores(labels: np.ndarray, foreground: np.ndarray) -> np.ndarray:
    """Per-label mean of a foreground probability map: ``(N + 1,)`` float32 (index = label).

    Args:
        labels: ``(h, w)`` int32 labels, decoded at the network's scale.
        foreground: ``(h, w)`` float probabilities (channel 0 of the dense raw maps).
    """
    n = int(labels.max()) if labels.size else 0
    area = np.zeros(n + 1, np.float64)
    total = np.zeros(n + 1, np.float64)
    for r0 in range(0, labels.shape[0], _ROWS):  # row chunks: bincount copies to int64/float64
        flat = labels[r0 : r0 + _ROWS].ravel()
        area += np.bincount(flat, minlength=n + 1)
        total += np.bincount(flat, weights=foreground[r0 : r0 + _ROWS].ravel(), minlength=n + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (total / area).astype(np.float32)


def instance_scores(labels: np.ndarray, raw: dict[str, Any], mask_threshold: float) -> np.ndarray:
    """Per-label detection score of Mask R-CNN labels: ``(N + 1,)`` float32 (index = label).

    A label's score is that of the best-scoring instance whose thresholded mask covers more than
    half of the label's pixels (the instance that painted it); NaN when none does.

    Args:
        labels: ``(h, w)`` int32 labels decoded from ``raw``.
        raw: the instance dict (``boxes``, ``scores``, box-level ``masks``, ``image_shape``).
        mask_threshold: the decode's mask threshold.
    """
    from segmentation.models.maskrcnn.paste import paste_box_mask

    n = int(labels.max()) if labels.size else 0
    area = np.bincount(labels.ravel(), minlength=n + 1)
    out = np.full(n + 1, np.nan, np.float32)
    scores = np.asarray(raw["scores"], np.float32)
    shape = labels.shape
    for i in np.argsort(-scores, kind="stable"):
        y0, x0, probs = paste_box_mask(raw["masks"][i], raw["boxes"][i], shape)
        window = labels[y0 : y0 + probs.shape[0], x0 : x0 + probs.shape[1]]
        covered = window[(probs >= mask_threshold) & (window > 0)]
        if covered.size == 0:
            continue
        values, counts = np.unique(covered, return_counts=True)
        claim = values[(counts * 2 > area[values]) & np.isnan(out[values])]
        out[claim] = scores[i]
    return out


def _as_frame(table: Any) -> pd.DataFrame:
    """A per-nucleus table as a DataFrame (a structured array of :data:`NUCLEUS_DTYPE` too)."""
    import pandas as pd

    if isinstance(table, np.ndarray) and table.dtype.names:
        return pd.DataFrame(table)
    if not isinstance(table, pd.DataFrame):
        raise TypeError(
            f"table must be a pandas DataFrame such as details.nuclei, got {type(table).__name__}"
        )
    return table


def table_rows(table: pd.DataFrame) -> list[dict[str, Any]]:
    """The table as a list of plain dicts (one per nucleus, Python scalars), e.g. for JSON."""
    return _as_frame(table).to_dict("records")


def write_nuclei_csv(path: str | os.PathLike, table: pd.DataFrame, image_name: str) -> Path:
    """Write a per-nucleus table as CSV with an ``image`` column first; returns the path.

    Args:
        path: the CSV file; parent folders are created. Written atomically: a failed write
            leaves no truncated file under ``path``.
        table: ``details.nuclei`` (a DataFrame of :data:`NUCLEUS_DTYPE` columns) or a NumPy
            structured array; a column named ``image`` is replaced by ``image_name``.
        image_name: the value of the ``image`` column.

    Floats are written with 6 significant digits, NaN as an empty field.

    Raises:
        TypeError: ``table`` is neither a DataFrame nor a structured array.
        segmentation.atomic.OutputError: the file cannot be written (message names path and fix).
    """
    from segmentation.atomic import atomic_write

    table = _as_frame(table)
    names = [str(name) for name in table.columns if str(name) != "image"]
    columns = [table[name].tolist() for name in names]  # Python scalars, fast
    with atomic_write(path) as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["image", *names])
        for values in zip(*columns, strict=True):
            writer.writerow([image_name, *(_fmt(value) for value in values)])
    return Path(path)


def _fmt(value: Any) -> str:
    value = value.item() if hasattr(value, "item") else value
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if np.isnan(value) else f"{value:.6g}"
    return str(value)
