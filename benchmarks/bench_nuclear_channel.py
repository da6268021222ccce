"""Which view of a stained-tissue image should the network see? Score the shipped model on the
held-out acquisition groups' colour (histology) images under several input views.

Views: ``rgb`` (as is), ``gray`` (luminance), ``gray_inverted`` (nuclei bright on dark),
``hematoxylin`` (haematoxylin optical density from ``skimage.color.rgb2hed``, nuclei bright on
dark, like a nuclear stain in fluorescence) and ``hematoxylin_dark`` (the same, inverted: dark
nuclei on a bright background, like brightfield).

Usage:
  python benchmarks/bench_nuclear_channel.py [--data cache/stage1_train.npz] [--model M.pt]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from segmentation.datasets.image_types import image_type
from segmentation.evaluation.dataset import evaluate_dataset
from segmentation.inference import load_default_model, load_model, segment
from segmentation.training.config import DataConfig
from segmentation.training.data import load_samples, split_three


def _stretch(x: np.ndarray) -> np.ndarray:
    low, high = np.percentile(x, [1, 99.8])
    return np.clip((x - low) / max(high - low, 1e-6), 0, 1)


def view(image: np.ndarray, name: str) -> np.ndarray:
    """``(H, W, 3)`` uint8 image -> ``(H, W, 3)`` uint8 view ``name``."""
    from skimage.color import rgb2gray, rgb2hed

    rgb = image[..., :3]
    if name == "rgb":
        return rgb
    if name.startswith("gray"):
        gray = _stretch(rgb2gray(rgb))
        gray = 1 - gray if name == "gray_inverted" else gray
    else:
        gray = _stretch(rgb2hed(rgb)[..., 0])
        gray = 1 - gray if name == "hematoxylin_dark" else gray
    return np.repeat((255 * gray).astype(np.uint8)[..., None], 3, axis=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="cache/stage1_train.npz")
    parser.add_argument("--model", default=None, help="model file (default: the shipped one)")
    parser.add_argument("--split", default="test", choices=["test", "train", "val"])
    args = parser.parse_args()
    config = DataConfig(
        root=args.data,
        split="group",
        test_fraction=0.25,
        groups="configs/groups/dsb2018_bbbc039.csv",
    )
    train, val, test = split_three(load_samples(config), config, extra=[])
    chosen = {"test": test, "train": train, "val": val}[args.split]
    samples = [s for s in chosen if image_type(s.image) == "histology"]
    model = load_default_model("cpu") if args.model is None else load_model(args.model, "cpu")
    print(f"{len(samples)} histology images of the {args.split} split")
    rows = {}
    for name in ("rgb", "gray", "gray_inverted", "hematoxylin", "hematoxylin_dark"):
        start = time.perf_counter()
        preds = [segment(view(s.image, name), model) for s in samples]
        result = evaluate_dataset([(s.labels, p) for s, p in zip(samples, preds, strict=True)])
        rows[name] = {"score": round(result.mean_score, 4), "f1_0.7": round(result.f1_at(0.7), 4)}
        print(name, rows[name], f"{time.perf_counter() - start:.0f} s", flush=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
