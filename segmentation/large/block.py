"""Segmenting one block of a large image on a Dask worker (the heavy pass).

A block's window (its core plus the halo) is segmented by the same pipeline as ``segment()``
(:mod:`segmentation.inference.engine`: tiles, batches, blending, decoding, the nucleus table),
with two differences: the normalisation range and the nucleus size are the whole image's, decided
once for all blocks (:mod:`.stats`, and the first blocks' pass of :func:`pilot_block`), never
per block; and the tiles are fitted to the window (:mod:`.tiles`).

The block keeps its *candidates*: the nuclei whose centroid lies in its core grown by ``margin``
pixels and that do not touch a cut edge of the window (where the image goes on, so the nucleus
may be cut). A nucleus near a core border is thus kept by two to four blocks; :mod:`.stitch`
merges these versions by their overlap. The candidates go to one compressed file per block,
written atomically: a file that exists is a finished block, which a restarted job skips.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from segmentation.inference.options import SegmentOptions
from segmentation.large.grid import BlockGrid, Box
from segmentation.large.source import ImageSource, read_window
from segmentation.large.tiles import fit_tiles


@dataclass(frozen=True)
class BlockJob:
    """What a worker needs to segment any block of one image (sent once with every task).

    Attributes:
        source: the image.
        grid: cores and windows.
        parts: folder of the per-block files (shared by all workers).
        device: where the networks run on each worker (``"auto"``, ``"cpu"``, ``"cuda"``).
        tile_size, tile_overlap, tta, batch_size: as for :func:`~segmentation.inference.segment`.
        options: the settings, with the nucleus size already decided (no estimate per block).
        lo, hi: the whole image's normalisation range.
        margin: candidates' centroids may lie this many pixels outside the core.
        torch_threads: threads for PyTorch on each worker, or ``None`` to leave it.
        route: ``"stained"``: the model's network for stained tissue segments the blocks
            (:class:`~segmentation.large.view.ImageView`); ``None``: the model's own.
        density_offset: the whole image's haematoxylin background, when the network sees
            stained tissue as haematoxylin density; ``None``: it sees the pixels as read.
        fit_tiles: fit the tiles to each window (:func:`~.tiles.fit_tiles`, from
            ``tile_size`` up); ``False``: tiles of ``tile_size``, as the caller asked.
    """

    source: ImageSource
    grid: BlockGrid
    parts: str
    device: str
    tile_size: int | None
    tile_overlap: int | None
    tta: bool
    batch_size: int
    options: SegmentOptions
    lo: float
    hi: float
    margin: int
    torch_threads: int | None = None
    route: str | None = None
    density_offset: float | None = None
    fit_tiles: bool = True


@dataclass
class BlockResult:
    """What the block pass returns for one block.

    Attributes:
        index: ``(row, col)`` of the block.
        table: the candidates' rows (:data:`~segmentation.inference.details.NUCLEUS_DTYPE`,
            image coordinates), ``label`` numbering them ``1..k`` within the block.
        skipped: the block's file existed (a restarted job): nothing was computed.
        seconds: time spent segmenting it (0 when skipped).
        phases: seconds per step: ``model`` (the worker's model: loaded on its first block),
            ``read``, ``network`` (normalising, forward passes, blending), ``decode``, ``table``
            (scores and measurements), ``save``.
    """

    index: tuple[int, int]
    table: np.ndarray
    skipped: bool
    seconds: float
    phases: dict[str, float] = field(default_factory=dict)


@dataclass
class PilotBlock:
    """One block of the first blocks' pass (:func:`pilot_block`): the block, segmented and saved
    at one scale, and what the whole image's nucleus size is decided from.

    Attributes:
        block: the block's :class:`BlockResult` (its file is in the job's ``parts``).
        areas: ``(n,)`` int64 areas (source pixels) of the nuclei whose centroid lies in the
            block's core and that touch no cut edge of its window (each nucleus of the image is
            counted by one block).
        style: the style rows of the window's tiles, added up (one float32 array per encoder
            stage, :mod:`segmentation.inference.size_model`), or ``None``.
        style_windows: the tiles ``style`` adds up (0: none).
    """

    block: BlockResult
    areas: np.ndarray
    style: list[np.ndarray] | None = None
    style_windows: int = 0


def part_path(parts: str | os.PathLike, index: tuple[int, int]) -> Path:
    """The file of block ``(row, col)`` in the parts folder."""
    return Path(parts) / f"block_{index[0]}_{index[1]}.npz"


def read_part(parts: str | os.PathLike, index: tuple[int, int], labels: bool) -> dict:
    """A block's file: ``window`` (y0, y1, x0, x1), ``table`` and, when asked, ``labels``.

    ``labels`` is the ``(h, w)`` window with the block's candidates numbered ``1..k`` (uint16 or
    uint32), 0 elsewhere.
    """
    with np.load(part_path(parts, index)) as part:
        out = {"window": tuple(int(v) for v in part["window"]), "table": part["table"]}
        if labels:
            out["labels"] = part["labels"]
    return out


_MODELS: dict[tuple, Any] = {}
_LOCK = threading.Lock()


def worker_model(model: Any, device: str) -> Any:
    """The model on this worker: a loaded model as sent (moved to ``device`` unless "auto"), a
    file path or ``None`` (the default model) loaded once per process and device."""
    from segmentation.inference import SegmentationModel, load_default_model, load_model
    from segmentation.inference.model import resolve_device

    if isinstance(model, SegmentationModel):
        if device != "auto" and model.device != resolve_device(device):
            model.to(device)
        return model
    if model is None:
        return load_default_model(device)
    stat = os.stat(model)
    key = (str(model), stat.st_mtime_ns, stat.st_size, str(device))
    with _LOCK:
        if key not in _MODELS:
            _MODELS[key] = load_model(model, device)
        return _MODELS[key]


def block_network(job: BlockJob, model: Any) -> Any:
    """The network that segments the blocks: the worker's model (:func:`worker_model`), or its
    route for ``job.route``."""
    model = worker_model(model, job.device)
    if job.route is None:
        return model
    if job.route not in model.routes:
        raise ValueError(f"the model has no network for {job.route} images")
    return model.routes[job.route]


def block_view(job: BlockJob, image: np.ndarray) -> np.ndarray | None:
    """The view the network sees of a window: ``(h, w, 3)`` float32 haematoxylin density with
    the whole image's background, or ``None`` for the pixels as read."""
    if job.density_offset is None:
        return None
    from segmentation.datasets.nuclear_view import hematoxylin

    return np.repeat(hematoxylin(image, job.density_offset)[..., None], 3, axis=2)


