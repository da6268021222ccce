"""Fine-tune a model on a few annotated images of one's own, in minutes on a laptop CPU.

What Cellpose 2.0 made its headline: the generalist almost works, the user corrects a few images,
a short fine-tune makes it work on that lab's images. This module builds a recipe for few images
and runs the one trainer (:func:`segmentation.training.fit.fit_member`) with it:

- **network**: the model's network for the images' kind (its stained-tissue route for H&E and IHC,
  else its main network), starting from its weights; every layer trains. The rest of the model
  file (the other network, the size model) is kept, so the result is an ordinary model file that
  ``segment()``, ``segment_large`` and the CLI take as they are.
- **scale**: each image is shown at the scale ``segment()`` will show that lab's images at: resized
  to the training diameter when its nuclei (the median of its masks) lie outside the automatic
  size's band (:mod:`segmentation.inference.diameter`).
- **validation without a separate set**: the last :data:`VALIDATION_SHARE` of each image along its
  longer side is held out (no training crop reaches it); after every epoch the held-out parts are
  segmented and the best state is kept. The post-processing thresholds are tuned on them at the
  end, starting from the model's, when they hold at least :data:`MIN_TUNING_NUCLEI` nuclei
  (else the model's are kept: tuning on fewer fits noise); the base weights, with thresholds
  chosen the same way, compete with the best state, so a fine-tune that does not help on the
  held-out parts is not kept. Fewer than :data:`MIN_CHOICE_NUCLEI` held-out nuclei draw a warning.
- **crops and schedule**: :data:`CROP_SIZE`-pixel crops, batch :data:`BATCH_SIZE`, AdamW at
  :data:`LEARNING_RATE` with a cosine over the wall-time budget, the model's own augmentation,
  bfloat16 autocast on CPUs that have it (:mod:`segmentation.training.precision`).

Ctrl-C during training keeps the best state reached so far.
"""

from __future__ import annotations

import os
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from segmentation.datasets.sample_type import Sample

#: Fewest nuclei in all the annotated images: fewer teach the network nothing it can trust.
MIN_NUCLEI = 20
#: Share of each image (along its longer side) held out for validation.
VALIDATION_SHARE = 0.2
CROP_SIZE = 128
BATCH_SIZE = 8
LEARNING_RATE = 2e-4
#: Crops per epoch: one validation per epoch, so the best state is chosen often.
CROPS_PER_EPOCH = 256
#: Fewest nuclei in the held-out parts for the thresholds to be re-tuned there: on fewer, tuning
#: fits noise (5 Huh7 images, 18 held-out nuclei: the tuned thresholds cost 0.03 on the source's
#: other images, docs/benchmarks.md "Fine-tuning on a few images of a new source").
MIN_TUNING_NUCLEI = 100
#: Fewest held-out nuclei for the choice of the best state to be trusted: fewer draw a warning.
MIN_CHOICE_NUCLEI = 30


def _annotated(images: Any, masks: Any, binary_masks: bool) -> list[Sample]:
    """Samples from two folders, or from a list of images and a list of label images."""
    if isinstance(images, str | os.PathLike):
        from segmentation.datasets.annotations import load_annotated_folder

        if masks is None:
            raise ValueError("give the folder of masks beside the folder of images")
        return load_annotated_folder(images, masks, binary_masks=binary_masks)
    from segmentation.datasets.labels import validate_labels
    from segmentation.inference.inputs import as_image_array

    images, masks = list(images), list(masks if masks is not None else [])
    if len(images) != len(masks) or not images:
        raise ValueError(
            f"give one label image per image: got {len(images)} images and {len(masks)} masks"
        )
    samples = []
    for i, (image, labels) in enumerate(zip(images, masks, strict=True)):
        image = as_image_array(image)
        try:
            labels = validate_labels(np.asarray(labels), image.shape)
        except (TypeError, ValueError) as err:
            raise ValueError(f"mask {i}: {err}") from err
        samples.append(Sample(name=f"image_{i}", image=image, labels=labels))
    return samples


