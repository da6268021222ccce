"""Automatic nucleus size: how much of the true diameter's gain the estimate recovers.

Validation images of the default recipe's split are resized by each factor (labels by nearest
neighbour) and segmented at their own scale (``auto_diameter=False``), at the true diameter (the
median equivalent diameter of their labels) and at the diameter estimated from the first pass
(:func:`segmentation.inference.diameter.estimate_diameter`). Then each rescaling rule "segment
again at the estimate when it is below ``reference / small`` or above ``reference * large``" is
scored from those passes. Recovery = (rule - own scale) / (true diameter - own scale).

Usage: OMP_NUM_THREADS=1 python benchmarks/bench_auto_diameter.py [--data cache/stage1_train.npz]
    [--factors 0.5 1 2] [--small 1.3 1.6 2.0] [--large 1.3 1.6 2.0 2.5 1e9] [--model PATH]
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

from segmentation.datasets.sample_type import Sample
from segmentation.evaluation.dataset import evaluate_dataset
from segmentation.inference import SegmentOptions, load_default_model, load_model, segment
from segmentation.inference.diameter import MAX_ZOOM, estimate_diameter
from segmentation.training.config import load_config
from segmentation.training.data import load_samples, split_three


def resized(sample: Sample, factor: float) -> Sample:
    """The sample with image (area or linear) and labels (nearest) resized by ``factor``."""
    if factor == 1:
        return sample
    h, w = sample.image.shape[:2]
    size = (max(8, round(w * factor)), max(8, round(h * factor)))
    mode = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
    image = cv2.resize(sample.image, size, interpolation=mode)
    image = image if image.ndim == 3 else image[..., None]
    labels = cv2.resize(sample.labels, size, interpolation=cv2.INTER_NEAREST)
    return Sample(sample.name, image, labels)


def _score(labels: np.ndarray, pred: np.ndarray) -> float:
    return evaluate_dataset([(labels, pred)]).mean_score


def passes(model, samples: list[Sample], reference: float) -> list[dict]:
    """Per image: its scores at its own scale, at the true diameter and at the estimate."""
    rows = []
    for s in samples:
        first = segment(s.image, model, options=SegmentOptions(auto_diameter=False))
        truth = estimate_diameter(s.labels, min_nuclei=1) or reference
        row = {
            "own": _score(s.labels, first),
            "true": _score(
                s.labels, segment(s.image, model, options=SegmentOptions(diameter=truth))
            ),
            "estimate": estimate_diameter(first),
            "truth": truth,
        }
        if row["estimate"] is not None:  # clipped as segment() clips it
            diameter = float(np.clip(row["estimate"], reference / MAX_ZOOM, reference * MAX_ZOOM))
            options = SegmentOptions(diameter=diameter)
            row["at_estimate"] = _score(s.labels, segment(s.image, model, options=options))
        rows.append(row)
    return rows


def rule_score(rows: list[dict], reference: float, small: float, large: float) -> float:
    """Competition score of the rule (small, large) from the stored passes."""
    scores = []
    for r in rows:
        e = r["estimate"]
        rescale = e is not None and (e < reference / small or e > reference * large)
        scores.append(r["at_estimate"] if rescale else r["own"])
    return float(np.mean(scores))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="cache/stage1_train.npz")
    parser.add_argument("--recipe", default="configs/default_unet.yaml")
    parser.add_argument("--factors", type=float, nargs="+", default=[0.5, 1.0, 2.0])
    parser.add_argument("--small", type=float, nargs="+", default=[1.3, 1.6, 2.0])
    parser.add_argument("--large", type=float, nargs="+", default=[1.3, 1.6, 2.0, 2.5, 1e9])
    parser.add_argument("--model", default=None, help="model file (default: the shipped model)")
    parser.add_argument("--max-images", type=int, default=None)
    args = parser.parse_args()
    config = load_config(args.recipe, [f"data.root={args.data}", "data.extra_train=[]"])
    _, val, _ = split_three(load_samples(config.data), config.data, extra=[])
    val = val[: args.max_images]
    model = load_model(args.model, "cpu") if args.model else load_default_model("cpu")
    reference = SegmentOptions().reference_diameter
    print(f"{len(val)} validation images of {args.data}; reference diameter {reference} px")
    results = {}
    for factor in args.factors:
        start = time.perf_counter()
        rows = passes(model, [resized(s, factor) for s in val], reference)
        results[factor] = rows
        ratio = np.nanmedian([(r["estimate"] or np.nan) / r["truth"] for r in rows])
        own, true = np.mean([r["own"] for r in rows]), np.mean([r["true"] for r in rows])
        print(
            f"factor {factor}: own scale {own:.4f}, true diameter {true:.4f}, median estimate / "
            f"true diameter {ratio:.2f} ({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
    print(
        "\n| rescale when the estimate is below reference / small or above reference * large | "
        + " | ".join(f"factor {f}" for f in args.factors)
        + " |"
    )
    print("|---|" + "---|" * len(args.factors))
    print(
        "| never (own scale) | "
        + " | ".join(f"{np.mean([r['own'] for r in results[f]]):.4f}" for f in args.factors)
        + " |"
    )
    print(
        "| true diameter, always | "
        + " | ".join(f"{np.mean([r['true'] for r in results[f]]):.4f}" for f in args.factors)
        + " |"
    )
    for small in args.small:
        for large in args.large:
            cells = []
            for f in args.factors:
                rows = results[f]
                own = np.mean([r["own"] for r in rows])
                gain = np.mean([r["true"] for r in rows]) - own
                score = rule_score(rows, reference, small, large)
                share = f" ({(score - own) / gain:.0%})" if gain > 0.005 else ""
                cells.append(f"{score:.4f}{share}")
            name = "never" if large > 1e6 else f"{large:g}"
            print(f"| small {small:g}, large {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
