"""The passes of :func:`~segmentation.large.segment_large` on the cluster, each a set of Dask
tasks (``client.submit``):

1. :func:`statistics`: every core is read once; the whole image's normalisation range
   (:mod:`.stats`);
2. :func:`first_blocks` (automatic nucleus size only): the busiest blocks (up to
   :data:`~.plan.PILOT_BLOCKS`, :data:`~.plan.PILOT_PIXELS`) are segmented at the image's
   scale, their tiles' style recorded for the network's size model; the nucleus size is decided
   from them once for the image, as ``segment()`` decides it from its first pass
   (:mod:`segmentation.inference.diameter`). When the image keeps its scale (the common case),
   these blocks are finished blocks: nothing is segmented twice;
3. :func:`segment_blocks`: the other blocks (:mod:`.block`);
4. :func:`stitch`: overlaps across block faces and corners, merged versions, final ids, and the
   label chunks written (:mod:`.stitch`).

Each pass gives each task the PyTorch threads of its share of the cores: a pass of fewer tasks
than the cluster's slots (one block on two workers) gives each task more threads.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from segmentation.large.block import BlockJob, BlockResult, PilotBlock, pilot_block, segment_block
from segmentation.large.grid import BlockGrid
from segmentation.large.plan import PILOT_BLOCKS, PILOT_PIXELS, block_job
from segmentation.large.source import ImageSource
from segmentation.large.stats import ImageStats, block_stats, sample_step
from segmentation.large.stitch import StitchJob, assemble_core, core_overlaps, resolve

#: Folders (inside the parts folder) of the first blocks at the image's scale, and at the size
#: model's diameter (the pass that must confirm it).
PILOT, PILOT_RESIZED = "first", "first-resized"

Threads = Callable[[int], "int | None"]


def run_tasks(client: Any, func: Any, calls: list[tuple], desc: str, progress: bool) -> list:
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


def statistics(
    client: Any, source: ImageSource, grid: BlockGrid, channel: int | None, progress: bool
) -> ImageStats:
    """Pass 1: every core's summary, added up."""
    cores = list(grid.indices())
    step = sample_step(source, 1 if channel is not None else min(source.channels, 3))
    calls = [(source, grid.core(index), channel, step) for index in cores]
    stats = ImageStats(np.dtype(source.dtype))
    found = run_tasks(client, block_stats, calls, "statistics", progress)
    for index, summary in zip(cores, found, strict=True):
        stats.add(index, summary)
    return stats


@dataclass
class Decision:
    """What :func:`first_blocks` decided.

    Attributes:
        diameter: the nucleus diameter every block is segmented at (``None``: the image's
            own scale).
        folder: the pilot folder (inside the parts folder) whose blocks are finished blocks at
            that scale, or ``None``.
        blocks: those blocks' results.
    """

    diameter: float | None
    folder: str | None = None
    blocks: list[BlockResult] = field(default_factory=list)


def size_reading(network: Any, found: list[PilotBlock]) -> float | None:
    """The diameter the network's size model reads from the style of all the first blocks'
    tiles (as ``segment()`` reads it from all the tiles of its first pass), or ``None``."""
    import torch

    from segmentation.inference.size_model import style_from_sums

    rows = [f for f in found if f.style is not None and f.style_windows]
    if network.size_model is None or not rows:
        return None
    sums = [sum(torch.from_numpy(f.style[k]) for f in rows) for k in range(len(rows[0].style))]
    return network.size_model.predict(style_from_sums(sums, sum(f.style_windows for f in rows)))


