"""``segmentation benchmark CONFIG [key=value ...]``: compare architectures side by side."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``benchmark`` subcommand."""
    parser = subparsers.add_parser(
        "benchmark",
        help="compare architectures under one budget (tables, plots, run record)",
        description="Train (or load) every architecture of a benchmark file on the same split and "
        "budget, tune each on the validation split, evaluate on the test split, and write "
        "results.md/.csv/.json, threshold_curves.png, speed_accuracy.png and examples.png. "
        "Example: segmentation benchmark configs/benchmark_tiny.yaml",
    )
    parser.add_argument("config", help="benchmark YAML file (see configs/benchmark_*.yaml)")
    parser.add_argument(
        "overrides",
        nargs="*",
        help="key=value overrides, e.g. train.epochs=3 output=runs/b data.root=cache/x.npz",
    )
    parser.add_argument("--output", default=None, help="output folder (default: the file's)")
    parser.add_argument(
        "--only",
        action="append",
        default=None,
        metavar="NAME",
        help="run only this architecture (its name in the file; repeat for several): splits one "
        "benchmark over processes or machines with the same split and budget",
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Load the benchmark file and run it."""
    import sys

    from segmentation.benchmark import load_benchmark_config, run_benchmark
    from segmentation.benchmark.config import select_architectures
    from segmentation.benchmark.peers import PeerNotInstalledError

    overrides = list(args.overrides)
    if args.output is not None:
        overrides.append(f"output={args.output}")
    try:
        config = load_benchmark_config(args.config, overrides)
        if args.only:
            config = select_architectures(config, args.only)
        run_benchmark(config)
    except PeerNotInstalledError as error:
        print(f"segmentation benchmark: error: {error}", file=sys.stderr)
        return 2
    return 0
