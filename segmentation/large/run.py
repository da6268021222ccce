""":func:`segment_large`: segment an image larger than memory block by block on a Dask cluster.

The passes, each a set of Dask tasks (``client.submit``) on a ``dask.distributed`` cluster (a
local one by default, or any existing scheduler):

1. statistics: every core is read once; the whole image's normalisation range (:mod:`.stats`);
2. pilot (automatic nucleus size only): up to :data:`PILOT_BLOCKS` windows of the busiest
   blocks are segmented at the image's scale; the nuclei's median diameter decides the scale for
   every block, once, as ``segment()`` decides it for a whole image (:mod:`.block`);
3. blocks: each block's window is segmented and its candidate nuclei saved (:mod:`.block`);
4. stitching: overlaps across block faces and corners, merged versions, final ids, and the label
   chunks written (:mod:`.stitch`); then the nucleus table.

Peak memory per worker depends on the block size (one window, its maps and labels at a time),
not on the image's size; the client holds the nucleus table (about 100 bytes a nucleus). A job
that is killed and run again with the same arguments skips the blocks already saved.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from segmentation.inference.options import SegmentOptions
from segmentation.large import output as out
from segmentation.large.block import BlockJob, pilot_labels, segment_block
from segmentation.large.cluster import open_cluster, refuse_in_spawned_worker
from segmentation.large.grid import BlockGrid, Box
from segmentation.large.identity import differences, fingerprint
from segmentation.large.source import ImageSource, open_image_source
from segmentation.large.stats import ImageStats, block_stats, sample_step
from segmentation.large.stitch import StitchJob, assemble_core, core_overlaps, resolve
from segmentation.large.view import ImageView, whole_image_view

#: Default side of the blocks (pixels of the source): a 2048 x 2048 core and its halo.
BLOCK_SIZE = 2048
#: Halo at the network's scale (pixels): the largest nuclei (99.9 % of DSB2018's are under 75 px
#: across) plus the margin and the network's context.
HALO = 128
#: Candidates' centroids may lie this far outside their core (pixels at the network's scale).
MARGIN = 32
#: Tile side used inside the blocks when none is given (fixed, so that every worker and every
#: restart cuts the same tiles).
TILE_SIZE = 1024
#: Windows segmented to estimate the nucleus size, and their largest side.
PILOT_BLOCKS, PILOT_SIZE = 4, 1024


@dataclass
class LargeResult:
    """What :func:`segment_large` returns.

    Attributes:
        output: path of the uint32 label Zarr array.
        table: path of the nucleus table (CSV: label, area, centroid, bounding box, mean
            intensity, score; source pixel coordinates).
        nuclei: number of nuclei (labels ``1..nuclei``).
        blocks: number of blocks.
        skipped: blocks found finished by an earlier, interrupted run and not segmented again.
        intensity_range: the whole image's normalisation range ``(lo, hi)``.
        diameter: the nucleus diameter the blocks were segmented at (``None``: own scale).
        timings: seconds per pass (``stats``, ``pilot``, ``blocks``, ``stitch``, ``total``).
        memory: peak resident memory (bytes) of each worker process by address, at the end of
            the job (the process's lifetime peak: a fresh local cluster's is the job's; the one
            worker of a local cluster runs in the calling process, whose peak this is).
    """

    output: Path
    table: Path
    nuclei: int
    blocks: int
    skipped: int = 0
    intensity_range: tuple[float, float] = (0.0, 0.0)
    diameter: float | None = None
    timings: dict[str, float] = field(default_factory=dict)
    memory: dict[str, int] = field(default_factory=dict)

    def labels(self) -> Any:
        """The label array, opened read-only (a ``zarr.Array``; slice it to read)."""
        import zarr

        return zarr.open_array(str(self.output), mode="r")


def _run(client: Any, func: Any, calls: list[tuple], desc: str, progress: bool) -> list:
    """Submit ``func(*args)`` for each ``args`` of ``calls``; the results in the same order.

    A failing task cancels the others and raises its error here; the blocks already saved stay
    saved for a restart.
    """
    from distributed import as_completed
    from tqdm.auto import tqdm

    futures = [client.submit(func, *args, pure=False) for args in calls]
    position = {f.key: i for i, f in enumerate(futures)}
    results: list = [None] * len(futures)
    with tqdm(total=len(futures), desc=desc, unit="task", disable=not progress) as bar:
        try:
            for future in as_completed(futures):
                results[position[future.key]] = future.result()
                bar.update(1)
        except BaseException:
            client.cancel(futures)
            raise
    return results


def peak_rss() -> int:
    """This process's peak resident memory in bytes (0 where the platform does not tell)."""
    try:
        import resource
    except ImportError:  # Windows
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