def _base(model: str | os.PathLike) -> tuple[Path, dict[str, Any]]:
    """The base model file's path and checkpoint; refuses families this recipe cannot adapt."""
    from segmentation.modelfile import read_checkpoint
    from segmentation.training.init_weights import init_path

    path = init_path(str(model))
    ckpt = read_checkpoint(path)
    if ckpt["family"] != "unet":
        raise ValueError(
            f"{path} is a {ckpt['family']} model; fine-tuning adapts U-Net models (the family of "
            "the default model): pass --model default or a U-Net model file"
        )
    if len(ckpt["members"]) != 1:
        raise ValueError(
            f"{path} is an ensemble of {len(ckpt['members'])} networks; fine-tuning adapts a "
            "single network: pass --model default or a one-member U-Net model file"
        )
    return path, ckpt


def _at_model_scale(sample: Sample, reference: float, sized: bool) -> tuple[Sample, float]:
    """The sample resized as ``segment()`` would resize its image, its masks' diameter taken for
    the estimates (of the masks and, when the network has one, of its size model)."""
    from segmentation.inference.diameter import choose_diameter, estimate_diameter
    from segmentation.inference.inputs import resize_image, resize_labels, scaled_shape

    diameter = estimate_diameter(sample.labels, min_nuclei=1)
    chosen = choose_diameter(diameter, reference, diameter if sized else None)
    if chosen is None:
        return sample, 1.0
    factor = reference / chosen
    shape = scaled_shape(sample.image.shape[:2], factor)
    image = resize_image(sample.image, shape)
    labels = resize_labels(sample.labels, shape)
    return Sample(sample.name, image, labels), factor


