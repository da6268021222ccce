"""``segmentation export-bioimageio MODEL --output PACKAGE.zip``: a BioImage Model Zoo package.

MODEL is a model file written by ``segmentation train`` or ``default`` (the model shipped with the
toolkit). The package (format 0.5) holds one network: the main one, or with ``--network stained``
the default model's network for stained tissue. The zoo runs the network and its preprocessing;
the instance decoding (a seeded watershed of the maps) is post-processing it cannot run, named
with its thresholds in the package's rdf.yaml (``config.segmentation``) and README.

Validate the package offline with ``bioimageio.spec`` (in the ``dev`` extra): in Python,
``bioimageio.spec.load_description("nuclei.zip", perform_io_checks=True).validation_summary``
checks the description and every file's hash and shape, with no network; its status is then
``valid-format`` (``passed`` needs ``bioimageio.core.test_model``, which runs the weights).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    """Write the package; prints where and how large. Returns the exit code (0)."""
    from segmentation.export.bioimageio import to_bioimageio

    output = Path(args.output)
    if output.suffix.lower() != ".zip":
        raise ValueError(
            f"--output must end in .zip, got {str(output)!r}; e.g. --output nuclei.zip"
        )
    if output.is_dir():
        raise ValueError(f"{output} is a folder; --output names the .zip file to write")
    if output.exists() and not args.overwrite:
        raise ValueError(f"{output} exists; pass --overwrite to replace it, or choose another name")
    if args.model != "default" and not Path(args.model).is_file():
        raise FileNotFoundError(
            f"model file {args.model!r} not found: pass a model file written by `segmentation "
            "train` (e.g. runs/unet/model.pt), or `default` for the model shipped with the toolkit"
        )
    path = to_bioimageio(args.model, output, sample=args.sample, network=args.network)
    print(
        f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB): {args.network} network of {args.model}"
    )
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``export-bioimageio`` on ``subparsers``; its ``func(args) -> int`` runs it."""
    parser = subparsers.add_parser(
        "export-bioimageio",
        help="write a model as a BioImage Model Zoo package (.zip, format 0.5)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", help="model file (.pt) or `default`")
    parser.add_argument("--output", "-o", required=True, help="package to write (.zip)")
    parser.add_argument(
        "--network",
        default="main",
        help="network to export: main (default) or a route of the model, e.g. stained",
    )
    parser.add_argument(
        "--sample",
        default=None,
        help="test image (PNG/TIFF) for the package; default: a bundled sample image",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing package")
    parser.set_defaults(func=run)
    return parser