def _check(source: ImageSource, options: SegmentOptions, block_size: int, overlap: Any) -> None:
    if options.channel is None and source.channels not in (1, 3, 4):
        raise ValueError(
            f"{source.path} has {source.channels} channels: choose one with "
            "options=SegmentOptions(channel=c) (CLI: --channel c)"
        )
    # segment()'s rule, decided once for the slide: 3 channels are colour only as the samples of
    # colour pixels (the last axis), 4 only as 8-bit RGBA; a channel axis holds stains.
    last = source.axes.index("c") == len(source.axes) - 1 if "c" in source.axes else True
    rgba = source.channels != 4 or source.dtype == "uint8"
    if options.channel is None and source.channels in (3, 4) and not (last and rgba):
        raise ValueError(
            f"{source.path} has {source.channels} channels (axes {source.axes!r}, "
            f"{source.dtype}) that are not the samples of RGB(A) pixels: separate channels of a "
            "microscope, e.g. fluorescence stains, which segmenting as colour finds few nuclei "
            "in. Choose the nuclear stain with options=SegmentOptions(channel=c) (CLI: "
            "--channel c), e.g. channel 0"
        )
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 256:
        raise ValueError(f"block_size must be an integer >= 256 pixels, got {block_size!r}")
    if block_size % 32:
        low = block_size // 32 * 32
        raise ValueError(
            f"block_size must be a multiple of 32 (the networks' stride), got {block_size}; "
            f"use {low} or {low + 32}"
        )
    if overlap is not None and (
        isinstance(overlap, bool) or not isinstance(overlap, int) or not 0 <= overlap <= block_size
    ):
        raise ValueError(
            f"overlap (the halo, pixels) must be None or an integer in [0, block_size="
            f"{block_size}], got {overlap!r}; raise block_size for a wider halo"
        )
    chunk = source.chunk_shape
    if chunk[0] * chunk[1] > 16 * block_size * block_size:
        import warnings

        warnings.warn(
            f"{source.path} is stored in chunks of {chunk[0]} x {chunk[1]} pixels, each read "
            "whole for every block: convert it to a tiled TIFF or to Zarr for bounded memory",
            stacklevel=3,
        )


def _statistics(client, source, grid, options, progress) -> ImageStats:
    """Pass 1: every core's summary, added up."""
    cores = list(grid.indices())
    step = sample_step(source, 1 if options.channel is not None else min(source.channels, 3))
    calls = [(source, grid.core(index), options.channel, step) for index in cores]
    stats = ImageStats(np.dtype(source.dtype))
    found = _run(client, block_stats, calls, "statistics", progress)
    for index, summary in zip(cores, found, strict=True):
        stats.add(index, summary)
    return stats


def _diameter(client, job, stats, model_arg, progress) -> float | None:
    """The nucleus diameter to segment every block at, or ``None`` to keep the image's scale:
    decided from the pilot windows' masks and their size model's readings (median) as
    ``segment()`` decides for a whole image (:mod:`segmentation.inference.diameter`), a size
    model's reading of fragments confirmed by a second pilot at its diameter."""
    from segmentation.inference.diameter import (
        choose_diameter,
        estimate_diameter,
        fragments_confirmed,
        fragments_suspected,
    )

    picks = [i for i in stats.busiest(PILOT_BLOCKS) if stats.spread[i] > 0]
    if not picks:
        return None
    boxes = []
    for index in picks:
        core = job.grid.core(index)
        h, w = min(core.shape[0], PILOT_SIZE), min(core.shape[1], PILOT_SIZE)
        y0, x0 = core.y0 + (core.shape[0] - h) // 2, core.x0 + (core.shape[1] - w) // 2
        boxes.append(Box(y0, y0 + h, x0, x0 + w))
    found = _run(
        client, pilot_labels, [(job, b, model_arg) for b in boxes], "nucleus size", progress
    )
    sizes = [size for _, size in found if size is not None]
    size = float(np.median(sizes)) if sizes else None
    reference = job.options.reference_diameter
    estimate = estimate_diameter(_canvas([labels for labels, _ in found], boxes))
    diameter = choose_diameter(estimate, reference, size)
    if diameter is not None and fragments_suspected(estimate, reference, size):
        calls = [(job, b, model_arg, diameter) for b in boxes]
        again = _run(client, pilot_labels, calls, "nucleus size, confirmed", progress)
        second = estimate_diameter(_canvas([labels for labels, _ in again], boxes))
        if not fragments_confirmed(estimate, second):
            return None
    return diameter


