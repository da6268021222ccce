"""``segmentation segment-large SOURCE [--output labels.zarr]``: whole slides on Dask.

Segments an image larger than memory (Zarr, OME-Zarr, pyramidal/tiled TIFF) block by block with
:func:`segmentation.large.segment_large`: on a local Dask cluster (``--workers`` processes x
``--threads-per-worker``), or on an existing cluster with ``--scheduler tcp://host:8786``.
Writes a uint32 label Zarr array (OME-Zarr labels ``<image>/labels/nuclei`` when the source is an
OME-Zarr image and no ``--output`` is given) and the per-nucleus table as CSV. Run the same
command again after an interruption: the finished blocks are skipped.
"""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``segment-large`` subcommand."""
    parser = subparsers.add_parser(
        "segment-large",
        help="segment a whole slide or mosaic larger than memory, block by block on Dask",
        description="Segment a Zarr, OME-Zarr or tiled TIFF image larger than memory, block by "
        "block on a Dask cluster (local by default, or --scheduler ADDRESS); writes a uint32 "
        "label Zarr array and a per-nucleus CSV. Rerun after an interruption to resume.",
    )
    parser.add_argument("source", help="Zarr array, OME-Zarr image or TIFF file")
    parser.add_argument(
        "--output",
        default=None,
        help="label Zarr array to write (default for an OME-Zarr image: <image>/labels/nuclei)",
    )
    parser.add_argument("--table", default=None, help="nucleus table CSV (default: beside it)")
    parser.add_argument("--model", default=None, help="model file (default: the shipped model)")
    parser.add_argument(
        "--block-size",
        type=int,
        default=None,
        help="block side in pixels (default 2048; smaller for less memory per worker)",
    )
    parser.add_argument(
        "--overlap", type=int, default=None, help="halo around each block in pixels (default: auto)"
    )
    cluster = parser.add_mutually_exclusive_group()
    cluster.add_argument("--workers", type=int, default=1, help="local worker processes")
    cluster.add_argument(
        "--scheduler", default=None, help="address of an existing Dask scheduler (tcp://host:8786)"
    )
    parser.add_argument("--threads-per-worker", type=int, default=1, help="local threads/worker")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda (on each worker)")
    parser.add_argument(
        "--tile-size",
        type=int,
        default=None,
        help="tile side within blocks (default: 1024 or up to 1280, fitted to each block)",
    )
    parser.add_argument("--batch-size", type=int, default=4, help="tiles per forward pass")
    parser.add_argument("--tta", action="store_true", help="average 8 rotations/mirrors")
    scale = parser.add_mutually_exclusive_group()
    scale.add_argument("--scale", type=float, default=None, help="resize factor before inference")
    scale.add_argument("--diameter", type=float, default=None, help="nucleus diameter (pixels)")
    scale.add_argument(
        "--no-auto-diameter", action="store_true", help="keep the image's scale (no estimate)"
    )
    parser.add_argument("--channel", type=int, default=None, help="use this channel as gray")
    parser.add_argument(
        "--stained-view",
        choices=("rgb", "hematoxylin"),
        default=None,
        help="how stained tissue is shown to the network (default: as the model was trained)",
    )
    parser.add_argument("--keep-parts", action="store_true", help="keep the per-block files")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run one large job; prints where the labels and the table went."""
    from segmentation.inference import SegmentOptions
    from segmentation.large import segment_large
    from segmentation.large.run import BLOCK_SIZE

    options = SegmentOptions(
        channel=args.channel,
        stained_view=args.stained_view,
        scale=args.scale,
        diameter=args.diameter,
        auto_diameter=not args.no_auto_diameter,
    )
    result = segment_large(
        args.source,
        args.output,
        args.model,
        block_size=BLOCK_SIZE if args.block_size is None else args.block_size,
        overlap=args.overlap,
        client=args.scheduler,
        workers=args.workers,
        threads_per_worker=args.threads_per_worker,
        table=args.table,
        options=options,
        tile_size=args.tile_size,
        batch_size=args.batch_size,
        tta=args.tta,
        device=args.device,
        keep_parts=args.keep_parts,
        progress=not args.no_progress,
    )
    resumed = f", {result.skipped} finished block(s) reused" if result.skipped else ""
    print(
        f"{result.nuclei} nuclei in {result.blocks} blocks{resumed}: labels {result.output}, "
        f"table {result.table}"
    )
    return 0
