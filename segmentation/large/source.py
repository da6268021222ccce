"""Lazily read large images: Zarr arrays, OME-Zarr images and (pyramidal, tiled) TIFF files.

:func:`open_image_source` inspects a path once and returns an :class:`ImageSource`, a small
picklable description that any Dask worker can read windows from (:meth:`ImageSource.read`)
without ever loading the whole image. TIFF files are read through tifffile's Zarr store
(``TiffPageSeries.aszarr``), so a tiled TIFF is read tile by tile; a TIFF stored in one strip is
read whole for every window (convert it to a tiled TIFF or to Zarr first).

Axes are named by letters: ``y`` and ``x`` (rows, columns), ``c`` (channels, TIFF samples ``S``
too); any other axis (``t``, ``z``...) must have length 1.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

TIFF_SUFFIXES = (".tif", ".tiff", ".svs", ".ndpi", ".scn", ".btf")
#: A 3-D array's first or last axis of at most this length is taken for channels.
_MAX_GUESSED_CHANNELS = 16


@dataclass(frozen=True)
class ImageSource:
    """Where a large image lives and how its axes are laid out; see :func:`open_image_source`.

    Attributes:
        path: absolute path of the Zarr array or group, or of the TIFF file.
        kind: ``"zarr"`` or ``"tiff"``.
        component: the array inside a Zarr group (OME-Zarr: the full-resolution dataset's
            path, e.g. ``"0"``); ``""`` for an array at ``path``.
        axes: one lowercase letter per array dimension, e.g. ``"yx"``, ``"yxc"``, ``"tczyx"``.
        shape: the array's shape.
        dtype: the array's dtype name (``"uint8"``, ``"uint16"``, ``"float32"``...).
        chunks: the array's chunk shape (TIFF: its tiles or strips).
        level: TIFF pyramid level (0 = full resolution).
        series: TIFF series.
        ome: for an OME-Zarr image, JSON of ``{"version", "zarr_format", "axes", "scale"}``
            (what its labels need), else ``""``.
    """

    path: str
    kind: str
    component: str
    axes: str
    shape: tuple[int, ...]
    dtype: str
    chunks: tuple[int, ...]
    level: int = 0
    series: int = 0
    ome: str = ""

    @property
    def height(self) -> int:
        """Rows of the image."""
        return int(self.shape[self.axes.index("y")])

    @property
    def width(self) -> int:
        """Columns of the image."""
        return int(self.shape[self.axes.index("x")])

    @property
    def channels(self) -> int:
        """Channels of the image (1 without a ``c`` axis)."""
        return int(self.shape[self.axes.index("c")]) if "c" in self.axes else 1

    @property
    def chunk_shape(self) -> tuple[int, int]:
        """``(rows, cols)`` of one stored chunk: a read costs at least the chunks it touches."""
        return int(self.chunks[self.axes.index("y")]), int(self.chunks[self.axes.index("x")])

    @property
    def name(self) -> str:
        """The file or folder name, e.g. for the ``image`` column of the nucleus table."""
        return Path(self.path).name + (f"/{self.component}" if self.component else "")

    def ome_metadata(self) -> dict[str, Any] | None:
        """The OME-Zarr facts of the image (see ``ome``), or ``None`` for other sources."""
        return json.loads(self.ome) if self.ome else None

    def read(self, y0: int, y1: int, x0: int, x1: int, channel: int | None = None) -> np.ndarray:
        """Read the window ``[y0:y1, x0:x1]``.

        Args:
            y0, y1, x0, x1: the window, inside the image.
            channel: read only this channel (from 0); ``None`` reads all.

        Returns:
            New ``(y1 - y0, x1 - x0, C)`` array of the source's dtype (``C = 1`` when ``channel``
            is given or the image has no channel axis).
        """
        if not (0 <= y0 < y1 <= self.height and 0 <= x0 < x1 <= self.width):
            raise ValueError(
                f"window [{y0}:{y1}, {x0}:{x1}] lies outside the {self.height} x {self.width} "
                f"image {self.path}"
            )
        if channel is not None and not 0 <= channel < self.channels:
            raise ValueError(
                f"channel {channel} requested but {self.path} has {self.channels} channel(s); "
                "channels are numbered from 0"
            )
        index: list[Any] = []
        for axis in self.axes:
            if axis == "y":
                index.append(slice(y0, y1))
            elif axis == "x":
                index.append(slice(x0, x1))
            elif axis == "c":
                index.append(slice(None) if channel is None else slice(channel, channel + 1))
            else:
                index.append(0)
        array, lock = _open(self)
        if lock is None:
            data = np.asarray(array[tuple(index)])
        else:
            with lock:
                data = np.asarray(array[tuple(index)])
        kept = [a for a in self.axes if a in "yxc"]
        data = np.transpose(data, [kept.index(a) for a in "yxc" if a in kept])
        return data if data.ndim == 3 else data[:, :, None]


def read_window(source: ImageSource, box: Any, channel: int | None = None) -> np.ndarray:
    """Read a window and apply ``segment()``'s channel choice to it.

    Args:
        source: the image.
        box: a :class:`~segmentation.large.grid.Box` inside the image.
        channel: ``None``: gray or RGB as is, alpha dropped; an int: that channel as gray.

    Returns:
        ``(h, w, C)`` array of the source's dtype, ``C`` in ``{1, 3}``, validated by
        :func:`~segmentation.inference.inputs.as_image_array` (a ``ValueError`` names the window).
    """
    from segmentation.inference.inputs import as_image_array

    data = source.read(box.y0, box.y1, box.x0, box.x1, channel)
    try:
        return as_image_array(data)
    except (ValueError, TypeError) as err:
        where = f"rows {box.y0}:{box.y1}, columns {box.x0}:{box.x1}"
        raise type(err)(f"{source.path} ({where}): {err}") from err


_CACHE: dict[tuple[str, str, str, int, int], tuple[Any, threading.Lock | None]] = {}
_CACHE_LOCK = threading.Lock()


def _open(source: ImageSource) -> tuple[Any, threading.Lock | None]:
    """The source's array (opened once per process) and a lock for sources that need one."""
    key = (source.path, source.kind, source.component, source.level, source.series)
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = _open_array(*key)
        return _CACHE[key]


