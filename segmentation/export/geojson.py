"""Nuclei as GeoJSON for QuPath: ``<stem>_nuclei.geojson``, one detection per label.

The file is a GeoJSON ``FeatureCollection`` in pixel coordinates (``x`` = column, ``y`` = row,
pixel corners at integers: see :mod:`segmentation.export.outlines`), which QuPath imports with
*File > Import objects from file* or by dragging the file onto the image. Each label is one
``Feature``: a ``Polygon`` (with interior rings for holes) or, for a label in several parts, a
``MultiPolygon``; its ``properties`` are what QuPath reads::

    {"objectType": "detection", "name": "17",
     "classification": {"name": "Nucleus", "color": [0, 200, 0]},
     "measurements": {"area": 131, "centroid_y": 40.2, ...}}

:func:`from_geojson` rasterises such a collection back into labels (a pixel is inside when its
centre is), which gives back the exported labels exactly.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from segmentation.export.outlines import label_polygons

if TYPE_CHECKING:
    import pandas as pd

#: The classification colour QuPath shows when the file names none other (RGB, 0-255).
DEFAULT_COLOR = (0, 200, 0)


def nucleus_features(
    labels: np.ndarray,
    *,
    table: pd.DataFrame | None = None,
    classification: str = "Nucleus",
    color: tuple[int, int, int] = DEFAULT_COLOR,
    offset: tuple[int, int] = (0, 0),
) -> Iterator[dict[str, Any]]:
    """Yield one QuPath detection Feature per label (see :func:`to_geojson`), in label order.

    Args:
        labels: ``(H, W)`` integer labels (0 = background); not modified.
        table: per-nucleus table with a ``label`` column, e.g. ``details.nuclei`` of
            ``segment(..., return_details=True)`` (a DataFrame, or a structured array); its other
            numeric columns become each Feature's ``measurements`` (NaN and infinite values left
            out, as JSON has none). ``None``: no measurements.
        classification: the class name QuPath shows.
        color: the class's ``(r, g, b)`` colour, 0-255.
        offset: ``(row, col)`` of ``labels[0, 0]`` in the whole image, added to every vertex.

    Yields:
        GeoJSON Feature dicts (plain Python types, ready for ``json.dumps``).
    """
    measurements = _measurements(table)
    klass = {"name": str(classification), "color": [int(v) for v in color]}
    for label, polygons in label_polygons(labels, offset):
        rings = [[_closed(ring) for ring in polygon] for polygon in polygons]
        if len(rings) == 1:
            geometry = {"type": "Polygon", "coordinates": rings[0]}
        else:
            geometry = {"type": "MultiPolygon", "coordinates": rings}
        properties: dict[str, Any] = {
            "objectType": "detection",
            "name": str(label),
            "classification": dict(klass),
        }
        if measurements is not None:
            properties["measurements"] = measurements.get(label, {})
        yield {"type": "Feature", "geometry": geometry, "properties": properties}


def to_geojson(
    labels: np.ndarray,
    path: str | os.PathLike | None = None,
    *,
    table: pd.DataFrame | None = None,
    classification: str = "Nucleus",
    color: tuple[int, int, int] = DEFAULT_COLOR,
    offset: tuple[int, int] = (0, 0),
) -> dict[str, Any]:
    """Nuclei as a GeoJSON FeatureCollection that QuPath imports as detections.

    Args:
        labels: ``(H, W)`` integer labels (0 = background, any integer dtype); not modified.
        path: where to write the collection (e.g. ``out / "img_nuclei.geojson"``), atomically:
            a failed write leaves no truncated file. ``None``: only return it.
        table: per-nucleus measurements, e.g. ``details.nuclei`` (see :func:`nucleus_features`).
        classification: the class name of every nucleus.
        color: the class's ``(r, g, b)`` colour, 0-255.
        offset: ``(row, col)`` of ``labels[0, 0]`` in the whole image (vertices are shifted by it).

    Returns:
        ``{"type": "FeatureCollection", "features": [...]}``, one Feature per label present:
        ``geometry`` a ``Polygon`` (outer ring, then holes) or ``MultiPolygon`` (a label in
        several 4-connected parts) of integer pixel-corner ``[x, y]`` vertices, rings closed,
        outer rings counter-clockwise in ``(x, y)`` and holes clockwise; ``properties``
        ``objectType`` ``"detection"``, ``name`` the label id as a string, ``classification``
        ``{"name", "color"}`` and, with a table, ``measurements`` ``{column: number}``.

    Raises:
        ValueError: ``labels`` is not an ``(H, W)`` non-negative integer image.
        segmentation.atomic.OutputError: ``path`` cannot be written (message names path and fix).

    Example:
        >>> labels = np.zeros((4, 4), np.int32); labels[1:3, 1:3] = 1
        >>> to_geojson(labels)["features"][0]["geometry"]["coordinates"]
        [[[1, 1], [3, 1], [3, 3], [1, 3], [1, 1]]]
    """
    features = list(
        nucleus_features(
            labels, table=table, classification=classification, color=color, offset=offset
        )
    )
    collection = {"type": "FeatureCollection", "features": features}
    if path is not None:
        from segmentation.atomic import atomic_write

        with atomic_write(path) as f:
            json.dump(collection, f, allow_nan=False, separators=(",", ":"))
            f.write("\n")
    return collection


def from_geojson(
    obj: dict[str, Any] | str | os.PathLike,
    shape: tuple[int, int],
    *,
    offset: tuple[int, int] = (0, 0),
) -> np.ndarray:
    """Rasterise a FeatureCollection of (Multi)Polygons back into a label image.

    A pixel belongs to a polygon when its centre lies inside it (even-odd over the polygon's
    rings), the rule QuPath and ImageJ use, so the output of :func:`to_geojson` comes back exactly.

    Args:
        obj: a FeatureCollection dict, or the path of a ``.geojson`` file.
        shape: ``(H, W)`` of the label image to fill.
        offset: ``(row, col)`` of pixel ``[0, 0]`` in the collection's coordinates.

    Returns:
        ``(H, W)`` int32 labels: a Feature's label is its ``properties.name`` when that is an
        integer, else its position in the collection from 1; later Features paint over earlier
        ones; parts outside ``shape`` are clipped.

    Raises:
        ValueError: a Feature's geometry is neither ``Polygon`` nor ``MultiPolygon``.
    """
    from skimage.draw import polygon as fill_polygon

    if not isinstance(obj, dict):
        obj = json.loads(Path(obj).read_text(encoding="utf-8"))
    height, width = (int(v) for v in shape)
    dy, dx = (int(v) for v in offset)
    labels = np.zeros((height, width), np.int32)
    for position, feature in enumerate(obj.get("features", []), start=1):
        geometry = feature.get("geometry") or {}
        kind = geometry.get("type")
        if kind == "Polygon":
            polygons = [geometry["coordinates"]]
        elif kind == "MultiPolygon":
            polygons = geometry["coordinates"]
        else:
            raise ValueError(
                f"feature {position} has a {kind!r} geometry; only Polygon and MultiPolygon "
                "outline nuclei"
            )
        name = (feature.get("properties") or {}).get("name")
        label = int(name) if str(name).isdigit() else position
        inside = np.zeros((height, width), bool)
        for polygon in polygons:
            part = np.zeros((height, width), bool)
            for ring in polygon:
                xy = np.asarray(ring, np.float64)
                # corner (x, y) -> skimage's centre convention: pixel (r, c) is centred at (r, c)
                rr, cc = fill_polygon(xy[:, 1] - dy - 0.5, xy[:, 0] - dx - 0.5, (height, width))
                ring_mask = np.zeros((height, width), bool)
                ring_mask[rr, cc] = True
                part ^= ring_mask  # even-odd: a hole flips its pixels back out
            inside |= part
        labels[inside] = label
    return labels


def _closed(ring: np.ndarray) -> list[list[int]]:
    """An ``(n, 2)`` ring as a closed GeoJSON list of ``[x, y]`` ints (first vertex repeated)."""
    points = ring.tolist()
    return [*points, points[0]]


def _measurements(table: Any) -> dict[int, dict[str, float | int]] | None:
    """``{label: {column: value}}`` from a per-nucleus table (finite numeric values only)."""
    if table is None:
        return None
    from segmentation.inference.details import table_rows

    rows = table_rows(table)
    out: dict[int, dict[str, float | int]] = {}
    for row in rows:
        if "label" not in row:
            raise ValueError("the table needs a 'label' column, as details.nuclei has")
        values: dict[str, float | int] = {}
        for name, value in row.items():
            if name in ("label", "image"):
                continue
            value = value.item() if hasattr(value, "item") else value
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if isinstance(value, float) and not math.isfinite(value):
                continue
            values[str(name)] = value
        out[int(row["label"])] = values
    return out
