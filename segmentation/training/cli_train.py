"""``segmentation train CONFIG [section.key=value ...] [--resume]``."""

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
            "DistributedDataParallel: torchrun --nproc_per_node=N -m segmentation train CONFIG"
        ),
    )
    parser.add_argument("config", help="YAML recipe, e.g. configs/unet_ensemble.yaml")
    parser.add_argument(
        "overrides", nargs="*", help="overrides like train.epochs=3 data.root=path/to/stage1_train"
    )
    parser.add_argument("--resume", action="store_true", help="continue from each member's last.pt")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Load the recipe and train; returns 0 on success."""
    from segmentation.training.config import load_config
    from segmentation.training.fit import fit

    config = load_config(args.config, args.overrides)
    fit(config, resume=args.resume)
    return 0