def _open_array(
    path: str, kind: str, component: str, level: int, series: int
) -> tuple[Any, threading.Lock | None]:
    """Open the array (TIFF: through tifffile's Zarr store, with a lock around reads)."""
    import zarr

    if kind == "tiff":
        import tifffile

        tif = tifffile.TiffFile(path)  # kept open for the life of the process (cached)
        store = tif.series[series].aszarr(level=level)
        return zarr.open_array(store, mode="r"), threading.Lock()
    if component:
        return zarr.open_group(path, mode="r")[component], None
    return zarr.open_array(path, mode="r"), None


def _guess_axes(shape: tuple[int, ...], path: str) -> str:
    if len(shape) == 2:
        return "yx"
    if len(shape) == 3 and shape[2] <= _MAX_GUESSED_CHANNELS < min(shape[:2]):
        return "yxc"
    if len(shape) == 3 and shape[0] <= _MAX_GUESSED_CHANNELS < min(shape[1:]):
        return "cyx"
    raise ValueError(
        f"cannot tell the axes of the {shape} array {path}; pass axes='yxc' (channels last), "
        "'cyx' (channels first) or e.g. 'zyx' (other axes of length 1)"
    )


def _check_axes(axes: str, shape: tuple[int, ...], path: str) -> str:
    axes = axes.lower()
    if len(axes) != len(shape) or len(set(axes)) != len(axes) or not {"y", "x"} <= set(axes):
        raise ValueError(
            f"axes {axes!r} do not fit the {shape} array {path}: give one distinct letter per "
            "dimension, including 'y' and 'x' (e.g. 'yx', 'yxc', 'cyx', 'tczyx')"
        )
    extra = {a: n for a, n in zip(axes, shape, strict=True) if a not in "yxc" and n != 1}
    if extra:
        raise ValueError(
            f"{path} has axes {extra} of length > 1 ({axes!r}, shape {shape}); segment_large "
            "segments one 2-D image: write the plane you want to its own array first"
        )
    return axes


