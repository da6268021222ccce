"""Stitching the blocks: one id per nucleus across block faces and corners (the last pass).

After the block pass every block has saved its candidates (:mod:`.block`), numbered ``1..k``
within the block; block ``n``'s candidate ``i`` has the global candidate id ``offset[n] + i``.
A nucleus near a core border is a candidate of up to four blocks (faces and corners). Then:

1. :func:`core_overlaps` (a task per core): the pixels that candidates of *different* blocks share
   inside the core, as ``(id, id, pixels)`` triples. Cores tile the image, so adding up the
   triples of all cores gives each pair's whole overlap.
2. :func:`resolve` (on the client): two candidates whose masks overlap with an IoU of at least
   :data:`MATCH_IOU` are versions of one nucleus, merged by a union-find (connected components
   of the overlap graph), as Cellpose's distributed segmentation and dask-image's ``label`` merge
   labels across block faces. Each nucleus keeps one version: the one whose centroid lies
   deepest inside its own block's core (farthest from a cut edge, so segmented with the most
   context), ties to the lowest id. Kept versions are numbered ``1..N`` in id order.
3. :func:`assemble_core` (a task per core): paints the kept versions of the block and its
   neighbours into the core and writes it as one chunk of the output. Where two different
   nuclei claim a pixel, the core's own block wins, then the lower block number.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

from segmentation.large.block import read_part
from segmentation.large.grid import BlockGrid, Box

#: Two candidates of different blocks overlapping by at least this IoU are one nucleus.
MATCH_IOU = 0.5


@dataclass(frozen=True)
class StitchJob:
    """What a worker needs for the stitching.

    Attributes:
        grid: the block grid.
        parts: folder of the per-block files.
        offsets: global id of each block's candidate 0, by row-major block number.
    """

    grid: BlockGrid
    parts: str
    offsets: tuple[int, ...]


def _layers(job: StitchJob, index: tuple[int, int], luts: dict | None = None) -> list:
    """``(block, box inside the core, ids)`` for each neighbour whose window reaches the core.

    ``ids`` are global candidate ids (uint64, 0 = none), or final labels through ``luts``.
    """
    core = job.grid.core(index)
    layers = []
    for n in job.grid.neighbourhood(index):
        part = read_part(job.parts, n, True)
        window = Box(*part["window"])
        inside = window.intersect(core)
        if inside is None:
            continue
        local = part["labels"][window.local(inside)]
        if luts is None:
            ids = local.astype(np.uint64)
            ids[local > 0] += np.uint64(job.offsets[job.grid.number(n)])
        else:
            ids = luts[n][local]
        layers.append((n, inside, ids))
    return layers


def core_overlaps(job: StitchJob, index: tuple[int, int]) -> np.ndarray:
    """Pixels shared by candidates of different blocks inside one core (a Dask task).

    Args:
        job: the stitching settings.
        index: ``(row, col)`` of the core.

    Returns:
        ``(M, 3)`` uint64 rows ``(id_a, id_b, pixels)`` with ``id_a < id_b``.
    """
    layers = _layers(job, index)
    found = []
    for i in range(len(layers)):
        for j in range(i + 1, len(layers)):
            (_, box_a, a), (_, box_b, b) = layers[i], layers[j]
            common = box_a.intersect(box_b)
            if common is None:
                continue
            a = a[box_a.local(common)].ravel()
            b = b[box_b.local(common)].ravel()
            both = (a > 0) & (b > 0)
            if not both.any():
                continue
            lo, hi = np.minimum(a[both], b[both]), np.maximum(a[both], b[both])
            keys, counts = np.unique((lo << np.uint64(32)) | hi, return_counts=True)
            pairs = [keys >> np.uint64(32), keys & np.uint64(2**32 - 1), counts.astype(np.uint64)]
            found.append(np.stack(pairs, axis=1))
    if not found:
        return np.zeros((0, 3), np.uint64)
    return np.concatenate(found)


def _depth(table: np.ndarray, core: Box, grid: BlockGrid) -> np.ndarray:
    """How far each candidate's centroid lies inside the core, from its cut edges (< 0 outside)."""
    inf = np.inf
    sides = [
        table["centroid_y"] - core.y0 if core.y0 > 0 else np.full(len(table), inf),
        core.y1 - table["centroid_y"] if core.y1 < grid.height else np.full(len(table), inf),
        table["centroid_x"] - core.x0 if core.x0 > 0 else np.full(len(table), inf),
        core.x1 - table["centroid_x"] if core.x1 < grid.width else np.full(len(table), inf),
    ]
    return np.min(sides, axis=0)