def _settings(job: Any, model: Any, options: SegmentOptions, window: Box | None = None) -> Any:
    """The pipeline's settings (:class:`~segmentation.inference.engine.Settings`) for a window:
    the job's, with the tiles fitted to the window (unless ``job.fit_tiles`` is off or no window
    is given); sets this task's PyTorch threads."""
    from segmentation.inference.api import _settings as resolve
    from segmentation.inference.inputs import scaled_shape
    from segmentation.inference.model import INPUT_MULTIPLE

    if job.torch_threads:
        import torch

        if torch.get_num_threads() != job.torch_threads:
            torch.set_num_threads(job.torch_threads)
    settings = resolve(model, job.tile_size, job.tile_overlap, job.tta, job.batch_size, options)
    settings = replace(settings, nuclear_view=False)  # decided once for the image: large/view.py
    if window is None or not getattr(job, "fit_tiles", False) or settings.tile_size is None:
        return settings
    shape = scaled_shape(window.shape, options.resize_factor)
    tile, batch = fit_tiles(
        shape, settings.tile_size, settings.overlap, settings.batch_size, INPUT_MULTIPLE,
        model.family.dense,
    )  # fmt: skip
    return replace(settings, tile_size=tile, batch_size=batch)


def _touches_cut(table: np.ndarray, window: Box, grid: BlockGrid) -> np.ndarray:
    """Which nuclei of a window's table (window coordinates) touch an edge of the window that
    lies inside the image (where the nucleus may go on)."""
    height, width = window.shape
    return (
        ((window.y0 > 0) & (table["bbox_y0"] <= 0))
        | ((window.x0 > 0) & (table["bbox_x0"] <= 0))
        | ((window.y1 < grid.height) & (table["bbox_y1"] >= height))
        | ((window.x1 < grid.width) & (table["bbox_x1"] >= width))
    )


def candidates(table: np.ndarray, window: Box, core: Box, grid: BlockGrid, margin: int):
    """Which nuclei of a window's table the block keeps.

    Args:
        table: the window's nucleus table (window coordinates).
        window, core: the block's window and core (image coordinates).
        grid: the block grid (for the image's size).
        margin: pixels the centroid may lie outside the core.

    Returns:
        ``(k,)`` bool mask over the table's rows.
    """
    cy = table["centroid_y"] + window.y0
    cx = table["centroid_x"] + window.x0
    near = (
        (cy >= core.y0 - margin)
        & (cy < core.y1 + margin)
        & (cx >= core.x0 - margin)
        & (cx < core.x1 + margin)
    )
    return near & ~_touches_cut(table, window, grid) & (table["area"] > 0)


