"""A peer's row of the benchmark: its budget from the benchmark file, training by its own code,
threshold tuning on the validation split, and the predictor the runner times on the test split."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from segmentation.benchmark.peers.common import PeerBudget, peer_input, peer_inputs

Predictor = Callable[[np.ndarray], tuple[np.ndarray, float, float]]


def peer_budget(config: Any) -> PeerBudget:
    """The shared budget of a :class:`~segmentation.benchmark.config.BenchmarkConfig` as a peer
    takes it: ``train.max_minutes``, ``train.epochs``, ``train.batch_size``, ``data.crop_size``,
    ``data.samples_per_epoch``, ``data.stained_view``, the seed, the device and torch's thread
    count (``OMP_NUM_THREADS``)."""
    from segmentation.inference import resolve_device
    from segmentation.training.config import TrainConfig, parse_section

    train = parse_section(TrainConfig, config.train, "train")
    data = config.data_config()
    return PeerBudget(
        minutes=train.max_minutes,
        max_epochs=train.epochs,
        crop_size=data.crop_size,
        batch_size=train.batch_size,
        samples_per_epoch=data.samples_per_epoch,
        threads=torch.get_num_threads(),
        seed=config.seed,
        device=str(resolve_device(config.device)),
        stained_view=data.stained_view,
    )


def peer_options(overrides: list[str]) -> dict[str, Any]:
    """``key=value`` strings (values in YAML: ``grid=[2, 2]``, ``learning_rate=0.01``) as the
    keywords a peer's own config takes.

    Raises:
        ValueError: an entry without ``=`` or with an empty key.
    """
    options = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"peer option {item!r}: expected key=value, e.g. grid=[2, 2]")
        options[key.strip()] = yaml.safe_load(value)
    return options


def run_peer(arch: Any, config: Any, split: Any) -> tuple[Predictor, dict[str, Any]]:
    """Train peer ``arch.peer`` on ``split.train`` under the benchmark's budget, tune it on
    ``split.val`` and return its predictor (raw test image -> labels, network and post-processing
    seconds, the input's normalisation counted as network time) and its metrics.

    The run folder is ``<output>/runs/<slug of the name>``.
    """
    from segmentation.benchmark.config import slug
    from segmentation.benchmark.peers import load_peer
    from segmentation.evaluation.matching import dsb_score

    adapter = load_peer(arch.peer)
    budget = peer_budget(config)
    output = Path(config.output) / "runs" / slug(arch.name)
    started = time.perf_counter()
    trained = adapter.train(split.train, split.val, budget, output, peer_options(arch.overrides))
    metrics: dict[str, Any] = {"family": arch.peer, "members": 1}
    metrics.update(trained.facts, parameters=trained.parameters)
    metrics["train_wall_seconds"] = time.perf_counter() - started
    val = peer_inputs(split.val, budget.stained_view)
    metrics["thresholds"] = trained.tune(val, [s.labels for s in split.val])
    metrics["oracle"] = float(
        np.mean([dsb_score(s.labels, trained.oracle(s.labels)) for s in split.test])
    )

    def predict(image: np.ndarray) -> tuple[np.ndarray, float, float]:
        prepared = time.perf_counter()
        x = peer_input(image, budget.stained_view)
        prepared = time.perf_counter() - prepared
        labels, network, post = trained.predict(x)
        return labels, prepared + network, post

    return predict, metrics
