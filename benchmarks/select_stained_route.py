"""Pick the network for stained tissue among trained candidates, on validation images only.

Each candidate's thresholds are tuned on the validation images of stained tissue (as
``scripts/ship_default_model.py --stained`` does when shipping), and the candidates are ranked by
the score reached there. The held-out acquisition groups are not looked at: they judge the chosen
model afterwards (``evaluate_split.py --which test``, and the ship script's comparison).

Usage:
  OMP_NUM_THREADS=1 python benchmarks/select_stained_route.py runs/a/model.pt runs/b/model.pt \\
      [--data cache/stage1_train.npz] [--recipe configs/default_unet.yaml]
"""

from __future__ import annotations

import argparse

from segmentation.datasets.nuclear_view import view_kind
from segmentation.inference import load_model
from segmentation.training.config import load_config
from segmentation.training.data import load_samples, split_three
from segmentation.training.tuning import tune_model_thresholds


def stained_validation(recipe: str, data_root: str) -> list:
    """The validation images of stained tissue of the recipe's split (extra data left out)."""
    data = load_config(recipe, [f"data.root={data_root}", "data.extra_train=[]"]).data
    _, val, _ = split_three(load_samples(data), data, extra=[])
    return [s for s in val if view_kind(s.image) == "stained"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", help="candidate model files")
    parser.add_argument("--data", default="cache/stage1_train.npz")
    parser.add_argument("--recipe", default="configs/default_unet.yaml", help="the split's recipe")
    args = parser.parse_args()
    samples = stained_validation(args.recipe, args.data)
    print(f"{len(samples)} validation images of stained tissue")
    print("| candidate | view | score, its thresholds | score, tuned here |")
    print("|---|---|---|---|")
    rows = []
    for path in args.models:
        model = load_model(path, "cpu")
        _, metrics = tune_model_thresholds(model, samples)
        view = (model.recipe.get("data") or {}).get("stained_view", "rgb")
        rows.append((metrics["score"], path))
        print(f"| {path} | {view} | {metrics['score_before']:.4f} | {metrics['score']:.4f} |")
    print(f"chosen: {max(rows)[1]}")


if __name__ == "__main__":
    main()