def _structured(frame: Any) -> np.ndarray:
    """``details.nuclei`` (a DataFrame) as a structured array of :data:`NUCLEUS_DTYPE`."""
    from segmentation.inference.details import NUCLEUS_DTYPE

    table = np.zeros(len(frame), NUCLEUS_DTYPE)
    for name in NUCLEUS_DTYPE.names:
        table[name] = frame[name].to_numpy()
    return table


def _write_part(path: Path, **arrays: np.ndarray) -> None:
    """Write the block's file atomically: a killed job never leaves half a file under its name."""
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    os.replace(tmp, path)


def _segment(job: BlockJob, index: tuple[int, int], model: Any, style: bool):
    """Segment block ``index``'s window and save its candidates.

    Returns:
        ``(BlockResult, window table, engine job)``: the table in window coordinates, the engine
        job holding the tiles' style when ``style`` was asked for.
    """
    from segmentation.inference.engine import finish, make_job, run_network

    began = time.perf_counter()
    network = block_network(job, model)
    loaded = time.perf_counter()
    window, core = job.grid.window(index), job.grid.core(index)
    settings = _settings(job, network, job.options, window)
    image = read_window(job.source, window, job.options.channel)
    seen = block_view(job, image)
    read = time.perf_counter() - loaded
    work = make_job(network, image, settings, intensity=(job.lo, job.hi), seen=seen)
    work.wants_style = style  # the size model reads the style from this pass
    run_network(network, [work], settings)
    labels, details = finish(network, work, settings, True)
    table = _structured(details.nuclei)
    keep = candidates(table, window, core, job.grid, job.margin)
    lut = np.zeros(len(table) + 1, np.uint32)
    lut[1:][keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.uint32)
    kept = table[keep].copy()
    kept["label"] = np.arange(1, len(kept) + 1)
    for name, shift in (("centroid_y", window.y0), ("bbox_y0", window.y0), ("bbox_y1", window.y0)):
        kept[name] += shift
    for name, shift in (("centroid_x", window.x0), ("bbox_x0", window.x0), ("bbox_x1", window.x0)):
        kept[name] += shift
    dtype = np.uint16 if len(kept) < 2**16 else np.uint32
    window_array = np.array([window.y0, window.y1, window.x0, window.x1], np.int64)
    saving = time.perf_counter()
    path = part_path(job.parts, index)
    _write_part(path, labels=lut[labels].astype(dtype), table=kept, window=window_array)
    done = time.perf_counter()
    phases = {"model": loaded - began, "read": read, **details.timings, "save": done - saving}
    result = BlockResult(index, kept, False, done - began, phases)
    return result, table, work


def segment_block(job: BlockJob, index: tuple[int, int], model: Any) -> BlockResult:
    """Segment one block (a Dask task): segment its window, keep and save its candidates.

    Args:
        job: the job's settings.
        index: ``(row, col)`` of the block.
        model: a loaded model, a model file path, or ``None`` for the default model.

    Returns:
        The block's :class:`BlockResult`; when its file already exists, the saved candidates
        (``skipped=True``) without segmenting again.
    """
    path = part_path(job.parts, index)
    if path.exists():
        return BlockResult(index, read_part(job.parts, index, False)["table"], True, 0.0)
    return _segment(job, index, model, False)[0]


def pilot_block(job: BlockJob, index: tuple[int, int], model: Any, style: bool) -> PilotBlock:
    """Segment one of the first blocks (a Dask task) as :func:`segment_block` does, and return
    what the nucleus size is decided from: the nuclei's areas and, when ``style``, the style the
    network's size model reads (recorded during the same forward passes, at no extra cost).

    Args:
        job: the job's settings at the scale to try (its ``parts`` folder is the pilot's own).
        index: ``(row, col)`` of the block.
        model: as for :func:`segment_block`.
        style: record the tiles' style for the size model.

    Returns:
        A :class:`PilotBlock`; the block's file is written in ``job.parts`` (always segmented,
        never skipped).
    """
    result, table, work = _segment(job, index, model, style)
    whole = candidates(table, job.grid.window(index), job.grid.core(index), job.grid, 0)
    rows = None
    if work.style is not None:
        rows = [np.asarray(row, np.float32) for row in work.style]
    return PilotBlock(result, table["area"][whole].astype(np.int64), rows, work.style_windows)
