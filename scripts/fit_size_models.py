"""Fit the size model of every network of a model file and write the file with them.

The main network's size model is fitted on the training images it serves (every kind but its
routes', or ``--kinds``), a route's on the images of its kind; the training images are those of
the recipe's split (never its validation or test images, never a held-out source). Prints each
size model's cross-validated error.

Usage:
  OMP_NUM_THREADS=2 python scripts/fit_size_models.py MODEL.pt --output MODEL_sized.pt \\
      [--data cache/stage1_train.npz] [--extra ../shared/data/bbbc039 ...] [--scales 4] \\
      [--kinds stained]
"""

from __future__ import annotations

import argparse
import time

from segmentation.datasets.nuclear_view import view_kind
from segmentation.inference import load_model
from segmentation.modelfile import atomic_save, read_checkpoint
from segmentation.training.config import load_config
from segmentation.training.size_fit import fit_size_model, size_examples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="model file")
    parser.add_argument("--output", required=True, help="model file to write")
    parser.add_argument("--recipe", default="configs/default_unet.yaml", help="the split")
    parser.add_argument("--data", default="cache/stage1_train.npz")
    parser.add_argument("--extra", nargs="*", default=None, help="extra training sets")
    parser.add_argument("--scales", type=int, default=4, help="random scales per image")
    parser.add_argument(
        "--kinds",
        nargs="+",
        default=None,
        choices=("gray", "composite", "stained"),
        help="fit the main network on images of these kinds (default: those it serves, every "
        "kind but its routes'); e.g. --kinds stained for a network shipped as a route",
    )
    args = parser.parse_args()
    from segmentation.evaluation.heldout import HOLDOUT_PATTERNS
    from segmentation.training.data import training_split

    overrides = [f"data.root={args.data}", f"data.holdout=[{','.join(HOLDOUT_PATTERNS)}]"]
    if args.extra is not None:
        overrides.append(f"data.extra_train=[{','.join(args.extra)}]")
    data = load_config(args.recipe, overrides).data
    train, _, _ = training_split(data)
    model = load_model(args.model, "cpu")
    ckpt = read_checkpoint(args.model)
    networks = {"main": (model, ckpt)}
    for kind, route in model.routes.items():
        networks[kind] = (route, ckpt["routes"][kind])
    kinds = {s.name: view_kind(s.image) for s in train}
    for name, (net, target) in networks.items():
        if name == "main" and args.kinds:
            samples = [s for s in train if kinds[s.name] in args.kinds]
        elif name == "main":
            samples = [s for s in train if kinds[s.name] not in model.routes]
        else:
            samples = [s for s in train if kinds[s.name] == name]
        start = time.perf_counter()
        styles, logs, owners = size_examples(net, samples, scales=args.scales)
        size_model = fit_size_model(styles, logs, owners)
        target["size_model"] = size_model.to_dict()
        print(
            f"{name}: {len(samples)} images, {size_model.fitted_on} "
            f"({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
    atomic_save(ckpt, args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