def _canvas(windows: list[np.ndarray], boxes: list[Box]) -> np.ndarray:
    """The pilot windows' labels side by side, with distinct ids (for one diameter estimate)."""
    canvas = np.zeros((max(b.shape[0] for b in boxes), sum(b.shape[1] for b in boxes)), np.int64)
    x, offset = 0, 0
    for labels in windows:
        h, w = labels.shape
        canvas[:h, x : x + w] = np.where(labels > 0, labels + offset, 0)
        x, offset = x + w, offset + int(labels.max(initial=0))
    return canvas


def _luts(resolution, offsets, counts, grid, index) -> dict:
    luts = {}
    for n in grid.neighbourhood(index):
        start = offsets[grid.number(n)]
        lut = resolution.final[start : start + counts[grid.number(n)] + 1].astype(np.uint32)
        lut[0] = 0
        luts[n] = lut
    return luts


def segment_large(
    source: str | os.PathLike | ImageSource,
    output: str | os.PathLike | None = None,
    model: Any = None,
    *,
    block_size: int = BLOCK_SIZE,
    overlap: int | None = None,
    client: Any = None,
    workers: int = 1,
    threads_per_worker: int = 1,
    table: str | os.PathLike | None = None,
    options: SegmentOptions | None = None,
    tile_size: int | None = None,
    tile_overlap: int | None = None,
    tta: bool = False,
    batch_size: int = 4,
    device: str = "auto",
    keep_parts: bool = False,
    progress: bool = True,
) -> LargeResult:
    """Segment the nuclei of an image larger than memory, block by block on a Dask cluster.

    Args:
        source: a Zarr array, an OME-Zarr image or a (pyramidal, tiled) TIFF path, read lazily
            (see :func:`~segmentation.large.source.open_image_source`; pass an
            :class:`~segmentation.large.source.ImageSource` for unusual axes or TIFF levels).
            8/16-bit, 32-bit or float pixels; gray, RGB(A), or ``options.channel`` of many.
        output: path of the ``(H, W)`` uint32 label Zarr array to write (chunked on the blocks);
            ``None`` for an OME-Zarr source: OME-Zarr labels ``<image>/labels/nuclei``.
        model: a model file, a loaded :class:`~segmentation.inference.SegmentationModel`, or
            ``None`` for the default model shipped with the package.
        block_size: side of the blocks' cores and of the output's chunks (multiple of 32).
            Peak memory per worker grows with it (2.7 GiB at 2048 with the default model on a
            CPU, docs/benchmarks.md), not with the image.
        overlap: the halo around each core (source pixels, ``<= block_size``); should exceed
            the largest nucleus plus the network's context. ``None``: :data:`HALO` pixels at the
            network's scale.
        client: ``None``: a local cluster of ``workers`` processes x ``threads_per_worker``;
            a ``distributed.Client``; or a scheduler address (``"tcp://host:8786"``) to run on an
            existing cluster of many machines. The paths must be readable and writable from every
            worker at the same place (a shared file system).
        workers, threads_per_worker: the local cluster's size (ignored with ``client``). One
            worker runs in this process (threads), so a plain script works; more are processes,
            which import the main script again: call from under ``if __name__ == "__main__":``.
        table: path of the nucleus table (CSV); ``None``: beside the output (see
            :mod:`~segmentation.large.output`).
        options: as for :func:`~segmentation.inference.segment`; the nucleus size, when
            estimated, is estimated once for the whole image, never per block.
        tile_size, tile_overlap, tta, batch_size: as for :func:`~segmentation.inference.segment`
            within each block; ``tile_size=None`` is :data:`TILE_SIZE`.
        device: where each worker runs the networks (``"auto"``: its GPU when it has one).
        keep_parts: keep the per-block files after the job (they are removed by default).
        progress: progress bars per pass (and the local cluster's dashboard address).

    Returns:
        A :class:`LargeResult` (``result.labels()`` opens the labels: nuclei ``1..N``, unique over
        the image; a nucleus across block borders or corners has one id).

    Raises:
        FileNotFoundError: a missing source or model file.
        ValueError: bad settings; an output that exists and holds something else; a parts folder
            of an earlier job with other settings (delete it, or use another output).
        RuntimeError: ``workers > 1`` called from a script's top level, outside
            ``if __name__ == "__main__":`` (the worker processes would run it again).
    """
    from segmentation.inference import SegmentationModel

    refuse_in_spawned_worker(client, workers)  # a worker process re-running an unguarded script
    began = time.perf_counter()
    if not isinstance(source, ImageSource):
        if not isinstance(source, str | os.PathLike):
            raise TypeError(
                f"source must be a path (Zarr, OME-Zarr, TIFF) or an ImageSource, got "
                f"{type(source).__name__}"
            )
        source = open_image_source(source)
    options = SegmentOptions() if options is None else options
    if not isinstance(options, SegmentOptions):
        raise TypeError(f"options must be a SegmentOptions, got {type(options).__name__}")
    _check(source, options, block_size, overlap)
    view = ImageView(options)
    if options.channel is None and source.channels >= 3:  # the view: once, for the whole image
        grid = BlockGrid(source.height, source.width, block_size, 0)
        view = whole_image_view(source, grid, options, _client_model(model))
        options = view.options
    tile_size = TILE_SIZE if tile_size is None else tile_size
    paths = out.plan_paths(source, output, table)
    stamp = fingerprint(
        source, model, block_size=block_size, overlap=overlap, options=options,
        tile_size=tile_size, tile_overlap=tile_overlap, tta=tta, batch_size=batch_size,
    )  # fmt: skip
    manifest = out.read_manifest(paths.parts)
    if manifest is not None and manifest["fingerprint"] != stamp:
        keys = differences(manifest["fingerprint"], stamp)
        raise ValueError(
            f"{paths.parts} holds the blocks of an earlier job with other settings ({keys}); "
            "run with the same settings to resume it, or delete that folder to start anew"
        )
    record = out.output_record(paths)
    if manifest is None and record is not None:
        if record.get("complete") and record.get("fingerprint") == stamp:
            return _finished(paths, record)
        if not record:
            raise ValueError(
                f"{paths.array} exists and is not the output of segment_large; delete it or "
                "choose another output path"
            )
    timings: dict[str, float] = {}
    with open_cluster(client, workers, threads_per_worker) as (dask_client, torch_threads):
        if progress and client is None:
            print(f"Dask dashboard: {dask_client.dashboard_link}")
        model_arg = model
        if isinstance(model, SegmentationModel):
            model_arg = dask_client.scatter(model, broadcast=True, hash=False)
        elif model is not None:
            model_arg = str(Path(model).resolve())
        grid = BlockGrid(source.height, source.width, block_size, 0)
        job = BlockJob(
            source, grid, str(paths.parts), device, tile_size, tile_overlap, tta, batch_size,
            options, 0.0, 1.0, 0, torch_threads, view.route, view.density_offset,
        )  # fmt: skip
        fresh = manifest is None
        if fresh:
            manifest = _prepare(dask_client, job, view, model, model_arg, progress, timings)
            manifest["fingerprint"] = stamp
            out.write_manifest(paths.parts, manifest)
        else:
            out.clean_parts(paths.parts)
        job = _block_job(job, manifest, overlap)
        if fresh or not paths.array.exists():
            out.create_output(paths, source, job.grid)

        tick = time.perf_counter()
        cores = list(job.grid.indices())
        calls = [(job, index, model_arg) for index in cores]
        results = _run(dask_client, segment_block, calls, "blocks", progress)
        timings["blocks"] = time.perf_counter() - tick

        tick = time.perf_counter()
        lead = len(source.axes) - 2 if paths.ome else 0
        nuclei_table = _stitch(dask_client, job.grid, paths, results, lead, progress)
        timings["stitch"] = time.perf_counter() - tick
        memory = dask_client.run(peak_rss)

    from segmentation.inference.details import write_nuclei_csv

    write_nuclei_csv(paths.table, nuclei_table, source.name)
    lo, hi, diameter = manifest["lo"], manifest["hi"], manifest["diameter"]
    record = {
        "fingerprint": stamp,
        "complete": True,
        "nuclei": len(nuclei_table),
        "blocks": len(cores),
        "intensity_range": [lo, hi],
        "diameter": diameter,
        "halo": job.grid.halo,
        "table": str(paths.table),
    }
    out.mark_output(paths, record)
    if not keep_parts:
        shutil.rmtree(paths.parts, ignore_errors=True)
    timings["total"] = time.perf_counter() - began
    skipped = sum(r.skipped for r in results)
    return LargeResult(
        paths.array, paths.table, len(nuclei_table), len(cores), skipped, (lo, hi), diameter,
        timings, memory,
    )  # fmt: skip