def first_blocks(
    client: Any,
    job: BlockJob,
    stats: ImageStats,
    network: Any,
    model: Any,
    overlap: int | None,
    threads: Threads,
    progress: bool,
) -> Decision:
    """Pass 2: segment the busiest blocks at the image's scale and decide the nucleus size.

    Args:
        client: the Dask client.
        job: the job's settings with the whole image's range (its options estimate the size).
        stats: the statistics pass's result (which blocks hold the most structure).
        network: the network that segments the blocks, on the client (its size model).
        model: the model argument of the tasks.
        overlap: the caller's halo, or ``None``.
        threads: PyTorch threads per task for a pass of so many tasks.
        progress: show progress bars.

    Returns:
        The :class:`Decision`. The first blocks' files are in the parts folder's
        :data:`PILOT` folder (and :data:`PILOT_RESIZED` when a size model's reading of fragments
        had to be confirmed).
    """
    from segmentation.inference.diameter import (
        choose_diameter,
        diameter_from_areas,
        fragments_confirmed,
        fragments_suspected,
    )

    picks, pixels = [], 0
    for index in stats.busiest(PILOT_BLOCKS):
        if stats.spread[index] > 0 and pixels < PILOT_PIXELS:
            picks.append(index)
            pixels += math.prod(job.grid.core(index).shape)
    if not picks:
        return Decision(None)

    def run(diameter: float | None, folder: str, style: bool, desc: str) -> list[PilotBlock]:
        at = block_job(job, job.lo, job.hi, diameter, overlap)
        at = replace(at, parts=str(Path(job.parts) / folder), torch_threads=threads(len(picks)))
        Path(at.parts).mkdir(parents=True, exist_ok=True)
        calls = [(at, index, model, style) for index in picks]
        return run_tasks(client, pilot_block, calls, desc, progress)

    found = run(None, PILOT, network.size_model is not None, "first blocks")
    estimate = diameter_from_areas(np.concatenate([f.areas for f in found]))
    size = size_reading(network, found)
    reference = job.options.reference_diameter
    diameter = choose_diameter(estimate, reference, size)
    if diameter is None:
        return Decision(None, PILOT, [f.block for f in found])
    if not fragments_suspected(estimate, reference, size):
        return Decision(diameter)  # smaller nuclei: every block again at their size
    again = run(diameter, PILOT_RESIZED, False, "first blocks, resized")
    second = diameter_from_areas(np.concatenate([a.areas for a in again]))
    if fragments_confirmed(estimate, second):
        return Decision(diameter, PILOT_RESIZED, [a.block for a in again])
    return Decision(None, PILOT, [f.block for f in found])


def adopt(parts: Path, folder: str | None) -> None:
    """Move the finished first blocks of ``folder`` into the parts folder (those not there
    already) and remove the pilot folders (``folder=None``: only remove them)."""
    if folder is not None and (parts / folder).is_dir():
        for path in sorted((parts / folder).glob("block_*.npz")):
            if not (parts / path.name).exists():
                os.replace(path, parts / path.name)
    for name in (PILOT, PILOT_RESIZED):
        shutil.rmtree(parts / name, ignore_errors=True)


def segment_blocks(
    client: Any,
    job: BlockJob,
    indices: list[tuple[int, int]],
    model: Any,
    threads: Threads,
    progress: bool,
) -> list[BlockResult]:
    """Pass 3: segment these blocks (a finished block's file is read, not segmented again)."""
    if not indices:
        return []
    job = replace(job, torch_threads=threads(len(indices)))
    calls = [(job, index, model) for index in indices]
    return run_tasks(client, segment_block, calls, "blocks", progress)


def _luts(resolution, offsets, counts, grid, index) -> dict:
    luts = {}
    for n in grid.neighbourhood(index):
        start = offsets[grid.number(n)]
        lut = resolution.final[start : start + counts[grid.number(n)] + 1].astype(np.uint32)
        lut[0] = 0
        luts[n] = lut
    return luts


def stitch(
    client: Any,
    grid: BlockGrid,
    parts: Path,
    output: Path,
    results: list[BlockResult],
    lead: int,
    progress: bool,
):
    """Pass 4: merge the versions of each nucleus, write the labels; returns the nucleus table.

    ``results`` are the blocks' results in the grid's row-major order.
    """
    cores = list(grid.indices())
    counts = [len(r.table) for r in results]
    offsets = [0, *np.cumsum(counts)[:-1].tolist()]
    job = StitchJob(grid, str(parts), tuple(int(o) for o in offsets))
    found = run_tasks(
        client, core_overlaps, [(job, index) for index in cores], "overlaps", progress
    )
    resolution = resolve(grid, {r.index: r.table for r in results}, np.concatenate(found))
    if len(resolution.table) >= 2**32:
        raise ValueError("more than 2**32 - 1 nuclei do not fit uint32 labels")
    calls = [
        (job, index, _luts(resolution, offsets, counts, grid, index), str(output), lead)
        for index in cores
    ]
    run_tasks(client, assemble_core, calls, "labels", progress)
    return resolution.table
