"""Nuclei as ImageJ ROIs for Fiji's ROI Manager: ``<stem>_rois.zip``, one ROI per label.

Written with the ``roifile`` package. Each ROI is named by its label (``nucleus_0017``; the digits
grow past 4 for 10,000 nuclei or more, so the names sort in label order) and outlines the nucleus
along its pixel edges (:mod:`segmentation.export.outlines`), so ImageJ's mask of the ROI (a pixel
is inside when its centre is) is exactly the nucleus:

- a nucleus in one piece without holes is a traced polygon (type ``TRACED``, integer corners: what
  ImageJ's wand and *Analyze Particles* make);
- a nucleus with a hole, or in several 4-connected pieces, is a composite ROI (``ShapeRoi``: the
  rings as one path, filled even-odd, which ImageJ reads in absolute pixel coordinates).

Open the zip in Fiji with *ROI Manager > More > Open...* (or drag it onto Fiji's window).
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from segmentation.export.outlines import Polygon, check_labels, label_polygons

if TYPE_CHECKING:
    from roifile import ImagejRoi

#: Largest coordinate ImageJ stores as an integer (it reads shorts below -5000 as unsigned).
_MAX_INT_COORD = 60535


def to_imagej_rois(
    labels: np.ndarray,
    path: str | os.PathLike,
    *,
    offset: tuple[int, int] = (0, 0),
    prefix: str = "nucleus_",
) -> Path:
    """Write one ImageJ polygon ROI per label into a zip that Fiji's ROI Manager opens.

    Args:
        labels: ``(H, W)`` integer labels (0 = background, any integer dtype); not modified.
        path: the ``.zip`` file (e.g. ``out / "img_rois.zip"``), written atomically: a failed
            write leaves no truncated file, and an existing file is replaced, not appended to.
        offset: ``(row, col)`` of ``labels[0, 0]`` in the whole image (vertices are shifted by it).
        prefix: ROI names are ``prefix`` + the label id zero-padded to at least 4 digits.

    Returns:
        ``path`` as a ``Path``. The zip holds ``<name>.roi`` entries in label order, one per label
        present; each ROI's name is ``<name>``.

    Raises:
        ValueError: ``labels`` is not an ``(H, W)`` non-negative integer image.
        segmentation.atomic.OutputError: ``path`` cannot be written (message names path and fix).

    Example:
        >>> labels = np.zeros((64, 64), np.int32); labels[10:20, 10:20] = 1
        >>> to_imagej_rois(labels, tmp / "img_rois.zip")  # doctest: +SKIP
    """
    from segmentation.atomic import atomic_write

    labels = check_labels(labels)
    digits = max(4, len(str(int(labels.max(initial=0)))))
    with (
        atomic_write(path, "wb") as f,
        zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as archive,
    ):
        for label, polygons in label_polygons(labels, offset):
            name = f"{prefix}{label:0{digits}d}"
            archive.writestr(f"{name}.roi", nucleus_roi(polygons, name).tobytes())
    return Path(path)


def nucleus_roi(polygons: list[Polygon], name: str) -> ImagejRoi:
    """One nucleus's outline as a ``roifile.ImagejRoi``.

    Args:
        polygons: the nucleus's polygons from :func:`~segmentation.export.outlines.label_polygons`
            (``(n, 2)`` int ``(x, y)`` corner rings, outer ring first, holes after it).
        name: the ROI's name.

    Returns:
        A ``TRACED`` polygon ROI for one polygon without holes, else a composite ROI whose path
        holds every ring (filled even-odd).
    """
    from roifile import ROI_OPTIONS, ROI_TYPE, ImagejRoi

    rings = [ring for polygon in polygons for ring in polygon]
    corners = np.concatenate(rings)
    (left, top), (right, bottom) = corners.min(axis=0), corners.max(axis=0)
    roi = ImagejRoi(name=name, left=int(left), top=int(top), right=int(right), bottom=int(bottom))
    if len(rings) == 1:
        points = rings[0]
        roi.roitype = ROI_TYPE.TRACED
        roi.n_coordinates = len(points)
        roi.integer_coordinates = (points - [left, top]).astype(np.int32)
        if right > _MAX_INT_COORD or bottom > _MAX_INT_COORD:
            roi.options = ROI_OPTIONS.SUB_PIXEL_RESOLUTION  # float coordinates, exact to 2**24
            roi.subpixel_coordinates = points.astype(np.float32)
        return roi
    path: list[float] = []
    for ring in rings:  # java.awt.geom.PathIterator: 0 MOVETO x y, 1 LINETO x y, 4 CLOSE
        path += [0, *ring[0].tolist()]
        for x, y in ring[1:].tolist():
            path += [1, x, y]
        path.append(4)
    roi.roitype = ROI_TYPE.RECT
    roi.multi_coordinates = np.asarray(path, np.float32)
    roi.shape_roi_size = len(path)
    return roi
