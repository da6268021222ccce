"""``segmentation segment INPUT... --model M --output DIR``: label TIFFs and overlay PNGs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``segment`` subcommand."""
    parser = subparsers.add_parser(
        "segment",
        help="segment images with a trained model",
        description="Segment image files (or folders of them); writes <stem>_labels.tif and "
        "<stem>_overlay.png per image into --output.",
    )
    parser.add_argument("inputs", nargs="+", help="image files or folders")
    parser.add_argument("--model", required=True, help="model file written by `segmentation train`")
    parser.add_argument("--output", required=True, help="output folder")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--no-overlay", action="store_true", help="skip the overlay PNGs")
    parser.set_defaults(func=run)
    return parser


def collect_inputs(inputs: list[str]) -> list[Path]:
    """Expand folders into their image files (sorted); missing paths raise FileNotFoundError."""
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES))
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"input {item!r} does not exist")
    if not files:
        raise FileNotFoundError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in {inputs}")
    return files


def run(args: argparse.Namespace) -> int:
    """Segment every input; a file that cannot be read is reported and skipped (exit 1)."""
    import imageio.v3 as iio

    from segmentation.datasets.io import read_image, write_labels
    from segmentation.inference import load_model
    from segmentation.visualize import overlay_outlines

    model = load_model(args.model, args.device)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    failed = []
    for path in collect_inputs(args.inputs):
        try:
            image = read_image(path)
        except (ValueError, OSError) as err:
            print(f"skipped {path}: {err}", file=sys.stderr)
            failed.append(path)
            continue
        labels = model.segment(image)
        write_labels(out / f"{path.stem}_labels.tif", labels)
        if not args.no_overlay:
            iio.imwrite(out / f"{path.stem}_overlay.png", overlay_outlines(image, labels))
        print(f"{path.name}: {int(labels.max())} nuclei")
    if failed:
        print(
            f"{len(failed)} file(s) could not be read: {', '.join(map(str, failed))}",
            file=sys.stderr,
        )
    return 1 if failed else 0
