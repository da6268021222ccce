"""``segmentation train CONFIG [section.key=value ...] [--resume | --overwrite]``."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``train`` subcommand."""
    parser = subparsers.add_parser(
        "train",
        help="train a model from a YAML recipe",
        description=(
            "Train every ensemble member of a recipe, tune the post-processing thresholds on the "
            "validation split and write <train.output>/model.pt. Under torchrun, trains with "
            "DistributedDataParallel: torchrun --nproc_per_node=N -m segmentation train CONFIG. "
            "A train.output folder that holds a run is refused unless --resume or --overwrite "
            "says what to do with it."
        ),
    )
    parser.add_argument("config", help="YAML recipe, e.g. configs/unet_ensemble.yaml")
    parser.add_argument(
        "overrides", nargs="*", help="overrides like train.epochs=3 data.root=path/to/stage1_train"
    )
    start = parser.add_mutually_exclusive_group()
    start.add_argument(
        "--resume", action="store_true", help="continue the run in train.output from its last.pt"
    )
    start.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run that train.output holds (without it, such a folder is refused)",
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Load the recipe and train; returns 0 on success."""
    from segmentation.training.config import load_config
    from segmentation.training.fit import fit

    config = load_config(args.config, args.overrides)
    fit(config, resume=args.resume, overwrite=args.overwrite)
    return 0
