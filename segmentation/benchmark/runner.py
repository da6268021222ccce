"""``run_benchmark``: train (or load) every architecture under one budget, tune each on the
validation split, segment the test split, and measure accuracy, speed and memory. Peers (StarDist,
Cellpose) are trained and tuned by :mod:`segmentation.benchmark.peers`, then timed and scored here
like every other row."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from segmentation.benchmark.config import Architecture, BenchmarkConfig, slug
from segmentation.benchmark.measure import (
    count_parameters,
    peak_cpu_mb,
    peak_gpu_mb,
    reset_peaks,
    training_cost,
)
from segmentation.datasets.image_types import IMAGE_TYPES, image_type
from segmentation.datasets.sample_type import Sample
from segmentation.evaluation.dataset import DatasetResult, evaluate_dataset

#: IoU thresholds whose F1 the table reports.
F1_THRESHOLDS = (0.5, 0.7, 0.9)


@dataclass
class Split:
    """The images of a benchmark: ``train``, ``val`` (threshold tuning) and ``test``."""

    train: list[Sample]
    val: list[Sample]
    test: list[Sample]
    description: str


@dataclass
class ArchitectureResult:
    """One architecture's row: ``metrics`` (flat, JSON-ready), the test ``result`` (for curves)
    and the predicted labels of the example images (``{name: (H, W) int32}``)."""

    name: str
    metrics: dict[str, Any]
    result: DatasetResult
    examples: dict[str, np.ndarray] = field(default_factory=dict)


def make_split(config: BenchmarkConfig) -> Split:
    """Load the data named by ``config.data`` and cut it into train/val/test (or read the test
    set given by path)."""
    from segmentation.training.data import load_samples, split_three

    data = config.data_config()
    if data.root not in ("sample", "synthetic") and not Path(data.root).exists():
        raise FileNotFoundError(
            f"data.root {data.root!r} not found (from {Path.cwd()}); pack the data first "
            "(segmentation pack ../shared/data/dsb2018/stage1_train --output "
            "cache/stage1_train.npz) or override it: data.root=PATH"
        )
    samples = load_samples(data)
    train, val, test = split_three(samples, data)
    where = f"{data.root} (split_seed {data.split_seed}, stratified by image type)"
    if config.test is not None:
        from segmentation.benchmark.testset import load_test_set

        test = load_test_set(config.test.images, config.test.labels)
        where += f"; test set {config.test.images} with labels {config.test.labels}"
    if not test:
        raise ValueError("the test split is empty; raise data.test_fraction or give a test set")
    text = f"{len(train)} train / {len(val)} validation / {len(test)} test images of {where}"
    return Split(train, val, test, text)


def training_config(arch: Architecture, config: BenchmarkConfig, output: Path):
    """The recipe of ``arch`` with the shared data/train sections, the seed, the device and the
    per-architecture budget (an ensemble of k members gets 1/k of it per member)."""
    from segmentation.training.config import apply_overrides, config_from_dict, resolve_data_path

    raw = yaml.safe_load(Path(arch.recipe).read_text()) or {}
    raw["data"] = {**(raw.get("data") or {}), **config.data}
    raw["train"] = {
        **(raw.get("train") or {}),
        **config.train,
        "seed": config.seed,
        "device": config.device,
        "output": str(output),
        "tune_thresholds": False,  # the benchmark tunes every architecture the same way
    }
    recipe = config_from_dict(apply_overrides(raw, arch.overrides))
    members = len(recipe.members())
    if members > 1:
        recipe.train.epochs = max(1, math.floor(recipe.train.epochs / members))
        if recipe.train.max_minutes is not None:
            recipe.train.max_minutes /= members
    return resolve_data_path(recipe, Path(arch.recipe).parent)


def _obtain_model(arch: Architecture, config: BenchmarkConfig, device: torch.device):
    """Train ``arch`` (or load its checkpoint); returns the model and its training facts."""
    from segmentation.inference import load_model

    facts: dict[str, Any] = {}
    if arch.checkpoint is not None:
        path = Path(arch.checkpoint)
        facts["source"] = f"checkpoint {path}"
    else:
        from segmentation.training.fit import fit

        recipe = training_config(arch, config, Path(config.output) / "runs" / slug(arch.name))
        started = time.perf_counter()
        path = fit(recipe, overwrite=True)  # a benchmark run trains every architecture afresh
        facts["source"] = f"trained from {arch.recipe}"
        facts["train_wall_seconds"] = time.perf_counter() - started
    facts.update(training_cost(path))
    model = load_model(path, device)
    spent = model.model_card.get("training") or {}
    if "train_seconds" not in facts and "seconds" in spent:  # a shipped model's card
        facts.update(
            train_seconds=spent["seconds"],
            train_crops=spent.get("crops"),
            train_epochs=spent.get("epochs"),
        )
    return model, facts


def _tune(model: Any, val: list[Sample]) -> dict[str, Any]:
    """Tune the model's thresholds on the validation split (in place); returns them."""
    from segmentation.datasets.nuclear_view import recipe_stained_view
    from segmentation.models.base import thresholds_from_dict
    from segmentation.training.data import prepared_images
    from segmentation.training.engine import predict_validation
    from segmentation.training.tuning import tune_thresholds

    family = model.family
    if not family.threshold_grid():
        return model.thresholds_dict()
    raws = predict_validation(model, prepared_images(val, recipe_stained_view(model.recipe)))
    tuned, _ = tune_thresholds(family, raws, val)
    model.thresholds = thresholds_from_dict(family.Thresholds, tuned)
    return tuned


