"""Score trained model files and the classical baseline on a split of a recipe's data.

The split is the trainer's own (``data.val_fraction``/``data.split_seed``, stratified by image type;
with ``--split group``, the held-out acquisition groups of ``--groups`` as the test split), so the
numbers are on images no model trained on. Prints a Markdown table: competition score (mean of
per-image scores), F1 at IoU 0.5/0.7/0.9 (pooled), score per image type, and seconds per image.

Usage:
  python benchmarks/evaluate_split.py --data cache/stage1_train.npz \
      --model unet=runs/cpu/unet/model.pt --model fpn=runs/cpu/fpn/model.pt --baseline
  python benchmarks/evaluate_split.py --split group --which test --baseline --model new=NEW.pt
  python benchmarks/evaluate_split.py --split group --only-type histology \
      --model routed=MAIN.pt,stained:STAINED.pt     # stained tissue to STAINED.pt's network
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import numpy as np

from segmentation.inference import segment
from segmentation.training.config import DataConfig
from segmentation.training.data import load_samples, split_three


def score_predictions(name: str, samples, predict) -> dict:
    from segmentation.datasets.image_types import image_type
    from segmentation.evaluation.dataset import evaluate_dataset

    start = time.perf_counter()
    preds = [predict(s.image) for s in samples]
    seconds = (time.perf_counter() - start) / len(samples)
    result = evaluate_dataset([(s.labels, p) for s, p in zip(samples, preds, strict=True)])
    kinds = np.array([image_type(s.image) for s in samples])
    per_image = np.array([r.mean_score for r in result.images])
    by_kind = {k: float(per_image[kinds == k].mean()) for k in sorted(set(kinds))}
    return {
        "name": name,
        "score": result.mean_score,
        "f1_0.5": result.f1_at(0.5),
        "f1_0.7": result.f1_at(0.7),
        "f1_0.9": result.f1_at(0.9),
        "by_kind": by_kind,
        "counts": {k: int((kinds == k).sum()) for k in sorted(set(kinds))},
        "s_per_image": seconds,
    }


def load_routed(spec: str, device: str):
    """``PATH[,KIND:ROUTE_PATH...]`` -> the model of PATH, with ROUTE_PATH's network for images
    of KIND (``stained``, ...) as a shipped file would route them (:func:`add_route`)."""
    from segmentation.inference import SegmentationModel, load_model
    from segmentation.modelfile import add_route, read_checkpoint

    path, *routes = spec.split(",")
    if not routes:
        return load_model(path, device=device)
    ckpt = read_checkpoint(path)
    for route in routes:
        kind, _, route_path = route.partition(":")
        ckpt = add_route(ckpt, kind, read_checkpoint(route_path))
    return SegmentationModel.from_checkpoint(ckpt, device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="cache/stage1_train.npz")
    parser.add_argument("--val-fraction", type=float, default=0.15)
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument(
        "--model", action="append", default=[], help="NAME=PATH[,KIND:ROUTE], repeatable"
    )
    parser.add_argument("--only-type", default=None, help="score only this image type")
    parser.add_argument("--baseline", action="store_true", help="add the Otsu+watershed row")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--split", choices=("random", "group"), default="random")
    parser.add_argument("--test-fraction", type=float, default=None, help="default: 0.25 (group)")
    parser.add_argument("--groups", default="configs/groups/dsb2018_bbbc039.csv")
    parser.add_argument("--which", choices=("val", "test"), default="val", help="split to score")
    args = parser.parse_args()
    test_fraction = args.test_fraction
    if test_fraction is None:
        test_fraction = 0.25 if args.split == "group" else 0.0
    data = DataConfig(
        root=args.data,
        val_fraction=args.val_fraction,
        test_fraction=test_fraction,
        split_seed=args.split_seed,
        split=args.split,
        groups=args.groups if args.split == "group" else None,
    )
    _, val, test = split_three(load_samples(data), data)
    val = test if args.which == "test" else val
    if args.only_type:
        from segmentation.datasets.image_types import image_type

        val = [s for s in val if image_type(s.image) == args.only_type]
        if not val:
            raise SystemExit(f"no {args.only_type} images in the {args.which} split")
    rows = []
    if args.baseline:
        from segmentation.baselines import otsu_watershed

        rows.append(score_predictions("Otsu + watershed", val, otsu_watershed))
    for item in args.model:
        name, spec = item.split("=", 1)
        model = load_routed(spec, args.device)
        rows.append(score_predictions(name, val, partial(segment, model=model)))
    kinds = list(rows[0]["counts"])
    head = ["model", "score", "F1@0.5", "F1@0.7", "F1@0.9"]
    head += [f"{k} ({rows[0]['counts'][k]})" for k in kinds] + ["s/image"]
    print(f"{args.split} split, {args.which}: {len(val)} images of {args.data}")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        cells = [r["name"], f"{r['score']:.4f}", f"{r['f1_0.5']:.3f}", f"{r['f1_0.7']:.3f}"]
        cells += [f"{r['f1_0.9']:.3f}"] + [f"{r['by_kind'][k]:.3f}" for k in kinds]
        cells.append(f"{r['s_per_image']:.3f}")
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
