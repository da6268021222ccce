"""``segmentation segment INPUT... [--model M] --output DIR``: labels, overlays, tables, submissions.

Without ``--model`` the default model that ships inside the package is used.

Per input image ``<stem>``: ``<stem>_labels.tif`` (int labels, uint16 up to 65,535 nuclei, else
int32), ``<stem>_overlay.png`` (outlines over the image) and ``<stem>_nuclei.csv`` (one row per
nucleus: area, centroid, bounding box, mean intensity, score). ``--submission FILE`` also writes a
Kaggle DSB2018 submission CSV (``ImageId`` = stem). A file that cannot be read is reported by name
and skipped; the others are still segmented (exit status 1).

Under ``torchrun --nproc_per_node=N -m segmentation segment ...`` the input files are sharded over
the ranks (``RANK``/``WORLD_SIZE``); each rank writes its own files, and rank 0 gathers the
submission CSV.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``segment`` subcommand."""
    parser = subparsers.add_parser(
        "segment",
        help="segment images with the default model or a trained one",
        description="Segment image files (or folders of them) with the default model shipped in "
        "the package, or --model; writes <stem>_labels.tif, <stem>_overlay.png and "
        "<stem>_nuclei.csv per image into --output.",
    )
    parser.add_argument("inputs", nargs="+", help="image files (PNG/TIFF...) or folders of them")
    parser.add_argument(
        "--model",
        default=None,
        help="model file written by `segmentation train` (default: the model shipped with the "
        "package, segmentation/weights/default_unet.pt)",
    )
    parser.add_argument("--output", required=True, help="output folder")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--tile-size", type=int, default=None, help="tile side (default: auto)")
    parser.add_argument(
        "--tile-overlap", type=int, default=None, help="tile overlap in pixels (default: 96)"
    )
    parser.add_argument("--tta", action="store_true", help="average 8 rotations/mirrors")
    parser.add_argument("--batch-size", type=int, default=4, help="tiles per forward pass")
    scale = parser.add_mutually_exclusive_group()
    scale.add_argument("--scale", type=float, default=None, help="resize factor before inference")
    scale.add_argument(
        "--diameter",
        type=float,
        default=None,
        help="typical nucleus diameter in pixels (default: estimated from a first pass)",
    )
    scale.add_argument(
        "--no-auto-diameter",
        action="store_true",
        help="segment at the images' own scale, without estimating the nucleus diameter",
    )
    parser.add_argument(
        "--channel", type=int, default=None, help="use this channel (from 0) as a gray image"
    )
    parser.add_argument("--no-overlay", action="store_true", help="skip the overlay PNGs")
    parser.add_argument("--no-table", action="store_true", help="skip the per-nucleus CSVs")
    parser.add_argument("--submission", default=None, help="also write a Kaggle submission CSV")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)
    return parser


def collect_inputs(inputs: list[str]) -> list[Path]:
    """Expand folders into their image files (sorted); missing paths raise FileNotFoundError."""
    from segmentation.inference.api import list_images

    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files.extend(list_images(path))
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"input {item!r} does not exist")
    if not files:
        raise FileNotFoundError(f"no image files (PNG, JPEG, BMP, GIF, TIFF) in {inputs}")
    stems: dict[str, Path] = {}
    clashes = []
    for path in files:
        if path.stem in stems:
            clashes.append(f"{stems[path.stem]} / {path}")
        stems.setdefault(path.stem, path)
    if clashes:
        raise ValueError(
            f"several inputs share a file stem, their outputs would overwrite each other: "
            f"{clashes}; rename them or segment them into different --output folders"
        )
    return files


def shard(files: list[Path], rank: int, world_size: int) -> list[Path]:
    """This rank's share of the files: every ``world_size``-th file from ``rank``."""
    if not 0 <= rank < world_size:
        raise ValueError(f"RANK must lie in [0, WORLD_SIZE), got {rank} of {world_size}")
    return files[rank::world_size]


def _merge_submission(path: Path, world_size: int) -> None:
    """Concatenate the ranks' submission parts into ``path`` (rows grouped by image id).

    ``path`` is written atomically; the parts are removed only once it is in place, so a failed
    merge keeps them.
    """
    from segmentation.atomic import atomic_write

    rows = []
    parts = [path.with_name(f"{path.name}.part{r}") for r in range(world_size)]
    for part in parts:
        with open(part, newline="", encoding="utf-8") as f:
            rows.extend(list(csv.reader(f))[1:])
    rows.sort(key=lambda row: row[0])  # stable: nuclei keep their order within an image
    with atomic_write(path) as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["ImageId", "EncodedPixels"])
        writer.writerows(rows)
    for part in parts:
        part.unlink()


def run(args: argparse.Namespace) -> int:
    """Segment every input; unreadable files are reported by name and skipped (exit 1)."""
    from tqdm.auto import tqdm

    from segmentation.datasets.io import write_labels
    from segmentation.datasets.rle import write_submission_csv
    from segmentation.inference import (
        SegmentOptions,
        load_default_model,
        load_model,
        segment_files,
    )
    from segmentation.inference.details import write_nuclei_csv
    from segmentation.visualize import write_overlay

    rank = int(os.environ.get("RANK", "0"))
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    files = shard(collect_inputs(args.inputs), rank, world_size)
    options = SegmentOptions(
        channel=args.channel,
        scale=args.scale,
        diameter=args.diameter,
        auto_diameter=not args.no_auto_diameter,
        progress=not args.no_progress and rank == 0 and len(files) > 1,
    )
    if args.model is None:
        model = load_default_model(args.device)
    else:
        model = load_model(args.model, args.device)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    failed = []
    submission = {}
    results = segment_files(
        files,
        model,
        tile_size=args.tile_size,
        tile_overlap=args.tile_overlap,
        tta=args.tta,
        batch_size=args.batch_size,
        return_details=not args.no_table,
        options=options,
    )
    for result in results:
        path = files[result.index]
        if result.error is not None:
            tqdm.write(f"skipped {path}: {result.error}", file=sys.stderr)
            failed.append(path)
            continue
        labels = result.labels
        write_labels(out / f"{path.stem}_labels.tif", labels)
        if not args.no_overlay:
            write_overlay(out / f"{path.stem}_overlay.png", result.image, labels)
        if result.details is not None:
            write_nuclei_csv(out / f"{path.stem}_nuclei.csv", result.details.nuclei, path.stem)
        if args.submission:
            submission[path.stem] = labels
        tqdm.write(f"{path.name}: {int(labels.max())} nuclei")
    if args.submission:
        target = Path(args.submission)
        if world_size == 1:
            write_submission_csv(target, submission)
        else:
            import torch.distributed as dist

            write_submission_csv(target.with_name(f"{target.name}.part{rank}"), submission)
            if not dist.is_initialized():
                dist.init_process_group(backend="gloo")
            dist.barrier()
            if rank == 0:
                _merge_submission(target, world_size)
            dist.destroy_process_group()
    if failed:
        print(
            f"{len(failed)} file(s) could not be segmented: {', '.join(map(str, failed))}",
            file=sys.stderr,
        )
    return 1 if failed else 0
