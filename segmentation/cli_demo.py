"""``segmentation demo``: segment the bundled sample with the default model, score it, draw it.

By default no training happens: the model shipped inside the package segments the 10 bundled
sample images (seconds on a CPU). ``--model PATH`` uses another model file; ``--train`` first trains
``configs/demo_unet.yaml`` on the sample (a few minutes on a CPU) to show the whole path, printing
one line per epoch (and a progress bar over each epoch's steps on a terminal), into
``<output>/model`` (replacing the previous demo run there).
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

DEMO_RECIPE = Path(__file__).resolve().parents[1] / "configs" / "demo_unet.yaml"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``demo`` subcommand."""
    parser = subparsers.add_parser(
        "demo",
        help="segment the bundled sample with the default model, score it, write overlays",
        description="Segments the bundled sample images with the default model shipped in the "
        "package (or --model, or a model trained first with --train), prints the competition "
        "score and F1@0.7 per image and overall, writes overlay PNGs.",
    )
    parser.add_argument("--output", default="demo_output", help="output folder")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", default=None, help="use this model file instead of the default")
    source.add_argument(
        "--train",
        action="store_true",
        help="first train configs/demo_unet.yaml on the sample (a few minutes on a CPU), use it",
    )
    parser.add_argument(
        "--minutes", type=float, default=None, help="training time budget (with --train)"
    )
    parser.set_defaults(func=run)
    return parser


def _split_of_samples(card: dict) -> dict[str, str]:
    """Sample name -> ``"val"`` when its DSB image is in the model card's validation split,
    ``"test"`` when in its held-out acquisition groups, else ``"train"`` (``"not val"`` when the
    recipe held out a test split the card does not list); ``{}`` if unknown."""
    from segmentation.datasets.sample_data import sample_dir

    split = card.get("split") or {}
    ids = split.get("validation_ids")
    manifest = sample_dir() / "manifest.csv"
    if not ids or not manifest.is_file():
        return {}
    ids = set(ids)
    test = set((card.get("held_out_groups") or {}).get("test_ids") or [])
    other = "not val" if split.get("test_fraction") and not test else "train"

    def where(dsb_id: str) -> str:
        return "val" if dsb_id in ids else ("test" if dsb_id in test else other)

    with manifest.open(newline="") as f:
        return {row["name"]: where(row["dsb_id"]) for row in csv.DictReader(f)}


def train_demo_model(
    output: Path, minutes: float | None = None, recipe: Path = DEMO_RECIPE
) -> Path:
    """Train ``recipe`` (the demo's) into ``output`` (replacing an earlier demo run there) and
    return the model file; shows its progress: a header, one line per epoch, and a progress bar
    over each epoch's steps when stderr is a terminal.

    Args:
        output: run folder (``train.output``).
        minutes: training time budget (``train.max_minutes``); None keeps the recipe's.
        recipe: the YAML recipe.
    """
    from segmentation.training.config import load_config
    from segmentation.training.fit import fit

    overrides = [f"train.output={output}"]
    if minutes is not None:
        overrides.append(f"train.max_minutes={minutes}")
    if sys.stderr.isatty():
        overrides.append("train.progress=true")
    config = load_config(recipe, overrides)
    t, budget = config.train, config.train.max_minutes
    print(
        f"training {recipe.name} on {config.data.root} ({t.device}): {t.epochs} epochs of "
        f"{config.data.samples_per_epoch} crops"
        + (f", or {budget:g} minutes, whichever ends first" if budget else "")
        + f"; validated every {t.val_every} epochs",
        flush=True,
    )
    start = time.perf_counter()
    model_path = fit(config, overwrite=True)
    print(f"trained in {time.perf_counter() - start:.0f} s -> {model_path}", flush=True)
    return model_path


def _load(args: argparse.Namespace, out: Path):
    from segmentation.inference import load_default_model, load_model

    if args.train:
        return load_model(train_demo_model(out / "model", args.minutes), device="cpu")
    if args.minutes is not None:
        raise ValueError("--minutes is the training budget of --train; add --train or drop it")
    if args.model is not None:
        return load_model(args.model, device="cpu")
    return load_default_model(device="cpu")


def run(args: argparse.Namespace) -> int:
    """Load (or train) the model, segment the sample, print scores, write overlays."""

    from segmentation.datasets.sample_data import load_sample
    from segmentation.evaluation.dataset import evaluate_dataset
    from segmentation.inference import model_card_summary, segment
    from segmentation.visualize import write_overlay

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    model = _load(args, out)
    if model.model_card:
        print(f"model: {model_card_summary(model.model_card)}")
    splits = _split_of_samples(model.model_card)
    samples = load_sample()
    preds = []
    start = time.perf_counter()
    for sample in samples:
        labels = segment(sample.image, model)
        preds.append(labels)
        write_overlay(out / f"{sample.name}_overlay.png", sample.image, labels)
    seconds = time.perf_counter() - start
    result = evaluate_dataset([(s.labels, p) for s, p in zip(samples, preds, strict=True)])
    split = f" {'split':>8}" if splits else ""
    print(f"\n{'image':<22} {'nuclei':>7} {'found':>6} {'score':>7} {'F1@0.7':>7}{split}")
    for sample, pred, image_result in zip(samples, preds, result.images, strict=True):
        where = f" {splits.get(sample.name, '?'):>8}" if splits else ""
        print(
            f"{sample.name[:22]:<22} {int(sample.labels.max()):>7} {int(pred.max()):>6} "
            f"{image_result.mean_score:>7.3f} {image_result.at(0.7).f1:>7.3f}{where}"
        )
    print(
        f"{'overall':<22} {'':>7} {'':>6} {result.mean_score:>7.3f} {result.f1_at(0.7):>7.3f}"
        "   (score: mean of per-image DSB scores; F1@0.7 pooled)"
    )
    if splits:
        n_val = sum(splits.get(s.name) == "val" for s in samples)
        n_test = sum(splits.get(s.name) == "test" for s in samples)
        held = f" and {n_test} in its held-out acquisition groups" if n_test else ""
        print(
            f"split: {n_val} of {len(samples)} sample images are in the model's validation split"
            f"{held}; it trained on the others (the model card's scores are the fair numbers)"
        )
    print(f"segmented {len(samples)} images in {seconds:.1f} s; overlays written to {out}/")
    return 0
