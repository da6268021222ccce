"""What :func:`~segmentation.large.segment_large` returns: :class:`LargeResult`."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Steps of the block pipeline whose seconds :attr:`LargeResult.block_steps` adds up.
BLOCK_STEPS = ("model", "read", "network", "decode", "table", "save")


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
        timings: wall seconds per pass: ``setup`` (checks, the client's model), ``cluster``
            (starting the local cluster), ``scatter`` (sending a loaded model to the workers),
            ``stats``, ``pilot`` (the first blocks, which decide the nucleus size and are kept
            when the image keeps its scale), ``blocks`` (the others), ``stitch``, ``close``
            (closing the local cluster), ``total``.
        memory: peak resident memory (bytes) of each worker process by address, at the end of
            the job (the process's lifetime peak: a fresh local cluster's is the job's; the one
            worker of a local cluster runs in the calling process, whose peak this is).
        block_steps: seconds per step of the block pipeline (``model``: loading it on a
            worker's first block, ``read``, ``network``, ``decode``, ``table``, ``save``), added
            up over the blocks segmented in this run (worker time: blocks run in parallel on
            several workers), and ``blocks``, their number.
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
    block_steps: dict[str, float] = field(default_factory=dict)

    def labels(self) -> Any:
        """The label array, opened read-only (a ``zarr.Array``; slice it to read)."""
        import zarr

        return zarr.open_array(str(self.output), mode="r")


def add_steps(results: list) -> dict[str, float]:
    """:attr:`LargeResult.block_steps` of blocks' results (those segmented in this run)."""
    done = [r for r in results if not r.skipped]
    steps = {name: sum(r.phases.get(name, 0.0) for r in done) for name in BLOCK_STEPS}
    steps["blocks"] = len(done)
    return steps


def peak_rss() -> int:
    """This process's peak resident memory in bytes (0 where the platform does not tell)."""
    try:
        import resource
    except ImportError:  # Windows
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


def finished_result(array: Path, table: Path, record: dict) -> LargeResult:
    """The result of a job that had already completed with the same settings (its record)."""
    blocks = int(record["blocks"])
    lo, hi = record["intensity_range"]
    return LargeResult(
        array, table, int(record["nuclei"]), blocks, blocks, (lo, hi), record["diameter"]
    )
