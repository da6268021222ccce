"""Exports that other tools open: QuPath (GeoJSON detections), Fiji (ImageJ ROI zip) and the
BioImage Model Zoo (a model package).

- :func:`to_geojson` -> ``<stem>_nuclei.geojson``: a FeatureCollection of nucleus polygons in
  pixel coordinates, with the per-nucleus measurements, as QuPath imports detections.
- :func:`stream_geojson`: the same file for a label array larger than memory (a Zarr array, e.g.
  ``segment_large``'s output), written block by block.
- :func:`to_imagej_rois` -> ``<stem>_rois.zip``: one polygon ROI per nucleus (``roifile``), named
  by label, for Fiji's ROI Manager.
- :func:`to_bioimageio` -> ``PACKAGE.zip``: one network of a model as a BioImage Model Zoo package
  (format 0.5: TorchScript and state-dict weights, preprocessing, test tensors, cover, README;
  the watershed decoding named as post-processing the zoo cannot run);
  ``segmentation export-bioimageio MODEL --output PACKAGE.zip`` writes it.

The label exports outline each label exactly along its pixel edges
(:mod:`segmentation.export.outlines`), so filling the polygons gives back the labels pixel for
pixel (:func:`from_geojson` does it for GeoJSON). ``segmentation segment --export geojson,imagej``
writes them next to the other outputs; :data:`EXPORTS` maps each ``--export`` name to its file
suffix.
"""

from __future__ import annotations

from segmentation.export.bioimageio import to_bioimageio
from segmentation.export.geojson import from_geojson, nucleus_features, to_geojson
from segmentation.export.geojson_stream import stream_geojson
from segmentation.export.imagej import to_imagej_rois
from segmentation.export.outlines import label_polygons

#: ``--export`` name -> the suffix of the file written per image (``<name><suffix>``).
EXPORTS = {"geojson": "_nuclei.geojson", "imagej": "_rois.zip"}


def parse_exports(text: str) -> tuple[str, ...]:
    """Parse a comma-separated list of export names (``"geojson,imagej"``).

    Args:
        text: names from :data:`EXPORTS`, separated by commas; case and spaces are ignored, and a
            name given twice counts once.

    Returns:
        The names in the order given, without repeats.

    Raises:
        ValueError: an unknown name, or none at all; the message lists the valid names.
    """
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    valid = ", ".join(EXPORTS)
    unknown = [name for name in names if name not in EXPORTS]
    if unknown:
        raise ValueError(
            f"unknown export {', '.join(map(repr, unknown))}; valid names: {valid} "
            "(several separated by commas, e.g. --export geojson,imagej)"
        )
    if not names:
        raise ValueError(f"no export named; valid names: {valid}")
    return tuple(dict.fromkeys(names))


__all__ = [
    "EXPORTS",
    "from_geojson",
    "label_polygons",
    "nucleus_features",
    "parse_exports",
    "stream_geojson",
    "to_bioimageio",
    "to_geojson",
    "to_imagej_rois",
]
