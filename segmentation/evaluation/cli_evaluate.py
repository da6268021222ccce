"""``segmentation evaluate --truth T --pred P``: score predicted label images against the truth.

T and P are each a folder of label images (PNG/TIFF, matched by file stem) or a Kaggle CSV: a
solution CSV (``ImageId,EncodedPixels,Height,Width``) or, for the prediction only, a submission CSV
(``ImageId,EncodedPixels``) whose image shapes come from the truth side. A prediction CSV with
overlapping masks is rejected, as the competition rejected such submissions.

Missing images: by default the command fails (exit status 2) and names every truth image with no
prediction and every prediction with no truth, since scores over different image sets are not
comparable. With ``--allow-missing`` a truth image without prediction is scored as an empty
prediction (score 0, all its nuclei false negatives, as a submission that skipped it would deserve)
and a prediction without truth is ignored; both lists are printed and saved in the JSON summary.

Writes ``per_image.csv``, ``summary.json`` and ``threshold_curves.png`` to ``--output`` (default
``evaluation_output``) and prints a summary table. Exit status: 0 on success, 2 on bad input.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from pathlib import Path

import numpy as np

from segmentation.evaluation.dataset import evaluate_dataset
from segmentation.evaluation.matching import DSB_THRESHOLDS
from segmentation.evaluation.report import (
    format_summary_table,
    plot_threshold_curves,
    write_per_image_csv,
    write_summary_json,
)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--truth", required=True, type=Path, help="folder of label images, or a solution CSV"
    )
    parser.add_argument(
        "--pred",
        required=True,
        type=Path,
        help="folder of label images, or a Kaggle submission/solution CSV",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=Path("evaluation_output"),
        help="folder for per_image.csv, summary.json, threshold_curves.png "
        "(default: evaluation_output)",
    )
    parser.add_argument(
        "--inclusive",
        action="store_true",
        help="count IoU equal to the threshold as a hit (StarDist/Cellpose); default: IoU > t",
    )
    parser.add_argument(
        "--allow-missing",
        action="store_true",
        help="score truth images without prediction as empty predictions and ignore predictions "
        "without truth, instead of failing",
    )


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``evaluate`` subcommand on an ``argparse`` subparsers object.

    Sets ``func(args) -> int`` (the exit status) as the parser default; returns the subparser.
    """
    parser = subparsers.add_parser(
        "evaluate",
        help="score predicted label images against ground truth (DSB2018 score, F1)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_arguments(parser)
    parser.set_defaults(func=run)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """A stand-alone parser for ``segmentation evaluate`` (used by :func:`main`)."""
    parser = argparse.ArgumentParser(
        prog="segmentation evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``) and run the evaluation; return the exit status."""
    return run(build_parser().parse_args(argv))


def _folder_files(folder: Path) -> dict[str, Path]:
    from segmentation.datasets.io import LABEL_SUFFIXES

    files = sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in LABEL_SUFFIXES
    )
    if not files:
        raise ValueError(
            f"{folder} holds no label images ({', '.join(LABEL_SUFFIXES)}); pass a folder of "
            "label images or a Kaggle CSV"
        )
    by_stem: dict[str, Path] = {}
    for path in files:
        if path.stem in by_stem:
            raise ValueError(f"{folder} has two label files with stem {path.stem!r}; keep one")
        by_stem[path.stem] = path
    return by_stem


def _csv_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of a Kaggle CSV (to list its image ids before decoding anything)."""
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        fields = [name.strip() for name in reader.fieldnames or []]
        reader.fieldnames = fields
        rows = list(reader)
    if "ImageId" not in fields or "EncodedPixels" not in fields:
        raise ValueError(
            f"{path} needs the columns ImageId,EncodedPixels[,Height,Width], found {fields}"
        )
    return fields, rows


class _Source:
    """The image names of one side (folder or CSV) and a way to read each label image."""

    def __init__(self, path: Path, role: str):
        self.path, self.role = path, role
        self.files: dict[str, Path] | None = None
        self.decoded: dict[str, np.ndarray] | None = None
        if path.is_dir():
            self.files = _folder_files(path)
            self.names = list(self.files)
            self.has_shapes = True
        elif path.is_file() and path.suffix.lower() == ".csv":
            fields, self.rows = _csv_rows(path)
            self.fields = fields
            self.names = list(dict.fromkeys((r["ImageId"] or "").strip() for r in self.rows))
            self.has_shapes = "Height" in fields and "Width" in fields
        elif not path.exists():
            raise FileNotFoundError(f"--{role} {path} does not exist")
        else:
            raise ValueError(f"--{role} {path} must be a folder of label images or a .csv file")

    def decode(self, keep: set[str], shapes: dict[str, tuple[int, int]] | None = None) -> None:
        """Decode a CSV side (only the images in ``keep``); folders are read lazily instead."""
        from segmentation.datasets.rle import read_rle_csv

        if self.files is not None:
            return
        if self.role == "truth" and not self.has_shapes:
            raise ValueError(
                f"--truth {self.path} has no Height/Width columns; the truth must be a solution "
                "CSV (ImageId,EncodedPixels,Height,Width) or a folder of label images"
            )
        if set(self.names) <= keep:
            self.decoded = read_rle_csv(self.path, shapes=shapes)
            return
        with tempfile.TemporaryDirectory() as tmp:  # drop the rows of images not evaluated
            subset = Path(tmp) / self.path.name
            with subset.open("w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=self.fields)
                writer.writeheader()
                writer.writerows(r for r in self.rows if (r["ImageId"] or "").strip() in keep)
            self.decoded = read_rle_csv(subset, shapes=shapes)

    def read(self, name: str) -> np.ndarray:
        from segmentation.datasets.io import read_labels

        if self.files is not None:
            return read_labels(self.files[name])
        return self.decoded[name]


def _name_list(names: list[str], limit: int = 20) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def run(args: argparse.Namespace) -> int:
    """Evaluate ``args.pred`` against ``args.truth``, print the table, write the reports.

    Returns 0 on success and 2 when an input is missing or invalid (the reason goes to stderr).
    """
    try:
        truth = _Source(Path(args.truth), "truth")
        pred = _Source(Path(args.pred), "pred")
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    no_pred = sorted(set(truth.names) - set(pred.names))
    no_truth = sorted(set(pred.names) - set(truth.names))
    for names, what in (
        (no_pred, "truth images without prediction"),
        (no_truth, "predictions without truth"),
    ):
        if names:
            print(f"{len(names)} {what}: {_name_list(names)}", file=sys.stderr)
    if (no_pred or no_truth) and not args.allow_missing:
        print(
            "error: the truth and prediction image sets differ (listed above); fix the inputs or "
            "pass --allow-missing to score missing predictions as empty",
            file=sys.stderr,
        )
        return 2

    names = sorted(truth.names)
    common = set(names) & set(pred.names)
    try:
        truth.decode(set(names))
        shapes = None
        if not pred.has_shapes:  # a submission CSV: shapes come from the truth side
            shapes = {name: tuple(truth.read(name).shape) for name in sorted(common)}
        pred.decode(common, shapes)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    def pairs():
        for name in names:
            gt = truth.read(name)
            yield gt, (pred.read(name) if name in common else np.zeros(gt.shape, np.int32))

    try:
        result = evaluate_dataset(pairs(), DSB_THRESHOLDS, names, inclusive=args.inclusive)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    print(format_summary_table(result))
    out = Path(args.output)
    extra = {
        "truth": str(args.truth),
        "pred": str(args.pred),
        "missing_predictions": no_pred,
        "predictions_without_truth": no_truth,
    }
    written = [
        write_per_image_csv(result, out / "per_image.csv"),
        write_summary_json(result, out / "summary.json", extra),
        plot_threshold_curves(
            {Path(args.pred).name or str(args.pred): result}, out / "threshold_curves.png"
        ),
    ]
    print("wrote " + ", ".join(str(p) for p in written))
    return 0