def _finished(paths: out.OutputPaths, record: dict) -> LargeResult:
    """The result of a job that had already completed with the same settings."""
    blocks = int(record["blocks"])
    lo, hi = record["intensity_range"]
    return LargeResult(
        paths.array, paths.table, int(record["nuclei"]), blocks, blocks, (lo, hi),
        record["diameter"],
    )  # fmt: skip


def _client_model(model: Any) -> Any:
    """The model on the client (CPU), for its normalisation and recipe: the one given, or the
    default model or a model file loaded (cached per process)."""
    from segmentation.inference import SegmentationModel, load_default_model, load_model

    if isinstance(model, SegmentationModel):
        return model
    if model is None:
        return load_default_model("cpu")  # cached per device by default.py
    path = Path(model).resolve()
    key = (str(path), path.stat().st_mtime_ns) if path.exists() else (str(path), 0)
    if key not in _CLIENT_MODELS:
        _CLIENT_MODELS.clear()  # one model file at a time
        _CLIENT_MODELS[key] = load_model(path, "cpu")
    return _CLIENT_MODELS[key]


_CLIENT_MODELS: dict[tuple[str, int], Any] = {}


def _prepare(client, job: BlockJob, view: ImageView, model, model_arg, progress, timings) -> dict:
    """Passes 1 and 2: the whole image's normalisation range and nucleus diameter."""
    network = _client_model(model)
    normalization = (network.routes[view.route] if view.route else network).normalization
    tick = time.perf_counter()
    stats = _statistics(client, job.source, job.grid, job.options, progress)
    lo, hi = stats.intensity_range(normalization["low"], normalization["high"])
    if view.intensity is not None:  # the view is not the pixels: its range from the patches
        lo, hi = view.intensity
    timings["stats"] = time.perf_counter() - tick
    tick = time.perf_counter()
    diameter = None
    if job.options.estimates_diameter:
        diameter = _diameter(client, replace(job, lo=lo, hi=hi), stats, model_arg, progress)
    timings["pilot"] = time.perf_counter() - tick
    return {"lo": lo, "hi": hi, "diameter": diameter}


