"""Fine-tuning on a few images of a source the model never saw: the rest of the source, before/after.

For each source (:mod:`segmentation.evaluation.heldout`; ``group`` = the largest held-out DSB2018
acquisition group of the recipe's split), for each number of images ``k`` and each seed: ``k``
images are drawn (seeded), :func:`segmentation.finetune` adapts the model to them for
``--minutes``, and the source's other images are segmented by the model before and after (as users
call ``segment()``). Prints one table row per source, ``k`` and seed, and the mean over seeds.

Usage:
  OMP_NUM_THREADS=2 python benchmarks/bench_finetune.py [--sources tcga huh7 group] [--k 1 3 5]
      [--seeds 0 1] [--minutes 10] [--model default] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from evaluate_sources import recipe_split  # noqa: E402

from segmentation.evaluation.heldout import load_source, score_images  # noqa: E402
from segmentation.inference import load_model, segment  # noqa: E402
from segmentation.inference.default import default_model_path  # noqa: E402
from segmentation.training.finetune import finetune  # noqa: E402


def largest_group(recipe: str, data: str) -> list:
    """The images of the largest held-out acquisition group of the recipe's split."""
    from segmentation.datasets.groups import read_group_table
    from segmentation.training.config import load_config

    _, test = recipe_split(recipe, data)
    table = read_group_table(load_config(recipe, [f"data.root={data}"]).data.groups)
    groups: dict[str, list] = {}
    for s in test:
        groups.setdefault(table[s.name], []).append(s)
    return max(groups.values(), key=len)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", nargs="+", default=["tcga", "huh7", "group"])
    parser.add_argument("--k", type=int, nargs="+", default=[1, 3, 5])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--model", default="default")
    parser.add_argument("--data", default="cache/stage1_train.npz")
    parser.add_argument("--recipe", default="configs/default_unet.yaml")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    base_path = default_model_path() if args.model == "default" else Path(args.model)
    base = load_model(base_path, "cpu")
    rows = []
    for key in args.sources:
        samples = largest_group(args.recipe, args.data) if key == "group" else load_source(key)
        for k in args.k:
            for seed in args.seeds:
                order = np.random.default_rng(seed).permutation(len(samples))
                chosen = [samples[i] for i in order[:k]]
                rest = [samples[i] for i in order[k:]]
                before = score_images(rest, partial(segment, model=base))["score"]
                start = time.perf_counter()
                tuned = finetune(
                    [s.image for s in chosen],
                    [s.labels for s in chosen],
                    model=base_path,
                    minutes=args.minutes,
                    seed=seed,
                    device="cpu",
                    progress=False,
                )
                seconds = time.perf_counter() - start
                after = score_images(rest, partial(segment, model=tuned))["score"]
                row = {
                    "source": key,
                    "k": k,
                    "seed": seed,
                    "images_scored": len(rest),
                    "before": before,
                    "after": after,
                    "seconds": seconds,
                    "crops": tuned.model_card["crops"],
                    "network": tuned.model_card["network"],
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    print("\n| source | images fine-tuned on | seeds | images scored | before | after | gain |")
    print("|---|---|---|---|---|---|---|")
    for key in args.sources:
        for k in args.k:
            group = [r for r in rows if r["source"] == key and r["k"] == k]
            before = np.mean([r["before"] for r in group])
            after = np.mean([r["after"] for r in group])
            gains = ", ".join(f"{r['after'] - r['before']:+.3f}" for r in group)
            print(
                f"| {key} | {k} | {len(group)} | {group[0]['images_scored']} | {before:.4f} | "
                f"{after:.4f} | {after - before:+.4f} ({gains}) |"
            )


if __name__ == "__main__":
    main()
