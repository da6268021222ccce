""":func:`segment_large`: segment an image larger than memory block by block on a Dask cluster.

The job: the settings are checked and the whole image's view decided (:mod:`.plan`,
:mod:`.view`), the cluster opened (:mod:`.cluster`), then the passes run (:mod:`.passes`):
statistics, the first blocks (which decide the nucleus size, and are kept when the image keeps
its scale), the other blocks, stitching; then the nucleus table.

Peak memory per worker depends on the block size (one window, its maps and labels at a time),
not on the image's size; the client holds the nucleus table (about 100 bytes a nucleus). A job
that is killed and run again with the same arguments skips the blocks already saved.
"""

from __future__ import annotations

import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from segmentation.inference.options import SegmentOptions
from segmentation.large import output as out
from segmentation.large import passes
from segmentation.large.block import BlockJob
from segmentation.large.cluster import open_cluster, refuse_in_spawned_worker
from segmentation.large.grid import BlockGrid
from segmentation.large.identity import differences, fingerprint
from segmentation.large.plan import (
    BLOCK_SIZE,
    HALO,
    MARGIN,
    PILOT_BLOCKS,
    TILE_SIZE,
    block_job,
    check_settings,
    client_model,
)
from segmentation.large.result import LargeResult, add_steps, finished_result, peak_rss
from segmentation.large.source import ImageSource, open_image_source
from segmentation.large.view import ImageView, whole_image_view

__all__ = [
    "BLOCK_SIZE",
    "HALO",
    "MARGIN",
    "PILOT_BLOCKS",
    "TILE_SIZE",
    "LargeResult",
    "peak_rss",
    "segment_large",
]


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
            Peak memory per worker grows with it (docs/benchmarks.md, "Whole slides on Dask"),
            not with the image; the halo costs less of a larger block.
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
            within each block; ``tile_size=None``: tiles of :data:`TILE_SIZE` or somewhat more,
            fitted to each block's window (:mod:`~segmentation.large.tiles`).
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
    check_settings(source, options, block_size, overlap)
    view = ImageView(options)
    if options.channel is None and source.channels >= 3:  # the view: once, for the whole image
        grid = BlockGrid(source.height, source.width, block_size, 0)
        view = whole_image_view(source, grid, options, client_model(model))
        options = view.options
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
            return finished_result(paths.array, paths.table, record)
        if not record:
            raise ValueError(
                f"{paths.array} exists and is not the output of segment_large; delete it or "
                "choose another output path"
            )
    network = None
    if manifest is None:  # its normalisation and size model, loaded while the cluster starts
        loader = ThreadPoolExecutor(1, "segment-large-model")
        network = loader.submit(_network, model, view.route)
        loader.shutdown(wait=False)
    timings = {"setup": time.perf_counter() - began}
    tick = time.perf_counter()
    with open_cluster(client, workers, threads_per_worker) as (dask_client, threads):
        timings["cluster"] = time.perf_counter() - tick
        if progress and client is None:
            print(f"Dask dashboard: {dask_client.dashboard_link}")
        model_arg = model
        if isinstance(model, SegmentationModel):
            tick = time.perf_counter()
            model_arg = dask_client.scatter(model, broadcast=True, hash=False)
            timings["scatter"] = time.perf_counter() - tick
        elif model is not None:
            model_arg = str(Path(model).resolve())
        grid = BlockGrid(source.height, source.width, block_size, 0)
        job = BlockJob(
            source, grid, str(paths.parts), device, TILE_SIZE if tile_size is None else tile_size,
            tile_overlap, tta, batch_size, options, 0.0, 1.0, 0, None, view.route,
            view.density_offset, fit_tiles=tile_size is None,
        )  # fmt: skip
        fresh, decided = manifest is None, []
        if fresh:
            manifest, decided = _prepare(
                dask_client, job, view, network, model_arg, overlap, threads, progress, timings
            )
            manifest["fingerprint"] = stamp
            out.write_manifest(paths.parts, manifest)
        else:
            out.clean_parts(paths.parts)
        passes.adopt(paths.parts, manifest.get("pilot"))  # the first blocks, when kept
        job = block_job(job, manifest["lo"], manifest["hi"], manifest["diameter"], overlap)
        if fresh or not paths.array.exists():
            out.create_output(paths, source, job.grid)

        tick = time.perf_counter()
        done = {r.index for r in decided}
        rest = [index for index in job.grid.indices() if index not in done]
        found = passes.segment_blocks(dask_client, job, rest, model_arg, threads, progress)
        results = sorted(decided + found, key=lambda r: job.grid.number(r.index))
        timings["blocks"] = time.perf_counter() - tick

        tick = time.perf_counter()
        lead = len(source.axes) - 2 if paths.ome else 0
        nuclei_table = passes.stitch(
            dask_client, job.grid, paths.parts, paths.array, results, lead, progress
        )
        timings["stitch"] = time.perf_counter() - tick
        memory = dask_client.run(peak_rss)
        tick = time.perf_counter()
    timings["close"] = time.perf_counter() - tick
    from segmentation.inference.details import write_nuclei_csv

    write_nuclei_csv(paths.table, nuclei_table, source.name)
    lo, hi, diameter = manifest["lo"], manifest["hi"], manifest["diameter"]
    record = {
        "fingerprint": stamp,
        "complete": True,
        "nuclei": len(nuclei_table),
        "blocks": len(results),
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
        paths.array, paths.table, len(nuclei_table), len(results), skipped, (lo, hi), diameter,
        timings, memory, add_steps(results),
    )  # fmt: skip


def _prepare(
    client, job: BlockJob, view: ImageView, network, model_arg, overlap, threads, progress, timings
) -> tuple[dict, list]:
    """Passes 1 and 2 of a fresh job: the whole image's normalisation range and nucleus
    diameter; returns the manifest and the first blocks kept as finished blocks. ``network``:
    the future of the network that segments the blocks, on the client."""
    passes.adopt(Path(job.parts), None)  # an earlier start's first blocks, never decided on
    tick = time.perf_counter()
    stats = passes.statistics(client, job.source, job.grid, job.options.channel, progress)
    network = network.result()
    normalization = network.normalization
    lo, hi = stats.intensity_range(normalization["low"], normalization["high"])
    if view.intensity is not None:  # the view is not the pixels: its range from the patches
        lo, hi = view.intensity
    timings["stats"] = time.perf_counter() - tick
    tick = time.perf_counter()
    decision = passes.Decision(None)
    if job.options.estimates_diameter:
        job = replace(job, lo=lo, hi=hi)
        decision = passes.first_blocks(
            client, job, stats, network, model_arg, overlap, threads, progress
        )
    timings["pilot"] = time.perf_counter() - tick
    manifest = {"lo": lo, "hi": hi, "diameter": decision.diameter, "pilot": decision.folder}
    return manifest, decision.blocks


def _network(model: Any, route: str | None) -> Any:
    """The network that segments the blocks, on the client (:func:`~.plan.client_model`)."""
    network = client_model(model)
    return network.routes[route] if route else network
