"""Score models on held-out sources (whole labs) beside the held-out acquisition groups.

Every choice of issue 24 is judged here: per modality, the held-out DSB2018 groups of the recipe's
split (``data.split: group``) and the held-out sources of
:mod:`segmentation.evaluation.heldout` (TCGA glioma H&E tiles, Huh7 Hoechst images), which no
recipe trains on. ``--unseen`` adds GBM40 and HepG2, the rest of those two data sets (held out only
from models that did not train on them). Models are called as users call them (``segment()``
defaults: automatic nucleus size, their own thresholds and views).

Usage:
  OMP_NUM_THREADS=2 python benchmarks/evaluate_sources.py --baseline --model shipped=default \\
      --model new=runs/x/model.pt[,stained:runs/y/model.pt] [--unseen] [--json out.json]
  python benchmarks/evaluate_sources.py --model shipped=default --only tcga --only huh7
"""

from __future__ import annotations

import argparse
import json
import sys
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from evaluate_split import load_routed  # noqa: E402

from segmentation.datasets.image_types import image_type  # noqa: E402
from segmentation.evaluation.heldout import (  # noqa: E402
    HELD_OUT_SOURCES,
    SOURCES,
    UNSEEN_SOURCES,
    load_source,
    score_images,
)
from segmentation.inference import segment  # noqa: E402
from segmentation.training.config import load_config  # noqa: E402
from segmentation.training.data import load_samples, split_three  # noqa: E402


def recipe_split(recipe: str, data_root: str) -> tuple[list, list]:
    """``(validation, test)`` images of the recipe's split (test: the held-out groups)."""
    data = load_config(recipe, [f"data.root={data_root}", "data.extra_train=[]"]).data
    _, val, test = split_three(load_samples(data), data, extra=[])
    return val, test


def tune_stained_route(model, val: list) -> None:
    """Tune the thresholds of ``model``'s stained-tissue route on the validation images of
    stained tissue, as ``scripts/ship_default_model.py`` does when it ships a route."""
    from segmentation.datasets.nuclear_view import view_kind
    from segmentation.models.base import thresholds_from_dict
    from segmentation.training.tuning import tune_model_thresholds

    route = model.routes.get("stained")
    if route is None:
        return
    stained = [s for s in val if view_kind(s.image) == "stained"]
    thresholds, metrics = tune_model_thresholds(route, stained)
    route.thresholds = thresholds_from_dict(route.family.Thresholds, thresholds)
    print(
        f"  stained route tuned on {len(stained)} validation images: "
        f"{metrics['score_before']:.4f} -> {metrics['score']:.4f}",
        file=sys.stderr,
    )


def score_model(predict, sets: dict[str, list]) -> dict[str, dict]:
    """``{set name: score_images(...)}`` of one model over every set."""
    out = {}
    for name, samples in sets.items():
        out[name] = score_images(samples, predict)
        print(f"  {name}: {out[name]['score']:.4f}", file=sys.stderr, flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", default=[], help="NAME=PATH[,stained:ROUTE]")
    parser.add_argument("--baseline", action="store_true", help="add Otsu + watershed")
    parser.add_argument("--unseen", action="store_true", help="also GBM40 and HepG2")
    parser.add_argument("--only", action="append", default=[], help="a set: groups-<type>, key")
    parser.add_argument("--data", default="cache/stage1_train.npz", help="DSB2018 (packed)")
    parser.add_argument("--data-root", default=None, help="shared data (../shared/data)")
    parser.add_argument("--recipe", default="configs/default_unet.yaml", help="the group split")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", default=None, help="write every number here")
    parser.add_argument(
        "--tune-stained",
        action="store_true",
        help="tune each model's stained route on the stained validation images first (as shipping)",
    )
    args = parser.parse_args()

    val, test = recipe_split(args.recipe, args.data)
    sets: dict[str, list] = {}
    for s in test:
        sets.setdefault(f"groups-{image_type(s.image)}", []).append(s)
    sets = dict(sorted(sets.items()))
    for source in HELD_OUT_SOURCES + (UNSEEN_SOURCES if args.unseen else ()):
        sets[source.key] = load_source(source, args.data_root)
    if args.only:
        sets = {k: v for k, v in sets.items() if k in args.only}
    models = []
    if args.baseline:
        from segmentation.baselines import otsu_watershed

        models.append(("Otsu + watershed", otsu_watershed))
    for item in args.model:
        name, spec = item.split("=", 1)
        if spec.split(",")[0] == "default":  # the shipped model
            from segmentation.inference.default import default_model_path

            spec = str(default_model_path()) + spec[len("default") :]
        model = load_routed(spec, args.device)
        if args.tune_stained:
            tune_stained_route(model, val)
        models.append((name, partial(segment, model=model)))
    results = {}
    for name, predict in models:
        print(name, file=sys.stderr, flush=True)
        results[name] = score_model(predict, sets)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    print_tables(results, sets)


def print_tables(results: dict[str, dict], sets: dict[str, list]) -> None:
    """Markdown: score per set (groups by modality beside the sources), then outline quality."""
    names = list(sets)
    titles = {k: (SOURCES[k].title if k in SOURCES else k) for k in names}
    head = ["model"] + [f"{titles[k]} ({len(sets[k])})" for k in names]
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for model, by_set in results.items():
        cells = [model] + [f"{by_set[k]['score']:.4f}" for k in names]
        print("| " + " | ".join(cells) + " |")
    print("\nF1@0.9 / mean IoU of matched nuclei:\n")
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for model, by_set in results.items():
        cells = [model] + [
            f"{by_set[k]['f1_0.9']:.3f} / {by_set[k]['matched_iou']:.3f}" for k in names
        ]
        print("| " + " | ".join(cells) + " |")
    seconds = {m: np.mean([r["seconds"] for r in by_set.values()]) for m, by_set in results.items()}
    print(
        "\nseconds per image (mean over sets): "
        + ", ".join(f"{m} {s:.2f}" for m, s in seconds.items())
    )


if __name__ == "__main__":
    main()
