"""``segmentation segment INPUT... [--model M] --output DIR``: labels, overlays, tables, submissions.

Without ``--model`` the default model that ships inside the package is used.

Per input image, under its output name ``<name>``: ``<name>_labels.tif`` (int labels, uint16 up to
65,535 nuclei, else int32), ``<name>_overlay.png`` (outlines over the image) and
``<name>_nuclei.csv`` (one row per nucleus: area, centroid, bounding box, mean intensity, score).
``--export geojson,imagej`` also writes ``<name>_nuclei.geojson`` (nucleus polygons with their
measurements, QuPath detections) and ``<name>_rois.zip`` (ImageJ ROIs for Fiji's ROI Manager), see
:mod:`segmentation.export`. ``--submission FILE`` also writes a Kaggle DSB2018 submission CSV
(``ImageId`` = name). A file that
cannot be read is reported by name and skipped; the others are still segmented (exit status 1).

Output names: an image's name is its file stem (``a.png`` -> ``a``), unless another input has the
same stem (ignoring case): then each of them is named ``<stem>_<suffix>`` (``a.png`` -> ``a_png``,
``a.jpg`` -> ``a_jpg``). Inputs whose name would still be another input's (the same file name in
two folders) are reported and skipped (exit status 1); the others are segmented.
``segmentation evaluate --pred DIR`` reads ``<name>_labels.tif`` as image ``<name>``.

Every file is written to a temporary file beside it and renamed into place, so an interrupted run
(crash, ``kill -9``, full disk) never leaves a truncated file under a final name. ``--output`` must
be a writable folder (created if missing) and ``--submission`` a file in a writable folder: both
are checked before the model is loaded; a write that fails later (e.g. the disk fills up) stops
the run. Either way the error is one line naming the path and the fix, exit status 1.

One run at a time per ``--output``: a run holds its lock ``.segmentation.lock`` (pid, host, start,
command; :mod:`segmentation.output_lock`) until it ends, however it ends; a second run is refused
naming it (exit 1); a killed run's lock is taken over and its temporary files removed, with a
warning. The submission holds exactly this run's images, from the label images it writes; an
existing one is removed before the first label file is, so a run that stops early leaves none.

Under ``torchrun --nproc_per_node=N -m segmentation segment ...`` the input files are sharded over
the ranks (``RANK``/``WORLD_SIZE``); each rank writes its own files, and rank 0 gathers the
submission CSV; the ranks share the folder (``.segmentation.rank<R>.lock`` each).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

from segmentation.segment_inputs import collect_inputs, output_names, shard

#: How the CLI names the kinds of image a model may route to a network of their own.
_KINDS = {"stained": "stained tissue", "gray": "gray images", "composite": "colour composites"}


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``segment`` subcommand."""
    parser = subparsers.add_parser(
        "segment",
        help="segment images with the default model or a trained one",
        description="Segment image files (or folders of them) with the default model shipped in "
        "the package, or --model; writes <stem>_labels.tif, <stem>_overlay.png and "
        "<stem>_nuclei.csv per image into --output (inputs that share a stem, such as a.png and "
        "a.jpg, are named <stem>_<suffix>: a_png, a_jpg).",
    )
    parser.add_argument("inputs", nargs="+", help="image files (PNG/TIFF...) or folders of them")
    parser.add_argument(
        "--model",
        default=None,
        help="model file written by `segmentation train` (default: the model shipped with the "
        "package, segmentation/weights/default_unet.pt)",
    )
    parser.add_argument(
        "--output",
        required=True,
        help="output folder; one run at a time: a run holds .segmentation.lock in it, a second run "
        "is refused naming it (a killed run's lock is taken over)",
    )
    parser.add_argument(
        "--device",
        default="auto",
        metavar="{auto,cpu,cuda,cuda:N,mps}",
        help="where the network runs (default: auto, CUDA when available); a device this "
        "machine lacks is an error listing those it has",
    )
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
        "--channel",
        type=int,
        default=None,
        help="use this channel (from 0) as a gray image, e.g. the nuclear stain (needed for 2 or "
        "more than 3 channels)",
    )
    parser.add_argument(
        "--stained-view",
        choices=("rgb", "hematoxylin"),
        default=None,
        help="how stained tissue is shown to the network: as it is (rgb) or as its haematoxylin "
        "density (hematoxylin; try it for IHC); default: as the model was trained (a model with "
        "a network of its own for stained tissue: that network, unless this names another view)",
    )
    parser.add_argument(
        "--channel-axis",
        type=int,
        default=None,
        help="the axis holding the channels, counted as stored: 0 for a multi-page TIFF (axes "
        "QYX) or channels-first data, -1 for channels last (default: RGB samples, or the C axis "
        "of an ImageJ/OME TIFF)",
    )
    parser.add_argument("--no-overlay", action="store_true", help="skip the overlay PNGs")
    parser.add_argument("--no-table", action="store_true", help="skip the per-nucleus CSVs")
    parser.add_argument(
        "--submission",
        default=None,
        help="also write a Kaggle submission CSV of exactly the images this run segments (not "
        "label files of earlier runs in --output); an existing file is removed before the first "
        "label file is written, so a run that stops early leaves none",
    )
    parser.add_argument(
        "--export",
        type=_exports,
        default=(),
        metavar="NAMES",
        help="also write files other tools open, comma-separated: geojson (<stem>_nuclei.geojson, "
        "nucleus polygons with their measurements for QuPath: File > Import objects) and/or "
        "imagej (<stem>_rois.zip, one ROI per nucleus for Fiji's ROI Manager)",
    )
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (shown on a terminal: images, or the tiles of a single image)",
    )
    parser.set_defaults(func=run)
    return parser


