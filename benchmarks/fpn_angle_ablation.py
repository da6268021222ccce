"""Does the predicted angle field help the FPN decode? Scores one trained FPN model on the
trainer's validation split with its tuned thresholds, then with the angle field switched off
(no flow barrier in the watershed, no flow-based merging), from the same network outputs.

Usage: python benchmarks/fpn_angle_ablation.py MODEL.pt [--data cache/stage1_train.npz]
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from segmentation.inference import load_model
from segmentation.training.config import DataConfig
from segmentation.training.data import load_samples, prepared_images, split_samples
from segmentation.training.engine import score_raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model")
    parser.add_argument("--data", default="cache/stage1_train.npz")
    args = parser.parse_args()
    model = load_model(args.model, device="cpu")
    if model.family.name != "fpn":
        raise SystemExit(f"{args.model} is a {model.family.name!r} model, not fpn")
    data = DataConfig(root=args.data, val_fraction=0.15, split_seed=0)
    _, val = split_samples(load_samples(data), data)
    raws = [model.predict_raw(chw) for chw in prepared_images(val)]
    tuned = model.thresholds
    variants = {
        "tuned (angle field used)": tuned,
        "no flow barrier": replace(tuned, flow_barrier=0.0),
        "no flow merging": replace(tuned, merge_flow=-1.0, merge_region_flow=-1.0),
        "angle field unused": replace(
            tuned, flow_barrier=0.0, merge_flow=-1.0, merge_region_flow=-1.0
        ),
    }
    print(f"{len(val)} validation images; tuned thresholds: {tuned}")
    print("| decode | score | F1@0.7 |\n|---|---|---|")
    for name, thresholds in variants.items():
        m = score_raw(model.family, raws, val, thresholds)
        print(f"| {name} | {m['score']:.4f} | {m['f1_0.7']:.4f} |")


if __name__ == "__main__":
    main()
