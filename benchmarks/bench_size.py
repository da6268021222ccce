"""Automatic nucleus size on held-out sources rescaled from a third to three times their size.

Each image of each held-out source (:mod:`segmentation.evaluation.heldout`) is resized by each
factor (labels by nearest neighbour) and segmented at its own scale (``auto_diameter=False``), at
its true diameter (the median equivalent diameter of its labels), at the diameter the masks of the
first pass give, and at the size model's estimate (where the network has a size model);
``validation`` stands for the recipe's validation images (where a rule may be chosen). The table
gives, per source and factor, each estimate's error against the true median diameter (median of
``|estimate / truth - 1|``) and the competition score of each pass and of each rule, computed from
the same passes: ``segment()`` without a size model (the masks' bands), and with one, for each
``--rules`` value of ``SIZE_FRAGMENTED,FRAGMENTS,SIZE_LARGE``
(:func:`~segmentation.inference.diameter.choose_diameter`; the first is the shipped rule).

Usage:
  OMP_NUM_THREADS=2 python benchmarks/bench_size.py [--model PATH] [--sources tcga huh7 validation]
      [--factors 0.33 0.5 1 2 3] [--max-images 8] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_auto_diameter import resized  # noqa: E402

from segmentation.evaluation.dataset import evaluate_dataset  # noqa: E402
from segmentation.evaluation.heldout import load_source  # noqa: E402
from segmentation.inference import SegmentOptions, load_default_model, load_model, segment  # noqa: E402
from segmentation.inference.diameter import MAX_ZOOM, estimate_diameter  # noqa: E402
from segmentation.training.config import load_config  # noqa: E402
from segmentation.training.data import load_samples, split_three  # noqa: E402


def spread(samples: list, n: int | None) -> list:
    """At most ``n`` samples taken evenly over the (sorted) list."""
    if n is None or len(samples) <= n:
        return samples
    return [samples[round(i * (len(samples) - 1) / (n - 1))] for i in range(n)]


def first_pass(model, image) -> tuple[np.ndarray, float | None]:
    """``segment()``'s first pass at the image's own scale: its labels, and the size model's
    reading of the style recorded in it (``None`` without a size model)."""
    from segmentation.inference.api import _settings
    from segmentation.inference.engine import finish, make_job, run_network

    net = model.for_image(image)
    settings = _settings(net, None, None, False, 4, SegmentOptions(auto_diameter=False))
    job = make_job(net, image, settings)
    job.wants_style = True
    run_network(net, [job], settings)
    return finish(net, job, settings, False), job.size_estimate(net)


def image_row(model, sample, reference: float) -> dict:
    """One image: true, mask and size-model diameters, and the scores of the passes at its own
    scale, at the true diameter and at each estimate (clipped as ``segment()`` clips it)."""

    def score(diameter: float | None) -> float:
        options = SegmentOptions(auto_diameter=False, diameter=diameter)
        pred = segment(sample.image, model, options=options)
        return evaluate_dataset([(sample.labels, pred)]).mean_score, pred

    def clip(d: float | None) -> float | None:
        return None if d is None else float(np.clip(d, reference / MAX_ZOOM, reference * MAX_ZOOM))

    first, style = first_pass(model, sample.image)
    own = evaluate_dataset([(sample.labels, first)]).mean_score
    row = {
        "truth": estimate_diameter(sample.labels, min_nuclei=1),
        "mask": estimate_diameter(first),
        "style": style,
        "own": own,
    }
    row["true"] = score(row["truth"])[0]
    row["at_mask"] = score(clip(row["mask"]))[0] if row["mask"] is not None else own
    row["at_style"], row["style_pass_mask"] = own, None
    if row["style"] is not None:
        row["at_style"], pred = score(clip(row["style"]))
        row["style_pass_mask"] = estimate_diameter(pred)  # what the second pass found
    return row


def rule_score(
    rows: list[dict], reference: float, rule: tuple | None, confirm: bool = True
) -> float:
    """Score of a rescaling rule from the stored passes: ``None`` is ``segment()`` without a size
    model (the masks' bands); ``(fragmented, fragments, large)`` is :func:`choose_diameter` with
    the size model and those values of ``SIZE_FRAGMENTED``, ``FRAGMENTS`` and ``SIZE_LARGE``, the
    second pass kept only where it confirms the fragments (``confirm``, as ``segment()`` does)."""
    from unittest import mock

    from segmentation.inference import diameter as rules

    def clip(d: float) -> float:
        return float(np.clip(d, reference / MAX_ZOOM, reference * MAX_ZOOM))

    scores = []
    for r in rows:
        if rule is None:
            chosen = rules.choose_diameter(r["mask"], reference)
        else:
            names = ("SIZE_FRAGMENTED", "FRAGMENTS", "SIZE_LARGE")
            with mock.patch.multiple(rules, **dict(zip(names, rule, strict=True))):
                chosen = rules.choose_diameter(r["mask"], reference, r["style"])
                suspected = rules.fragments_suspected(r["mask"], reference, r["style"])
                confirmed = rules.fragments_confirmed(r["mask"], r.get("style_pass_mask"))
            if suspected and not confirmed and confirm:
                chosen = None  # segment() keeps the first pass
        if chosen is None:
            scores.append(r["own"])
        elif r["style"] is not None and chosen == clip(r["style"]):
            scores.append(r["at_style"])  # at the size model's estimate (as at_mask if equal)
        else:
            scores.append(r["at_mask"])
    return float(np.mean(scores))


def error(rows: list[dict], key: str) -> str:
    values = [abs(r[key] / r["truth"] - 1) for r in rows if r[key] is not None]
    return f"{np.median(values):.2f}" if values else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="model file (default: the shipped model)")
    parser.add_argument("--sources", nargs="+", default=["tcga", "huh7"])
    parser.add_argument("--factors", type=float, nargs="+", default=[0.33, 0.5, 1.0, 2.0, 3.0])
    parser.add_argument("--max-images", type=int, default=8, help="per source, spread evenly")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--data", default="cache/stage1_train.npz", help="for 'validation'")
    parser.add_argument("--recipe", default="configs/default_unet.yaml", help="for 'validation'")
    parser.add_argument("--json", default=None)
    parser.add_argument(
        "--rules",
        nargs="+",
        default=["2,1.25,3", "1.6,1.25,3", "2,1.5,3", "2,1.25,2.5", "2,1.25,4"],
        help="SIZE_FRAGMENTED,FRAGMENTS,SIZE_LARGE of each rule with the size model",
    )
    args = parser.parse_args()
    model = load_model(args.model, "cpu") if args.model else load_default_model("cpu")
    reference = SegmentOptions().reference_diameter
    results: dict[str, dict[str, list]] = {}
    for key in args.sources:
        if key == "validation":  # the recipe's validation images: where a rule may be chosen
            config = load_config(args.recipe, [f"data.root={args.data}", "data.extra_train=[]"])
            _, val, _ = split_three(load_samples(config.data), config.data, extra=[])
            samples = spread(val, args.max_images)
        else:
            samples = spread(load_source(key, args.data_root), args.max_images)
        results[key] = {}
        for factor in args.factors:
            start = time.perf_counter()
            rows = [image_row(model, resized(s, factor), reference) for s in samples]
            results[key][str(factor)] = rows
            print(
                f"{key} x{factor}: own {np.mean([r['own'] for r in rows]):.4f} true "
                f"{np.mean([r['true'] for r in rows]):.4f} ({time.perf_counter() - start:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    rules = [None] + [tuple(float(v) for v in r.split(",")) for r in args.rules]
    head = ["source", "factor", "median diameter (px)", "error: masks / size model"]
    head += ["score: own scale", "at the true diameter", "masks (before)"]
    head += [f"size model {r[0]:g} / {r[1]:g} / {r[2]:g}" for r in rules[1:]]
    head += ["the first, second pass not confirmed"]
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for key, by_factor in results.items():
        for factor, rows in by_factor.items():
            truth = np.median([r["truth"] for r in rows])
            cells = [key, f"{float(factor):g}", f"{truth:.1f}"]
            cells.append(f"{error(rows, 'mask')} / {error(rows, 'style')}")
            cells += [f"{np.mean([r[k] for r in rows]):.4f}" for k in ("own", "true")]
            cells += [f"{rule_score(rows, reference, rule):.4f}" for rule in rules]
            cells.append(f"{rule_score(rows, reference, rules[1], confirm=False):.4f}")
            print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
