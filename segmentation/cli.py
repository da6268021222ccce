"""``segmentation`` command line: train | finetune | segment | segment-large | evaluate | pack |
export-bioimageio | benchmark | demo.

Each subcommand lives next to what it drives and exposes ``add_parser(subparsers)``, which
registers the subcommand and sets ``func(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: subcommand modules, in the order ``--help`` lists them.
SUBCOMMANDS = (
    "segmentation.training.cli_train",
    "segmentation.training.cli_finetune",
    "segmentation.cli_segment",
    "segmentation.cli_large",
    "segmentation.evaluation.cli_evaluate",
    "segmentation.datasets.cli_pack",
    "segmentation.export.cli_bioimageio",
    "segmentation.benchmark.cli_benchmark",
    "segmentation.cli_demo",
)


def get_args_parser() -> argparse.ArgumentParser:
    """The full parser with every subcommand registered."""
    from segmentation import __version__

    parser = argparse.ArgumentParser(
        prog="segmentation", description="Nucleus instance segmentation (DSB2018 model families)."
    )
    parser.add_argument("--version", action="version", version=f"segmentation {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in SUBCOMMANDS:
        importlib.import_module(module).add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``segmentation`` console script; returns the exit status."""
    parser = get_args_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, TypeError) as err:
        print(f"segmentation {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
