"""Where a large job writes: the label array (plain Zarr or OME-Zarr labels), the nucleus table,
and the parts folder with the job's manifest, which lets a killed job resume.

- Plain output ``labels.zarr``: a ``(H, W)`` uint32 Zarr array chunked on the blocks, the table
  ``labels.csv`` and, while the job runs, ``labels.parts/`` beside it.
- An OME-Zarr image with no output given: OME-Zarr labels ``<image>/labels/nuclei`` (same axes as
  the image, length 1 except ``y`` and ``x``; NGFF 0.4 or 0.5 as the image), the table
  ``<stem>_nuclei.csv`` and ``<stem>_nuclei.parts/`` beside the image.

The parts folder holds ``job.json`` (the settings and the whole-image statistics and nucleus size
decided at the start), one file per finished block, and, while the nucleus size is decided, the
first blocks' files in folders of their own (:mod:`.passes`); it is removed when the job
completes. The finished
output carries ``segmentation_large`` attributes (the settings, the nucleus count, complete).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segmentation.large.grid import BlockGrid
from segmentation.large.source import ImageSource

#: Name of the label image inside an OME-Zarr image's ``labels`` group.
LABEL_NAME = "nuclei"
#: Attribute of the output array that records the job.
ATTRIBUTE = "segmentation_large"


@dataclass(frozen=True)
class OutputPaths:
    """Paths of one job.

    Attributes:
        array: the output Zarr array.
        table: the nucleus table (CSV).
        parts: the folder of per-block files and ``job.json``.
        ome: the output is OME-Zarr labels inside the source image.
    """

    array: Path
    table: Path
    parts: Path
    ome: bool


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".ome.zarr", ".zarr", ".ome.tiff", ".ome.tif"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem if path.suffix else name


def plan_paths(
    source: ImageSource, output: str | os.PathLike | None, table: str | os.PathLike | None
) -> OutputPaths:
    """The job's paths (see the module's description).

    Raises:
        ValueError: no ``output`` for a source that is not an OME-Zarr image; a table path that
            is not ``.csv``.
    """
    if output is None:
        if not source.ome:
            raise ValueError(
                f"give an output path (e.g. labels.zarr) for {source.path}: only an OME-Zarr "
                "image can hold its labels itself"
            )
        image = Path(source.path)
        base = image.parent / f"{_stem(image)}_{LABEL_NAME}"
        array, ome = image / "labels" / LABEL_NAME / "0", True
    else:
        array, ome = Path(output).resolve(), False
        base = array.parent / _stem(array)
    table_path = Path(table).resolve() if table is not None else base.with_name(base.name + ".csv")
    if table_path.suffix.lower() != ".csv":
        raise ValueError(f"the nucleus table is written as CSV: give a .csv path, got {table_path}")
    return OutputPaths(array, table_path, base.with_name(base.name + ".parts"), ome)


def _ome_labels(source: ImageSource) -> Any:
    """Create ``labels/nuclei`` in the OME-Zarr image; returns its group."""
    import zarr

    facts = source.ome_metadata()
    image = zarr.open_group(source.path, mode="r+")
    labels = image.require_group("labels")
    multiscale = {
        "name": LABEL_NAME,
        "axes": facts["axes"],
        "datasets": [
            {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": facts["scale"]}]}
        ],
    }
    image_label = {"source": {"image": "../../"}}
    if facts["zarr_format"] == 2:  # NGFF 0.4: metadata at the top of the attributes
        names = sorted(set(labels.attrs.get("labels", [])) | {LABEL_NAME})
        labels.attrs["labels"] = names
        group = labels.require_group(LABEL_NAME)
        multiscale["version"] = facts["version"]
        image_label["version"] = facts["version"]
        group.attrs.update({"multiscales": [multiscale], "image-label": image_label})
    else:  # NGFF 0.5: under "ome"
        ome = dict(labels.attrs.get("ome", {}))
        ome["version"] = facts["version"]
        ome["labels"] = sorted(set(ome.get("labels", [])) | {LABEL_NAME})
        labels.attrs["ome"] = ome
        group = labels.require_group(LABEL_NAME)
        group.attrs["ome"] = {
            "version": facts["version"],
            "multiscales": [multiscale],
            "image-label": image_label,
        }
    return group


def create_output(paths: OutputPaths, source: ImageSource, grid: BlockGrid) -> int:
    """Create the empty uint32 label array, chunked on the blocks (replacing an old one).

    Returns:
        The number of leading length-1 axes before ``(y, x)`` (OME-Zarr labels), else 0.
    """
    import zarr

    if paths.ome:
        if not source.axes.endswith("yx"):
            raise ValueError(f"OME-Zarr axes must end with y, x; got {source.axes!r}")
        lead = len(source.axes) - 2
        shape = (1,) * lead + (grid.height, grid.width)
        chunks = (1,) * lead + (grid.block_size, grid.block_size)
        group = _ome_labels(source)
        group.create_array(
            "0", shape=shape, chunks=chunks, dtype="uint32", fill_value=0, overwrite=True
        )
        return lead
    zarr.create_array(
        store=str(paths.array),
        shape=(grid.height, grid.width),
        chunks=(grid.block_size, grid.block_size),
        dtype="uint32",
        fill_value=0,
        overwrite=True,
    )
    return 0


def output_record(paths: OutputPaths) -> dict[str, Any] | None:
    """The ``segmentation_large`` attributes of an existing output array, else ``None``."""
    import zarr

    if not paths.array.exists():
        return None
    try:
        return dict(zarr.open_array(str(paths.array), mode="r").attrs).get(ATTRIBUTE, {})
    except Exception:  # not a Zarr array: something else lives there
        return {}


def mark_output(paths: OutputPaths, record: dict[str, Any]) -> None:
    """Store the job's record in the output array's attributes."""
    import zarr

    zarr.open_array(str(paths.array), mode="r+").attrs[ATTRIBUTE] = record


def read_manifest(parts: Path) -> dict[str, Any] | None:
    """The ``job.json`` of a parts folder, or ``None`` when there is none."""
    path = parts / "job.json"
    return json.loads(path.read_text()) if path.is_file() else None


def write_manifest(parts: Path, manifest: dict[str, Any]) -> None:
    """Write ``job.json`` (atomically) into the parts folder, creating it."""
    parts.mkdir(parents=True, exist_ok=True)
    tmp = parts / "job.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    os.replace(tmp, parts / "job.json")


def clean_parts(parts: Path) -> None:
    """Remove half-written files that a killed job left in the parts folder."""
    for stale in parts.glob("*.tmp"):
        stale.unlink(missing_ok=True)