def _exports(text: str) -> tuple[str, ...]:
    """``--export`` value -> export names; an unknown name is a usage error listing valid ones."""
    from segmentation.export import parse_exports

    try:
        return parse_exports(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


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


def _fail(message: object) -> int:
    print(f"segmentation segment: error: {message}", file=sys.stderr)
    return 1


def _warn(message: str) -> None:
    print(f"segmentation segment: warning: {message}", file=sys.stderr)


def _own_files(names: list[str], out: Path, submission: str | None, rank: int) -> set[str]:
    """The files a rank of a sharded job writes in ``out`` (it removes only their leftovers)."""
    from segmentation.export import EXPORTS

    suffixes = ("_labels.tif", "_overlay.png", "_nuclei.csv", *EXPORTS.values())
    own = {f"{name}{suffix}" for name in names for suffix in suffixes}
    if submission and Path(submission).parent.resolve() == out.resolve():
        name = Path(submission).name  # rank 0 also merges the parts into it
        own |= {f"{name}.part{rank}", name} if rank == 0 else {f"{name}.part{rank}"}
    return own


def run(args: argparse.Namespace) -> int:
    """Segment every input; unreadable files are reported by name and skipped (exit 1).

    Outputs that cannot be written (``--output`` a file or read-only, ``--submission`` a folder,
    a full disk) stop the run with one line naming the path and the fix (exit 1); what can be
    checked is checked before the model is loaded, and so is the lock: an ``--output`` another
    live run is writing is refused in one line naming that run (exit 1).
    """
    from segmentation.atomic import OutputError, check_output_file, check_output_folder
    from segmentation.inference.model import resolve_device
    from segmentation.output_lock import (
        OutputLockedError,
        command_line,
        hold_output_folder,
        job_key,
        terminate_as_exit,
    )

    device = resolve_device(args.device)  # checked before anything is read or loaded
    rank = int(os.environ.get("RANK", "0"))
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    names, refused = output_names(collect_inputs(args.inputs))
    files = shard(list(names), rank, world_size)
    out = Path(args.output)
    typed = ["segmentation", "segment", *args.inputs, "--output", args.output]
    own = _own_files([names[path] for path in files], out, args.submission, rank)
    try:
        check_output_folder(out, "--output")
        if args.submission:
            check_output_file(args.submission, "--submission")
        lock = hold_output_folder(
            out, command=command_line(typed, args.output), job=job_key(), rank=rank,
            own_files=own, warn=_warn,
        )  # fmt: skip
    except (OutputError, OutputLockedError) as err:
        return _fail(err)
    with lock, terminate_as_exit():  # SIGTERM, like Ctrl-C, releases the lock on its way out
        failed = list(refused) if rank == 0 else []  # reported once, by rank 0
        for path in failed:
            print(f"skipped {path}: {refused[path]}", file=sys.stderr)
        return _segment(args, device, out, {path: names[path] for path in files}, failed)


def _segment(args: argparse.Namespace, device, out: Path, names: dict, failed: list) -> int:
    """With ``out`` locked: segment this rank's files (``{file: output name}``), write outputs;
    ``failed`` (the inputs refused) gets those that cannot be segmented."""
    from tqdm.auto import tqdm

    from segmentation.atomic import OutputError, output_error
    from segmentation.datasets.io import write_labels
    from segmentation.datasets.rle import write_submission_csv
    from segmentation.export import EXPORTS, to_geojson, to_imagej_rois
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
    files = list(names)
    options = SegmentOptions(
        channel=args.channel,
        channel_axis=args.channel_axis,
        stained_view=args.stained_view,
        scale=args.scale,
        diameter=args.diameter,
        auto_diameter=not args.no_auto_diameter,
        progress=not args.no_progress and rank == 0 and sys.stderr.isatty(),  # quiet in logs
    )
    if args.model is None:
        model = load_default_model(device)
    else:
        model = load_model(args.model, device)
    submission = {}
    cleared = False  # the previous --submission file removed (before the first label file)
    results = segment_files(
        files,
        model,
        tile_size=args.tile_size,
        tile_overlap=args.tile_overlap,
        tta=args.tta,
        batch_size=args.batch_size,
        return_details=not args.no_table or "geojson" in args.export,  # its measurements
        options=options,
    )
    for result in results:
        path = files[result.index]
        if result.error is not None:
            tqdm.write(f"skipped {path}: {result.error}", file=sys.stderr)
            failed.append(path)
            continue
        labels, name = result.labels, names[path]
        try:
            if args.submission and not cleared:  # every rank: never beside newer label files
                try:
                    Path(args.submission).unlink(missing_ok=True)
                except OSError as err:
                    raise output_error(args.submission, err) from err
                cleared = True
            write_labels(out / f"{name}_labels.tif", labels)
            if not args.no_overlay:
                write_overlay(out / f"{name}_overlay.png", result.image, labels)
            if result.details is not None and not args.no_table:
                write_nuclei_csv(out / f"{name}_nuclei.csv", result.details.nuclei, name)
            if "geojson" in args.export:
                table = result.details.nuclei if result.details is not None else None
                to_geojson(labels, out / f"{name}{EXPORTS['geojson']}", table=table)
            if "imagej" in args.export:
                to_imagej_rois(labels, out / f"{name}{EXPORTS['imagej']}")
        except OutputError as err:
            return _fail(err)
        if args.submission:
            submission[name] = labels
        network = result.details.network if result.details is not None else "main"
        by = "" if network == "main" else f" (the model's network for {_KINDS.get(network)})"
        tqdm.write(f"{path.name}: {int(labels.max())} nuclei{by}")
    if args.submission:
        target = Path(args.submission)
        try:
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
        except OutputError as err:
            return _fail(err)
    if failed:
        print(
            f"{len(failed)} file(s) could not be segmented: {', '.join(map(str, failed))}",
            file=sys.stderr,
        )
    return 1 if failed else 0