def _block_job(job: BlockJob, manifest: dict, overlap: int | None) -> BlockJob:
    """The blocks' settings: the decided range and scale, the halo and margin at that scale."""
    options = job.options
    if manifest["diameter"] is not None:
        options = replace(options, diameter=manifest["diameter"])
    elif options.estimates_diameter:
        options = replace(options, auto_diameter=False)
    factor = options.resize_factor
    size = job.grid.block_size
    halo = overlap if overlap is not None else min(size, 32 * math.ceil(HALO / factor / 32))
    margin = min(math.ceil(MARGIN / factor), halo // 2)
    grid = BlockGrid(job.grid.height, job.grid.width, size, halo)
    return replace(
        job, grid=grid, options=options, lo=manifest["lo"], hi=manifest["hi"], margin=margin
    )


def _stitch(client, grid: BlockGrid, paths, results: list, lead: int, progress: bool):
    """Pass 4: merge the versions of each nucleus, write the labels; returns the nucleus table."""
    cores = list(grid.indices())
    counts = [len(r.table) for r in results]
    offsets = [0, *np.cumsum(counts)[:-1].tolist()]
    stitch = StitchJob(grid, str(paths.parts), tuple(int(o) for o in offsets))
    found = _run(client, core_overlaps, [(stitch, index) for index in cores], "overlaps", progress)
    resolution = resolve(grid, {r.index: r.table for r in results}, np.concatenate(found))
    if len(resolution.table) >= 2**32:
        raise ValueError("more than 2**32 - 1 nuclei do not fit uint32 labels")
    calls = [
        (stitch, index, _luts(resolution, offsets, counts, grid, index), str(paths.array), lead)
        for index in cores
    ]
    _run(client, assemble_core, calls, "labels", progress)
    return resolution.table