def _ome_facts(attrs: dict[str, Any], zarr_format: int) -> tuple[str, str, dict[str, Any]]:
    """``(dataset path, axes, facts)`` of an OME-Zarr image's full resolution."""
    ome = attrs.get("ome", attrs)
    multiscale = ome["multiscales"][0]
    version = str(ome.get("version", multiscale.get("version", "0.4")))
    names = [a["name"] if isinstance(a, dict) else str(a) for a in multiscale["axes"]]
    axes = "".join(n.lower()[0] for n in names)
    dataset = multiscale["datasets"][0]
    scale = next(
        (t["scale"] for t in dataset.get("coordinateTransformations", []) if t["type"] == "scale"),
        [1.0] * len(names),
    )
    facts = {
        "version": version,
        "zarr_format": zarr_format,
        "axes": multiscale["axes"],
        "scale": scale,
    }
    return str(dataset["path"]), axes, facts


def open_image_source(
    path: str | os.PathLike, axes: str | None = None, level: int = 0, series: int = 0
) -> ImageSource:
    """Describe a large image for :func:`~segmentation.large.segment_large` without reading it.

    Args:
        path: a Zarr array, an OME-Zarr image (a Zarr group with ``multiscales``; its
            full-resolution dataset is read) or a TIFF file (``.tif``, ``.tiff``, ``.svs``...;
            pyramidal and tiled TIFFs are read tile by tile).
        axes: the array's axes, one letter per dimension (``"yx"``, ``"yxc"``, ``"cyx"``...).
            ``None``: from the OME-Zarr metadata or the TIFF series, else ``"yx"`` for a 2-D
            array and channels last (or first) for a 3-D one with up to 16 channels.
        level: TIFF pyramid level to read (0 = full resolution).
        series: TIFF series to read.

    Returns:
        An :class:`ImageSource`.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: not a Zarr array, OME-Zarr image or TIFF; axes that cannot be told or do not
            fit; extra axes (``t``, ``z``) of length > 1.
    """
    import zarr

    path = Path(path).resolve()
    if not path.exists():
        raise FileNotFoundError(f"image {path} does not exist")
    if path.suffix.lower() in TIFF_SUFFIXES and path.is_file():
        import tifffile

        with tifffile.TiffFile(path) as tif:
            if not 0 <= series < len(tif.series):
                raise ValueError(f"{path} has {len(tif.series)} series; got series={series}")
            found = tif.series[series]
            if not 0 <= level < len(found.levels):
                raise ValueError(f"{path} has {len(found.levels)} pyramid levels; got {level}")
            tiff_axes = found.levels[level].axes.lower().replace("s", "c")
            array = zarr.open_array(found.aszarr(level=level), mode="r")
            shape, dtype, chunks = array.shape, str(array.dtype), array.chunks
        axes = _check_axes(axes or tiff_axes, shape, str(path))
        return ImageSource(str(path), "tiff", "", axes, shape, dtype, chunks, level, series)
    try:
        node = zarr.open(str(path), mode="r")
    except Exception as err:  # zarr raises several types for a folder that is not Zarr
        raise ValueError(
            f"{path} is neither a Zarr array, an OME-Zarr image nor a TIFF file ({err})"
        ) from err
    if isinstance(node, zarr.Array):
        axes = _check_axes(axes or _guess_axes(node.shape, str(path)), node.shape, str(path))
        return ImageSource(str(path), "zarr", "", axes, node.shape, str(node.dtype), node.chunks)
    attrs = dict(node.attrs)
    if "multiscales" not in attrs.get("ome", attrs):
        raise ValueError(
            f"{path} is a Zarr group without OME-Zarr 'multiscales' metadata; pass the path of "
            f"the image array inside it (arrays: {sorted(node.array_keys())})"
        )
    component, ome_axes, facts = _ome_facts(attrs, node.metadata.zarr_format)
    array = node[component]
    axes = _check_axes(axes or ome_axes, array.shape, str(path))
    return ImageSource(
        str(path),
        "zarr",
        component,
        axes,
        array.shape,
        str(array.dtype),
        array.chunks,
        ome=json.dumps(facts),
    )
