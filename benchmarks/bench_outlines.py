"""Outlines of stained nuclei: do the masks cover the whole nucleus or only its dark core?

For the network that segments stained tissue (the model's stained route, or its main network), the
raw maps of every image are computed once, then decoded with the model's thresholds and with each
``--mask`` threshold (the body probability above which a pixel is nucleus). Per set: competition
score, F1 at IoU 0.9, mean IoU of the nuclei matched at IoU > 0.5, and the median ratio of a
matched mask's area to its true nucleus's area (below 1: masks smaller than the nuclei, the
"dark core" failure). Sets: the recipe's validation images of stained tissue (``validation``),
and held-out sources (``tcga``, ``gbm40``).

Usage:
  OMP_NUM_THREADS=2 python benchmarks/bench_outlines.py [--model PATH[,stained:ROUTE]] \\
      [--sets validation tcga] [--mask 0.3 0.4 0.5 0.6]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from evaluate_sources import recipe_split  # noqa: E402
from evaluate_split import load_routed  # noqa: E402

from segmentation.datasets.nuclear_view import view_kind  # noqa: E402
from segmentation.evaluation.dataset import evaluate_dataset  # noqa: E402
from segmentation.evaluation.heldout import load_source  # noqa: E402


def area_ratios(gt: np.ndarray, pred: np.ndarray) -> list[float]:
    """``area(pred) / area(gt)`` of every pair matched at IoU > 0.5 (one-to-one there)."""
    pairs = gt.astype(np.int64) * (int(pred.max()) + 1) + pred
    both = (gt > 0) & (pred > 0)
    ids, inter = np.unique(pairs[both], return_counts=True)
    g, p = ids // (int(pred.max()) + 1), ids % (int(pred.max()) + 1)
    area_g, area_p = np.bincount(gt.ravel()), np.bincount(pred.ravel())
    iou = inter / (area_g[g] + area_p[p] - inter)
    hit = iou > 0.5
    return list(area_p[p[hit]] / area_g[g[hit]])


def measure(samples: list, preds: list) -> dict[str, float]:
    result = evaluate_dataset([(s.labels, p) for s, p in zip(samples, preds, strict=True)])
    matched = sum(int(r.tp[0]) for r in result.images)
    ratios = [r for s, p in zip(samples, preds, strict=True) for r in area_ratios(s.labels, p)]
    return {
        "score": result.mean_score,
        "f1_0.9": result.f1_at(0.9),
        "matched_iou": sum(r.sum_matched_iou for r in result.images) / max(matched, 1),
        "area_ratio": float(np.median(ratios)) if ratios else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="segmentation/weights/default_unet.pt")
    parser.add_argument("--sets", nargs="+", default=["validation", "tcga"])
    parser.add_argument("--mask", type=float, nargs="+", default=[0.3, 0.4, 0.5, 0.6])
    parser.add_argument("--data", default="cache/stage1_train.npz")
    parser.add_argument("--recipe", default="configs/default_unet.yaml")
    args = parser.parse_args()
    model = load_routed(args.model, "cpu")
    sets = {}
    for name in args.sets:
        if name == "validation":
            val, _ = recipe_split(args.recipe, args.data)
            sets[name] = [s for s in val if view_kind(s.image) == "stained"]
        else:
            sets[name] = load_source(name)
    head = ["set", "thresholds", "score", "F1@0.9", "matched IoU", "area ratio (pred / true)"]
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for name, samples in sets.items():
        net = model.for_image(samples[0].image)
        raws = [net.predict_raw(net.prepare(s.image)) for s in samples]
        own = net.thresholds
        options = [("the model's", own)] + [
            (f"mask {m:g}", dataclasses.replace(own, mask=m)) for m in args.mask
        ]
        for label, thresholds in options:
            preds = [net.family.decode(raw, thresholds) for raw in raws]
            row = measure(samples, preds)
            print(
                f"| {name} ({len(samples)}) | {label} (mask {thresholds.mask:g}) | "
                f"{row['score']:.4f} | {row['f1_0.9']:.3f} | {row['matched_iou']:.3f} | "
                f"{row['area_ratio']:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
