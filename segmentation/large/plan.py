"""The plan of a large job: its defaults, the checks of its settings, the blocks' settings at the
decided scale, and the model the client reads its settings from.

Block size: every block is segmented in a window grown by the halo (:data:`HALO` pixels at the
network's scale) on each side, so an interior block of 2048 sends 27 % more pixels through the
network than its core holds, one of 4096 13 %. Yet on an 8192 x 8192 image with the default
model on a CPU (docs/benchmarks.md, "Whole slides on Dask"), blocks of 4096 sent 7 % fewer
pixels through the network but took 9 % longer (the network 7 %, decoding 32 %), and a worker
peaked at 3.2-3.8 GiB instead of 2.3: the default stays 2048.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

from segmentation.inference.options import SegmentOptions
from segmentation.large.block import BlockJob
from segmentation.large.grid import BlockGrid
from segmentation.large.source import ImageSource

#: Default side of the blocks (pixels of the source): a 2048 x 2048 core and its halo.
BLOCK_SIZE = 2048
#: Halo at the network's scale (pixels): the largest nuclei (99.9 % of DSB2018's are under 75 px
#: across) plus the margin and the network's context.
HALO = 128
#: Candidates' centroids may lie this far outside their core (pixels at the network's scale).
MARGIN = 32
#: Smallest tile side inside the blocks when none is given; the tiles are fitted to each window
#: from there (:mod:`.tiles`), the same on every worker and restart.
TILE_SIZE = 1024
#: The first blocks: the busiest blocks, segmented first at the image's own scale, until their
#: cores hold :data:`PILOT_PIXELS` pixels, at most :data:`PILOT_BLOCKS` blocks (blocks of 2048:
#: four; of 4096: one). The nucleus size is decided from them, and they are kept when the image
#: keeps its scale; when it does not, they are all that is segmented twice.
PILOT_BLOCKS, PILOT_PIXELS = 4, 4096 * 4096


def check_settings(
    source: ImageSource, options: SegmentOptions, block_size: int, overlap: Any
) -> None:
    """Refuse settings that cannot work, before anything is read or started.

    Raises:
        ValueError: colour channels that are stains, a bad ``block_size`` or ``overlap``.
    """
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
        warnings.warn(
            f"{source.path} is stored in chunks of {chunk[0]} x {chunk[1]} pixels, each read "
            "whole for every block: convert it to a tiled TIFF or to Zarr for bounded memory",
            stacklevel=3,
        )


def block_job(
    job: BlockJob, lo: float, hi: float, diameter: float | None, overlap: int | None
) -> BlockJob:
    """The blocks' settings at the decided range and scale: the halo and margin at that scale.

    Args:
        job: the job's settings (the caller's options; its grid gives the block size).
        lo, hi: the whole image's normalisation range.
        diameter: the nucleus diameter to segment at (``None``: the options' scale, or the
            image's own when they estimate it).
        overlap: the caller's halo (source pixels), or ``None`` for :data:`HALO` at the scale.
    """
    options = job.options
    if diameter is not None:
        options = replace(options, diameter=diameter)
    elif options.estimates_diameter:
        options = replace(options, auto_diameter=False)
    factor = options.resize_factor
    size = job.grid.block_size
    halo = overlap if overlap is not None else min(size, 32 * math.ceil(HALO / factor / 32))
    margin = min(math.ceil(MARGIN / factor), halo // 2)
    grid = BlockGrid(job.grid.height, job.grid.width, size, halo)
    return replace(job, grid=grid, options=options, lo=lo, hi=hi, margin=margin)


_CLIENT_MODELS: dict[tuple[str, int], Any] = {}


def client_model(model: Any) -> Any:
    """The model on the client (CPU), for its normalisation, routes and size model: the one
    given, or the default model or a model file loaded (cached per process)."""
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
