"""``segmentation finetune IMAGES MASKS --output FILE [--model default|PATH] [--minutes N]``."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``finetune`` subcommand."""
    parser = subparsers.add_parser(
        "finetune",
        help="adapt a model to a few annotated images of your own",
        description=(
            "Fine-tune a model (default: the shipped one) on a few annotated images for a few "
            "minutes, on a CPU or a GPU, and write an ordinary model file that segment, "
            "segment-large and segment() take as they are. MASKS holds one instance label image "
            "per image, matched by stem: <stem>_labels.tif (segmentation segment, napari), "
            "<stem>_masks.tif or <stem>_seg.npy (Cellpose), or <stem>.tif/.png. Every problem "
            "with the input is reported before any training; Ctrl-C keeps the best state so far."
        ),
    )
    parser.add_argument("images", help="folder of images")
    parser.add_argument("masks", help="folder of their instance masks")
    parser.add_argument("--output", "-o", required=True, help="model file to write (.pt)")
    parser.add_argument("--model", default="default", help="default, or a U-Net model file")
    parser.add_argument("--minutes", type=float, default=10.0, help="training time (default 10)")
    parser.add_argument(
        "--binary-masks",
        action="store_true",
        help="masks are foreground masks (0/255): split each into connected components",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Fine-tune and write the model file; returns 0 on success."""
    from segmentation.training.finetune import finetune

    if not args.output.endswith(".pt"):
        raise ValueError(f"--output {args.output!r} must be a model file ending in .pt")
    model = finetune(
        args.images,
        args.masks,
        model=args.model,
        minutes=args.minutes,
        output=args.output,
        binary_masks=args.binary_masks,
        seed=args.seed,
        device=args.device,
        progress=not args.no_progress,
    )
    card = model.model_card
    print(
        f"wrote {args.output}: {card['description']} ({card['nuclei']} nuclei, "
        f"{card['minutes']:g} minutes, network {card['network']})"
    )
    return 0
