"""``segmentation demo``: train a small U-Net on the bundled sample, segment it, score it."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

DEMO_RECIPE = Path(__file__).resolve().parents[1] / "configs" / "demo_unet.yaml"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``demo`` subcommand."""
    parser = subparsers.add_parser(
        "demo",
        help="train a small model on the bundled sample, segment and score it",
        description="Trains configs/demo_unet.yaml (a few minutes on a CPU), segments the bundled "
        "sample images, prints the competition score and F1@0.7 per image, writes overlay PNGs.",
    )
    parser.add_argument("--output", default="demo_output", help="output folder")
    parser.add_argument("--minutes", type=float, default=None, help="training time budget")
    parser.add_argument("--model", default=None, help="use this model file instead of training")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Train (unless ``--model``), segment the sample, print scores, write overlays."""
    import imageio.v3 as iio

    from segmentation.datasets.sample_data import load_sample
    from segmentation.evaluation.dataset import evaluate_dataset
    from segmentation.inference import load_model
    from segmentation.visualize import overlay_outlines

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    model_path = args.model
    if model_path is None:
        from segmentation.training.config import load_config
        from segmentation.training.fit import fit

        overrides = [f"train.output={out / 'model'}"]
        if args.minutes is not None:
            overrides.append(f"train.max_minutes={args.minutes}")
        start = time.perf_counter()
        model_path = fit(load_config(DEMO_RECIPE, overrides))
        print(f"trained in {time.perf_counter() - start:.0f} s -> {model_path}")
    model = load_model(model_path, device="cpu")
    samples = load_sample()
    preds = []
    for sample in samples:
        labels = model.segment(sample.image)
        preds.append(labels)
        iio.imwrite(out / f"{sample.name}_overlay.png", overlay_outlines(sample.image, labels))
    result = evaluate_dataset([(s.labels, p) for s, p in zip(samples, preds, strict=True)])
    print(f"\n{'image':<20} {'nuclei':>7} {'found':>6} {'score':>7} {'F1@0.7':>7}")
    for sample, pred, image_result in zip(samples, preds, result.images, strict=True):
        print(
            f"{sample.name[:20]:<20} {int(sample.labels.max()):>7} {int(pred.max()):>6} "
            f"{image_result.mean_score:>7.3f} {image_result.at(0.7).f1:>7.3f}"
        )
    print(
        f"{'overall':<20} {'':>7} {'':>6} {result.mean_score:>7.3f} {result.f1_at(0.7):>7.3f}"
        "   (score: mean of per-image DSB scores; F1@0.7 pooled)"
    )
    print(f"overlays written to {out}/")
    return 0