@dataclass
class Resolution:
    """The outcome of :func:`resolve`.

    Attributes:
        final: ``(total + 1,)`` final label of every global candidate id (0: a duplicate that
            another version of the same nucleus replaces).
        table: the nuclei's rows, one per final label ``1..N`` in order.
        duplicates: candidates merged into another version.
    """

    final: np.ndarray
    table: np.ndarray
    duplicates: int


def resolve(
    grid: BlockGrid, tables: dict[tuple[int, int], np.ndarray], overlaps: np.ndarray
) -> Resolution:
    """Merge the versions of each nucleus and number the nuclei ``1..N``.

    Args:
        grid: the block grid.
        tables: each block's candidate table (labels ``1..k``), by ``(row, col)``.
        overlaps: ``(M, 3)`` rows ``(id_a, id_b, pixels)`` from all cores (a pair may appear in
            several cores: its pixels are added up).

    Returns:
        A :class:`Resolution`.
    """
    order = list(grid.indices())
    table = np.concatenate([tables[n] for n in order])
    total = len(table)
    depth = np.concatenate([_depth(tables[n], grid.core(n), grid) for n in order])
    area = np.concatenate([[0], table["area"]]).astype(np.float64)
    rows, cols = np.zeros(0, np.int64), np.zeros(0, np.int64)
    if len(overlaps):
        keys, inverse = np.unique(overlaps[:, :2], axis=0, return_inverse=True)
        shared = np.bincount(inverse.ravel(), weights=overlaps[:, 2].astype(np.float64))
        a, b = keys[:, 0].astype(np.int64), keys[:, 1].astype(np.int64)
        iou = shared / (area[a] + area[b] - shared)
        rows, cols = a[iou >= MATCH_IOU], b[iou >= MATCH_IOU]
    graph = sparse.coo_matrix(
        (np.ones(len(rows), np.int8), (rows - 1, cols - 1)), shape=(total, total)
    )
    _, component = csgraph.connected_components(graph, directed=False)
    ranked = np.lexsort((np.arange(total), -depth, component))  # best version first
    _, first = np.unique(component[ranked], return_index=True)
    kept = np.sort(ranked[first])  # positions (id - 1) of the kept versions, in id order
    final = np.zeros(total + 1, np.uint64)
    final[kept + 1] = np.arange(1, len(kept) + 1, dtype=np.uint64)
    out = table[kept].copy()
    out["label"] = np.arange(1, len(kept) + 1)
    return Resolution(final, out, total - len(kept))


_OUTPUTS: dict[str, Any] = {}
_OUTPUT_LOCK = threading.Lock()


def _output_array(path: str) -> Any:
    import zarr

    with _OUTPUT_LOCK:
        if path not in _OUTPUTS:
            _OUTPUTS[path] = zarr.open_array(path, mode="r+")
        return _OUTPUTS[path]


def assemble_core(
    job: StitchJob, index: tuple[int, int], luts: dict, output: str, lead: int
) -> int:
    """Paint the final labels of one core and write them as one output chunk (a Dask task).

    Args:
        job: the stitching settings.
        index: ``(row, col)`` of the core.
        luts: for the block and each neighbour, ``(k + 1,)`` uint32 final labels of its
            candidates 1..k (index 0 -> 0).
        output: path of the output Zarr array (chunked on the cores).
        lead: leading length-1 axes of the output before ``(y, x)`` (OME-Zarr labels).

    Returns:
        The number of labelled pixels written.
    """
    core = job.grid.core(index)
    layers = _layers(job, index, luts)
    layers.sort(key=lambda layer: -1 if layer[0] == index else job.grid.number(layer[0]))
    out = np.zeros(core.shape, np.uint32)
    for _, box, ids in reversed(layers):  # highest block number first, the core's own block last
        target = out[core.local(box)]
        np.copyto(target, ids, where=ids > 0)
    _output_array(output)[(0,) * lead + (slice(core.y0, core.y1), slice(core.x0, core.x1))] = out
    return int(np.count_nonzero(out))