def _oracle(family_name: str, test: list[Sample], cache: dict[str, float]) -> float:
    """Mean oracle score of a family's decoding on the test images (cached per family)."""
    if family_name not in cache:
        from segmentation.evaluation.oracles import oracle_score

        cache[family_name] = float(np.mean([oracle_score(s.labels, family_name) for s in test]))
    return cache[family_name]


def _segment_test(
    predict: Any, test: list[Sample], device: torch.device
) -> tuple[list[np.ndarray], dict[str, float]]:
    """Segment every test image; time the network and the post-processing apart.

    ``predict(image) -> (labels, network_seconds, post_seconds)``.
    """
    reset_peaks(device)
    preds, network, post = [], 0.0, 0.0
    for sample in test:
        labels, net_s, post_s = predict(sample.image)
        preds.append(labels)
        network += net_s
        post += post_s
    megapixels = sum(s.image.shape[0] * s.image.shape[1] for s in test) / 1e6
    n = len(test)
    timing = {
        "network_ms_per_image": 1000 * network / n,
        "post_ms_per_image": 1000 * post / n,
        "total_ms_per_image": 1000 * (network + post) / n,
        "network_mpx_per_s": megapixels / network if network > 0 else None,
        "post_mpx_per_s": megapixels / post if post > 0 else None,
        "total_mpx_per_s": megapixels / (network + post),
        "peak_cpu_mb": peak_cpu_mb(),
        "peak_gpu_mb": peak_gpu_mb(device),
    }
    return preds, timing


def _network_predictor(model: Any):
    from segmentation.inference import segment

    def predict(image: np.ndarray) -> tuple[np.ndarray, float, float]:
        labels, details = segment(image, model, return_details=True)
        timings = details.timings
        return labels, timings["network"], timings["decode"]

    return predict


def _baseline_predictor(name: str):
    from segmentation.baselines import otsu_watershed

    methods = {"otsu": otsu_watershed}

    def predict(image: np.ndarray) -> tuple[np.ndarray, float, float]:
        started = time.perf_counter()
        labels = methods[name](image)
        return labels, 0.0, time.perf_counter() - started

    return predict


def score_rows(result: DatasetResult, test: list[Sample]) -> dict[str, Any]:
    """Accuracy columns of a test result: competition score, F1 at :data:`F1_THRESHOLDS`,
    precision/recall at 0.7 (pooled counts) and the score per image type."""
    at = result.at(0.7)
    row: dict[str, Any] = {"score": result.mean_score}
    row.update({f"f1_{t}": result.f1_at(t) for t in F1_THRESHOLDS})
    row.update({"precision_0.7": at.precision, "recall_0.7": at.recall})
    kinds = np.array([image_type(s.image) for s in test])
    per_image = np.array([r.mean_score for r in result.images])
    for kind in IMAGE_TYPES:
        chosen = kinds == kind
        row[f"score_{kind}"] = float(per_image[chosen].mean()) if chosen.any() else None
        row[f"images_{kind}"] = int(chosen.sum())
    return row