def split_for_validation(sample: Sample, share: float = VALIDATION_SHARE) -> tuple[Sample, Sample]:
    """Cut an annotated image in two along its longer side: ``(training part, held-out part)``;
    the held-out part is the last ``share`` of that side (at least 32 pixels)."""
    height, width = sample.labels.shape
    along_rows = height >= width
    side = height if along_rows else width
    cut = side - min(side // 2, max(32, round(side * share)))
    parts = []
    for window in (slice(0, cut), slice(cut, side)):
        index = (window, slice(None)) if along_rows else (slice(None), window)
        parts.append(
            Sample(sample.name, np.ascontiguousarray(sample.image[index]), sample.labels[index])
        )
    return parts[0], parts[1]


def _recipe(network: dict[str, Any], work: Path, base: Path, route: str | None, **train) -> Any:
    """The few-image recipe around the network's own (its model and data view kept)."""
    from segmentation.training.config import config_from_dict

    recipe = network.get("recipe") or {}
    data = dict(recipe.get("data") or {})
    keep = ("stained_view", "aug_grayscale", "aug_stain", "aug_invert_colour")
    raw = {
        "family": "unet",
        "model": network["members"][0]["config"],
        "data": {
            **{k: data[k] for k in keep if k in data},
            "root": "sample",  # unused: the samples are given to the trainer directly
            "pipeline": "tensor",
            "crop_size": CROP_SIZE,
            "samples_per_epoch": CROPS_PER_EPOCH,
            "workers": 0,
        },
        "train": {
            "epochs": 100000,
            "batch_size": BATCH_SIZE,
            "lr": LEARNING_RATE,
            "warmup_epochs": 0.5,
            "val_every": 1,
            "progress": False,
            "output": str(work),
            "init": str(base),
            "init_route": route,
            **train,
        },
    }
    return config_from_dict(raw)


def finetune(
    images: str | os.PathLike | Sequence[Any],
    masks: str | os.PathLike | Sequence[Any] | None = None,
    model: str | os.PathLike = "default",
    minutes: float = 10.0,
    *,
    output: str | os.PathLike | None = None,
    binary_masks: bool = False,
    seed: int = 0,
    device: str = "auto",
    progress: bool = True,
) -> Any:
    """Adapt a model to a few annotated images (module docstring for the recipe).

    Args:
        images: a folder of images, or a list of images (arrays or paths).
        masks: the folder of their instance masks (``<stem>_labels.tif``, ``<stem>_masks.tif``,
            Cellpose's ``<stem>_seg.npy``, ``<stem>.tif``...;
            :mod:`segmentation.datasets.annotations`), or a list of ``(H, W)`` integer label
            images, one per image.
        model: ``"default"`` (the shipped model) or a U-Net model file.
        minutes: wall-time budget of the training (validation included).
        output: write the model file here (checksummed, with a card naming the base model, the
            images and the minutes); ``None`` returns the model without writing it.
        binary_masks: masks are foreground masks: split each into connected components.
        seed: seed of the crops and augmentation.
        device: ``auto``, ``cpu``, ``cuda``...
        progress: a progress bar with the time left and the best validation score.

    Returns:
        The fine-tuned :class:`~segmentation.inference.SegmentationModel`.

    Raises:
        ValueError / FileNotFoundError: before any training, for every problem with the input
            (see :func:`~segmentation.datasets.annotations.load_annotated_folder`), fewer than
            :data:`MIN_NUCLEI` nuclei in all, or a model file of another family.
    """
    from segmentation.datasets.nuclear_view import view_kind
    from segmentation.inference import SegmentOptions, resolve_device

    if not minutes or minutes <= 0:
        raise ValueError(f"minutes must be above 0, got {minutes!r}")
    samples = _annotated(images, masks, binary_masks)
    nuclei = sum(len(np.unique(s.labels)) - 1 for s in samples)
    if nuclei < MIN_NUCLEI:
        raise ValueError(
            f"{len(samples)} image(s) hold {nuclei} annotated nuclei in all; annotate at least "
            f"{MIN_NUCLEI} (a few images with every nucleus outlined)"
        )
    base_path, ckpt = _base(model)
    kinds = Counter(view_kind(s.image) for s in samples)
    kind = kinds.most_common(1)[0][0]
    route = kind if kind in (ckpt.get("routes") or {}) else None
    network = ckpt["routes"][route] if route else ckpt
    reference = SegmentOptions().reference_diameter
    scaled = [_at_model_scale(s, reference, network.get("size_model") is not None) for s in samples]
    parts = [split_for_validation(s) for s, _ in scaled]
    train, val = [p[0] for p in parts], [p[1] for p in parts]
    val_nuclei = sum(len(np.unique(s.labels)) - 1 for s in val)
    if val_nuclei < MIN_CHOICE_NUCLEI:
        warnings.warn(
            f"the held-out parts of the {len(samples)} image(s) hold {val_nuclei} nuclei: the best "
            "state, and whether the fine-tune beats the base model, are chosen on too few to "
            f"trust (one Huh7 image, 4 held-out nuclei, cost 0.05 on that lab's other images); "
            f"annotate more images for at least {MIN_CHOICE_NUCLEI} held-out nuclei (about "
            f"{5 * MIN_CHOICE_NUCLEI} in all)",
            stacklevel=2,
        )
    with tempfile.TemporaryDirectory(prefix="finetune_") as work:
        device = str(resolve_device(device))
        config = _recipe(
            network, Path(work), base_path, route, max_minutes=minutes, seed=seed, device=device
        )
        best, history = _train(config, train, val, minutes, progress)
        retune = val_nuclei >= MIN_TUNING_NUCLEI
        tuned = _tuned_network(network, best, val, device, retune)
    before = _score(network, val, device)
    # The base weights compete too (with thresholds chosen the same way): a fine-tune that does
    # not beat them on the user's held-out parts is not kept.
    untouched = _tuned_network(network, None, val, device, retune)
    kept = "fine-tuned"
    if untouched["_validation"] > tuned["_validation"]:
        tuned, kept = untouched, "base (fine-tuned weights scored lower on the held-out parts)"
    after = tuned.pop("_validation")
    card = {
        "name": Path(output).stem if output else "finetuned",
        "description": f"{_base_name(base_path)} fine-tuned on {len(samples)} annotated images",
        "finetuned_from": _base_name(base_path),
        "network": route or "main",
        "images": [s.name for s in samples],
        "nuclei": int(nuclei),
        "minutes": float(minutes),
        "epochs": len(history),
        "crops": int(sum(r.get("crops", 0) for r in history)),
        "weights": kept,
        "thresholds": (
            f"tuned on the {val_nuclei} nuclei of the held-out parts"
            if retune
            else f"the base model's ({val_nuclei} nuclei in the held-out parts, fewer than "
            f"{MIN_TUNING_NUCLEI} to tune on)"
        ),
        "rescaled": {s.name: round(f, 4) for (s, f) in scaled if f != 1.0},
        "held_out_parts": {"score_before": round(before, 4), "score_after": round(after, 4)},
        "date": time.strftime("%Y-%m-%d"),
    }
    result = _assemble(ckpt, tuned, route, card)
    if progress:
        print(
            f"held-out parts of the {len(samples)} images: score {before:.4f} before, "
            f"{after:.4f} after fine-tuning"
        )
    from segmentation.inference import SegmentationModel, load_model
    from segmentation.modelfile import atomic_save

    if output is not None:
        return load_model(atomic_save(result, output), device)
    return SegmentationModel.from_checkpoint(result, device)


def _base_name(path: Path) -> str:
    from segmentation.inference.default import default_model_path

    return "the default model" if path == default_model_path() else str(path)


def _train(config: Any, train: list, val: list, minutes: float, progress: bool):
    """Run the trainer; ``(best.pt path, epoch rows)``. Ctrl-C keeps the best state so far."""
    from tqdm.auto import tqdm

    from segmentation.inference import resolve_device
    from segmentation.training.distributed import DistInfo
    from segmentation.training.fit import fit_member

    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    bar = tqdm(total=round(60 * minutes), unit="s", desc="fine-tuning", disable=not progress)

    def tick(row: dict[str, Any]) -> None:
        rows.append(row)
        best = max(r.get("val_score", 0.0) for r in rows)
        bar.n = min(bar.total, round(time.perf_counter() - started))
        bar.set_postfix(epoch=row["epoch"], best=f"{best:.3f}")

    device = resolve_device(config.train.device)
    best = Path(config.train.output) / "member_0" / "best.pt"
    try:
        best, _ = fit_member(
            config, 0, train, val, resume=False, callbacks=[tick], device=device, info=DistInfo()
        )
    except KeyboardInterrupt:
        if not best.is_file():
            raise
        print("interrupted: keeping the best state so far")
    finally:
        bar.close()
    return best, rows


def _score(network: dict[str, Any], val: list, device: str) -> float:
    from segmentation.inference import SegmentationModel
    from segmentation.training.engine import score_raw

    model = SegmentationModel.from_checkpoint(network, device)
    raws = [model.predict_raw(model.prepare(s.image)) for s in val]
    return score_raw(model.family, raws, val, model.thresholds)["score"]


def _tuned_network(
    network: dict[str, Any], best: Path | None, val: list, device: str, retune: bool = True
) -> dict:
    """The network's checkpoint with the best weights (``None``: its own) and thresholds tuned
    on ``val`` (``retune``; else its own); its score on ``val`` under ``"_validation"``."""
    from segmentation.inference import SegmentationModel
    from segmentation.modelfile import read_checkpoint
    from segmentation.training.tuning import tune_model_thresholds

    trained = read_checkpoint(best)["members"][0] if best is not None else {}
    tuned = {**network, "members": [{**network["members"][0], **trained}]}
    if best is not None:  # the trainer's state is whole: no pruned layers
        tuned["members"][0].pop("unused_keys", None)
    if not retune:
        return {**tuned, "_validation": _score(tuned, val, device)}
    model = SegmentationModel.from_checkpoint(tuned, device)
    thresholds, metrics = tune_model_thresholds(model, val)
    return {**tuned, "thresholds": thresholds, "_validation": metrics["score"]}


def _assemble(ckpt: dict, network: dict, route: str | None, card: dict) -> dict[str, Any]:
    """The base checkpoint with the fine-tuned network in place and the fine-tune's card."""
    from segmentation.modelfile import (
        check_model_card,
        drop_unused_weights,
        half_precision,
    )

    clean = {k: v for k, v in network.items() if k not in ("training_state", "model_card")}
    out = {k: v for k, v in ckpt.items() if k not in ("model_card", "training_state")}
    if route:
        out["routes"] = {**ckpt["routes"], route: {**clean, "training_state": None}}
    else:
        out.update({k: v for k, v in clean.items() if k != "routes"})
    out["model_card"] = check_model_card(card)
    return half_precision(drop_unused_weights(out))
