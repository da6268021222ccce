"""``segmentation evaluate --truth T --pred P``: score predicted label images against the truth.

T and P are each a folder or a Kaggle CSV (see segmentation/evaluation/sources.py):
- the output folder of `segmentation segment`: only its <name>_labels.tif files are read, named
  without _labels (img7_labels.tif is image img7); overlays and CSVs beside them are ignored;
- a folder of label images (PNG/TIFF), matched by file stem;
- a Kaggle DSB2018 folder (<id>/images/<id>.png, <id>/masks/*.png), matched by <id>;
- a solution CSV (ImageId,EncodedPixels,Height,Width) or, for the prediction only, a submission CSV
  (ImageId,EncodedPixels) whose image shapes come from the truth side; UTF-8, with or without a
  byte-order mark. A prediction CSV with overlapping masks is rejected, as the competition
  rejected such submissions.

Missing images: by default the command fails (exit status 2) and names every truth image with no
prediction and every prediction with no truth, since scores over different image sets are not
comparable. With ``--allow-missing`` a truth image without prediction is scored as an empty
prediction (score 0, all its nuclei false negatives, as a submission that skipped it would deserve)
and a prediction without truth is ignored; both lists are printed and saved in the JSON summary.

Writes per_image.csv, summary.json and threshold_curves.png to --output (default
evaluation_output), each complete or not at all (a temporary file, then a rename), and prints a
summary table. Exit status: 0 on success, 2 on bad input, 1 when the reports cannot be written
(checked before evaluating: --output must be a writable folder).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from segmentation.atomic import OutputError, check_output_folder
from segmentation.evaluation.dataset import evaluate_dataset
from segmentation.evaluation.matching import DSB_THRESHOLDS
from segmentation.evaluation.report import (
    format_summary_table,
    plot_threshold_curves,
    write_per_image_csv,
    write_summary_json,
)
from segmentation.evaluation.sources import LabelSource


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


def _name_list(names: list[str], limit: int = 20) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _fail(message: object, status: int = 2) -> int:
    print(f"segmentation evaluate: error: {message}", file=sys.stderr)
    return status


def run(args: argparse.Namespace) -> int:
    """Evaluate ``args.pred`` against ``args.truth``, print the table, write the reports.

    Returns 0 on success, 2 when an input is missing or invalid, 1 when the reports cannot be
    written (the reason, one line naming the path and the fix, goes to stderr).
    """
    try:
        truth = LabelSource(args.truth, "truth")
        pred = LabelSource(args.pred, "pred")
    except (FileNotFoundError, ValueError) as err:
        return _fail(err)

    no_pred = sorted(set(truth.names) - set(pred.names))
    no_truth = sorted(set(pred.names) - set(truth.names))
    for names, what in (
        (no_pred, "truth images without prediction"),
        (no_truth, "predictions without truth"),
    ):
        if names:
            print(f"{len(names)} {what}: {_name_list(names)}", file=sys.stderr)
    if (no_pred or no_truth) and not args.allow_missing:
        return _fail(
            "the truth and prediction image sets differ (listed above); fix the inputs or "
            "pass --allow-missing to score missing predictions as empty"
        )
    out = Path(args.output)
    try:  # before the long part; creates nothing, so bad inputs below leave no folder behind
        check_output_folder(out, "--output", create=False)
    except OutputError as err:
        return _fail(err, 1)

    names = sorted(truth.names)
    common = set(names) & set(pred.names)
    try:
        truth.decode(set(names))
        shapes = None
        if not pred.has_shapes:  # a submission CSV: shapes come from the truth side
            shapes = {name: tuple(truth.read(name).shape) for name in sorted(common)}
        pred.decode(common, shapes)
    except (FileNotFoundError, ValueError) as err:
        return _fail(err)

    def pairs():
        for name in names:
            gt = truth.read(name)
            yield gt, (pred.read(name) if name in common else np.zeros(gt.shape, np.int32))

    try:
        result = evaluate_dataset(pairs(), DSB_THRESHOLDS, names, inclusive=args.inclusive)
    except (FileNotFoundError, ValueError) as err:
        return _fail(err)

    print(format_summary_table(result))
    extra = {
        "truth": str(args.truth),
        "pred": str(args.pred),
        "missing_predictions": no_pred,
        "predictions_without_truth": no_truth,
    }
    try:
        written = [
            write_per_image_csv(result, out / "per_image.csv"),
            write_summary_json(result, out / "summary.json", extra),
            plot_threshold_curves(
                {Path(args.pred).name or str(args.pred): result}, out / "threshold_curves.png"
            ),
        ]
    except OutputError as err:
        return _fail(err, 1)
    print("wrote " + ", ".join(str(p) for p in written))
    return 0