def example_names(test: list[Sample], count: int) -> list[str]:
    """Up to ``count`` test images for the example grid: one per image type in turn (the
    largest nucleus count first within a type), so every type shows up when it can."""
    by_kind: dict[str, list[Sample]] = {k: [] for k in IMAGE_TYPES}
    for sample in test:
        by_kind[image_type(sample.image)].append(sample)
    for group in by_kind.values():
        group.sort(key=lambda s: (-int(s.labels.max()), s.name))
    chosen: list[str] = []
    while len(chosen) < min(count, len(test)):
        for group in by_kind.values():
            if group and len(chosen) < count:
                chosen.append(group.pop(0).name)
    return chosen


def run_architecture(
    arch: Architecture,
    config: BenchmarkConfig,
    split: Split,
    device: torch.device,
    oracle_cache: dict[str, float],
    examples: list[str],
) -> ArchitectureResult:
    """Obtain, tune and test one architecture; returns its row."""
    metrics: dict[str, Any] = {"name": arch.name, "note": arch.note}
    if arch.baseline is not None:
        predict = _baseline_predictor(arch.baseline)
        metrics.update(family=arch.baseline, source="classical", parameters=0, oracle=None)
        metrics["thresholds"] = {}
    elif arch.peer is not None:
        from segmentation.benchmark.peers.run import run_peer

        predict, facts = run_peer(arch, config, split)
        metrics.update(facts)
    else:
        model, facts = _obtain_model(arch, config, device)
        params = count_parameters(model.members, model.family.dense)
        metrics.update(family=model.family.name, parameters=params)
        metrics.update(facts, members=len(model.members))
        metrics["thresholds"] = _tune(model, split.val)
        metrics["oracle"] = _oracle(model.family.name, split.test, oracle_cache)
        predict = _network_predictor(model)
    preds, timing = _segment_test(predict, split.test, device)
    pairs = [(s.labels, p) for s, p in zip(split.test, preds, strict=True)]
    result = evaluate_dataset(pairs, names=[s.name for s in split.test])
    metrics.update(score_rows(result, split.test))
    metrics.update(timing)
    shown = {s.name: p for s, p in zip(split.test, preds, strict=True) if s.name in examples}
    print(
        f"{arch.name}: score {metrics['score']:.4f}, F1@0.7 {metrics['f1_0.7']:.4f}, "
        f"{metrics['total_ms_per_image']:.0f} ms/image",
        flush=True,
    )
    return ArchitectureResult(arch.name, metrics, result, shown)


def run_benchmark(config: BenchmarkConfig) -> Path:
    """Run every architecture of ``config`` and write the tables, plots and run record.

    Returns:
        The output folder, holding ``results.md``, ``results.csv``, ``results.json``,
        ``threshold_curves.png``, ``speed_accuracy.png``, ``examples.png`` and ``runs/<name>/``
        (each trained architecture's run folder).
    """
    from segmentation.benchmark.plots import plot_examples, plot_speed_accuracy
    from segmentation.benchmark.record import run_record
    from segmentation.benchmark.tables import write_tables
    from segmentation.evaluation.report import plot_threshold_curves
    from segmentation.inference import resolve_device
    from segmentation.training.optim import seed_everything

    for arch in config.architectures:  # a missing peer fails now, not after hours of training
        if arch.peer is not None:
            from segmentation.benchmark.peers import require_peer

            require_peer(arch.peer)
    out = Path(config.output)
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(config.device)
    record = run_record(config, device)
    split = make_split(config)
    print(f"benchmark: {split.description}", flush=True)
    examples = example_names(split.test, config.examples)
    oracle_cache: dict[str, float] = {}
    results = []
    for arch in config.architectures:
        seed_everything(config.seed)
        results.append(run_architecture(arch, config, split, device, oracle_cache, examples))
    record["split"] = split.description
    write_tables(results, record, out)
    plot_threshold_curves({r.name: r.result for r in results}, out / "threshold_curves.png")
    plot_speed_accuracy([r.metrics for r in results], out / "speed_accuracy.png")
    by_name = {s.name: s for s in split.test}
    plot_examples([by_name[n] for n in examples], results, out / "examples.png")
    print(f"wrote {out}/results.md (and .csv, .json, plots)", flush=True)
    return out
