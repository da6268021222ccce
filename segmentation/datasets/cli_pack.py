"""``segmentation pack SOURCE --output FILE``: convert a data set once into a packed cache file.

SOURCE may be a DSB2018 Kaggle-layout folder (``<id>/images/<id>.png`` [+ ``<id>/masks/``]) or a
folder of images with its label images: ``--labels DIR``, or ``SOURCE/images`` with
``SOURCE/labels`` (or ``SOURCE/masks``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from segmentation.datasets.dsb import load_dsb
from segmentation.datasets.folders import load_folder_pairs
from segmentation.datasets.pack import pack_samples


def _is_dsb_layout(source: Path) -> bool:
    return any((d / "images").is_dir() for d in source.iterdir() if d.is_dir())


def _load(source: Path, labels: Path | None, label_suffix: str, progress: bool):
    if labels is not None:
        return load_folder_pairs(source, labels, label_suffix=label_suffix), {}
    if (source / "images").is_dir():
        for name in ("labels", "masks"):
            if (source / name).is_dir():
                return load_folder_pairs(
                    source / "images", source / name, label_suffix=label_suffix
                ), {}
    if _is_dsb_layout(source):
        return load_dsb(source, progress=progress)
    raise ValueError(
        f"cannot tell the layout of {source}: expected the DSB2018 layout (<id>/images/<id>.png), "
        f"{source}/images with {source}/labels, or an image folder with --labels LABEL_DIR"
    )


def run(args: argparse.Namespace) -> int:
    """Pack ``args.source`` into ``args.output``; prints a summary. Returns the exit code (0)."""
    source = Path(args.source)
    if not source.is_dir():
        raise FileNotFoundError(f"no such folder: {source}")
    samples, overlaps = _load(source, args.labels, args.label_suffix, not args.quiet)
    path = pack_samples(samples, args.output, codec=args.codec)
    n_nuclei = sum(int(s.labels.max()) for s in samples if s.labels is not None and s.labels.size)
    print(
        f"packed {len(samples)} images ({n_nuclei} labelled objects) into {path} "
        f"({path.stat().st_size / 1e6:.1f} MB)"
    )
    if overlaps:
        print(
            f"overlapping mask pixels (first mask file in sorted order kept them): "
            f"{len(overlaps)} images, {sum(overlaps.values())} pixels"
        )
        for name, pixels in sorted(overlaps.items()):
            print(f"  {name}: {pixels}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``pack`` subcommand on ``subparsers``; its ``func(args) -> int`` runs it."""
    parser = subparsers.add_parser(
        "pack",
        help="convert a data set (DSB2018 layout or image/label folders) into one cache file",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("source", type=Path, help="DSB2018 root or image folder")
    parser.add_argument("--output", "-o", type=Path, required=True, help="file to write (.npz)")
    parser.add_argument("--labels", type=Path, default=None, help="label folder (folder layout)")
    parser.add_argument(
        "--label-suffix", default="", help='suffix of label file stems, e.g. "_masks" (Cellpose)'
    )
    parser.add_argument(
        "--codec",
        choices=("png", "webp"),
        default="png",
        help="png: lossless (default); webp: normalised 8-bit lossy WebP, ~5x smaller (device kit)",
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)
    return parser
