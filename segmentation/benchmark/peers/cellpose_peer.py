"""Cellpose as a benchmark peer: Cellpose 3's ``CPnet`` (the residual U-Net with a style vector,
``nbase [2, 32, 64, 128, 256]``) built from scratch (``pretrained_model=False``: nothing is
downloaded), trained by Cellpose's own ``train.train_seg``, its flow and cell-probability
thresholds tuned on the validation split. Cellpose 4 is Cellpose-SAM, a ViT that starts from
published weights, so the extra pins Cellpose 3.

What the benchmark sets: grayscale input (``channels=[0, 0]``, Cellpose's setting for nuclei, from
the families' normalised image), the shared crop size (``bsize``, also its tile size at
inference), batch size, crops per epoch (``nimg_per_epoch``), seed, thread count and device. No
size model is trained, so images are neither rescaled in training (``rescale=False``: random
0.5-1.5x zoom instead) nor at inference (the test split's nucleus sizes are not given to it).

The wall-clock budget: ``train_seg`` takes a number of epochs and no callback, and its learning-rate
schedule depends on that number (warm-up over 10 epochs, halvings over the last 50 or 100). So the
adapter (1) computes the flows of the training labels with Cellpose's ``labels_to_flows``, inside
the budget; (2) measures one epoch with a throw-away copy of the network (learning rate 0 in
Cellpose's first warm-up epoch) to split a call's cost into set-up and per-epoch time; (3) calls
``train_seg`` for as many epochs as the rest of the budget holds; (4) stops it at the deadline if
the estimate was short (a forward pre-hook raises, and the weights of the last finished step are
kept). The actual wall time is recorded.

Imported only by :func:`segmentation.benchmark.peers.load_peer`: importing it imports Cellpose.
"""

from __future__ import annotations

import copy
import inspect
import logging
import math
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import torch
from cellpose import dynamics, models
from cellpose import train as cellpose_train

from segmentation.benchmark.peers.common import (
    Deadline,
    DeadlineReached,
    PeerBudget,
    epochs_for,
    peer_inputs,
)
from segmentation.datasets.sample_type import Sample

#: Cellpose's input channels for one grayscale channel (nuclei).
CHANNELS = [0, 0]
#: The coordinate search of the thresholds (Cellpose's defaults 0.4 and 0.0 first).
FLOW_THRESHOLDS = (0.4, 0.2, 0.3, 0.5, 0.6, 0.8)
CELLPROB_THRESHOLDS = (0.0, -3.0, -2.0, -1.0, -0.5, 0.5, 1.0, 2.0)
#: ``train_seg`` arguments the adapter sets itself (the budget and the run folder).
_SET_BY_BENCHMARK = {"net", "train_data", "train_labels", "n_epochs", "save_path", "model_name"}
#: Cellpose's defaults for the masks (``CellposeModel.eval`` at scale 1).
NITER = 200
MIN_SIZE = 15


class StepCounter:
    """Forward pre-hook on the network: counts training steps and crops, and raises
    :class:`DeadlineReached` before a training step once ``deadline`` has passed (never before
    the first step: like the families' trainer, which checks its budget after each epoch, a
    run always trains)."""

    def __init__(self, deadline: Deadline | None = None):
        self.deadline = deadline
        self.steps = 0
        self.crops = 0
        self.times: list[float] = []

    def __call__(self, module: torch.nn.Module, args: tuple) -> None:
        if not module.training:
            return
        if self.steps and self.deadline is not None and self.deadline.passed():
            raise DeadlineReached
        self.steps += 1
        self.crops += int(args[0].shape[0])
        self.times.append(time.perf_counter())


def _train_seg(net: torch.nn.Module, data: list, flows: list, budget: PeerBudget, **kwargs) -> Any:
    """``train_seg`` with the benchmark's data, crops and batches (``kwargs`` may override)."""
    settings = {
        "train_data": data,
        "train_labels": flows,
        "channels": CHANNELS,
        "batch_size": budget.batch_size,
        "nimg_per_epoch": budget.samples_per_epoch,
        "rescale": False,
        "bsize": budget.crop_size,
        **kwargs,
    }
    return cellpose_train.train_seg(net, **settings)


class TrainedCellpose:
    """A trained Cellpose model with its thresholds (see :class:`~.common.TrainedPeer`)."""

    def __init__(self, model: models.CellposeModel, facts: dict[str, Any], bsize: int):
        self.model = model
        self.facts = facts
        self.bsize = bsize
        self.parameters = int(sum(p.numel() for p in model.net.parameters()))
        self.thresholds = {"flow_threshold": 0.4, "cellprob_threshold": 0.0}

    def network(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cellpose's network on one ``(H, W, 3)`` float32 image at scale 1 (its own
        normalisation and tiling): flows ``(2, H, W)`` and cell-probability logits ``(H, W)``."""
        _, flows, _ = self.model.eval(
            image,
            channels=CHANNELS,
            diameter=float(self.model.diam_mean),  # scale 1: no size model
            bsize=self.bsize,
            compute_masks=False,
        )
        return flows[1], flows[2]

    def masks(self, dp: np.ndarray, cellprob: np.ndarray, **thresholds: float) -> np.ndarray:
        """Cellpose's flow dynamics and mask clean-up on network outputs (as ``eval`` does)."""
        settings = {**self.thresholds, **thresholds}
        labels = dynamics.resize_and_compute_masks(
            dp, cellprob, niter=NITER, min_size=MIN_SIZE, device=self.model.device, **settings
        )
        return np.asarray(labels, dtype=np.int32)

    def tune(self, images: list[np.ndarray], labels: list[np.ndarray]) -> dict[str, float]:
        """Coordinate search of ``cellprob_threshold`` then ``flow_threshold`` (then the first
        again) maximising the mean competition score on the validation images; the network runs
        once per image."""
        from segmentation.evaluation.matching import dsb_score

        outputs = [self.network(x) for x in images]

        def score(**thresholds: float) -> float:
            return float(
                np.mean(
                    [
                        dsb_score(y, self.masks(*o, **thresholds))
                        for y, o in zip(labels, outputs, strict=True)
                    ]
                )
            )

        best = dict(self.thresholds)
        best_score = score(**best)
        for key, grid in (
            ("cellprob_threshold", CELLPROB_THRESHOLDS),
            ("flow_threshold", FLOW_THRESHOLDS),
            ("cellprob_threshold", CELLPROB_THRESHOLDS),
        ):
            for value in grid:
                if value == best[key]:
                    continue
                trial = {**best, key: value}
                got = score(**trial)
                if got > best_score:
                    best, best_score = trial, got
        self.thresholds = best
        return dict(best)

    def predict(self, image: np.ndarray) -> tuple[np.ndarray, float, float]:
        """The network, then the flow dynamics (on the CPU here), timed apart.
        ``image``: ``(H, W, 3)`` float32; returns ``(H, W)`` int32 labels and the two times."""
        started = time.perf_counter()
        dp, cellprob = self.network(image)
        network = time.perf_counter()
        labels = self.masks(dp, cellprob)
        return labels, network - started, time.perf_counter() - network

    def oracle(self, labels: np.ndarray) -> np.ndarray:
        """The masks Cellpose's dynamics make from perfect outputs: its training flows
        (``labels_to_flows``, times 5 as the network learns them) and a confident cell
        probability (logit +-10)."""
        flows = dynamics.labels_to_flows([labels.astype(np.int32)], device=self.model.device)[0]
        cellprob = np.where(labels > 0, 10.0, -10.0).astype(np.float32)
        return self.masks(5.0 * flows[2:4], cellprob, flow_threshold=0.4, cellprob_threshold=0.0)


def train(
    train_samples: list[Sample],
    val_samples: list[Sample],
    budget: PeerBudget,
    output: Path,
    options: dict[str, Any] | None = None,
) -> TrainedCellpose:
    """Build Cellpose's network from scratch and train it with ``train_seg`` under ``budget``.

    Args:
        train_samples: the benchmark's training images (Cellpose leaves out those with fewer
            than 5 nuclei, its ``min_train_masks``).
        val_samples: unused in training (thresholds are tuned later by :meth:`tune`).
        budget: the shared budget (wall minutes, epochs, crops, threads, seed).
        output: run folder; the weights are saved as ``output/models/cellpose``.
        options: ``train_seg`` keywords that replace its defaults (e.g. ``{"learning_rate":
            0.01}``).

    Returns:
        The trained model with its training facts.
    """
    options = dict(options or {})
    allowed = set(inspect.signature(cellpose_train.train_seg).parameters) - _SET_BY_BENCHMARK
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(
            f"cellpose: train_seg option(s) {unknown} unknown or set by the benchmark; valid: "
            f"{sorted(allowed)}"
        )
    logging.getLogger("cellpose").setLevel(logging.WARNING)
    torch.manual_seed(budget.seed)  # the network's initial weights; train_seg seeds its crops
    device = torch.device(budget.device)
    model = models.CellposeModel(
        gpu=device.type == "cuda", pretrained_model=False, model_type=None, device=device
    )
    data = peer_inputs(train_samples, budget.stained_view)
    deadline = Deadline(None if budget.minutes is None else 60 * budget.minutes)
    flows = dynamics.labels_to_flows(
        [s.labels.astype(np.int32) for s in train_samples], device=device
    )
    flow_seconds = deadline.elapsed()
    output.mkdir(parents=True, exist_ok=True)
    epochs, epoch_s, setup_s = budget.max_epochs, None, None
    if budget.minutes is not None:
        probe_net = copy.deepcopy(model.net)
        probe = StepCounter()
        handle = probe_net.register_forward_pre_hook(probe)
        with tempfile.TemporaryDirectory() as scratch:
            started = time.perf_counter()
            _train_seg(probe_net, data, flows, budget, n_epochs=1, save_path=scratch, **options)
            probe_s = time.perf_counter() - started
        handle.remove()
        del probe_net
        epochs, epoch_s, setup_s = epochs_for(deadline.left(), probe_s, probe.times, epochs)
    counter = StepCounter(deadline)
    handle = model.net.register_forward_pre_hook(counter)
    stopped = False
    try:
        _train_seg(
            model.net, data, flows, budget, n_epochs=epochs, save_path=str(output),
            model_name="cellpose", **options,
        )  # fmt: skip
    except DeadlineReached:
        stopped = True
        (output / "models").mkdir(exist_ok=True)
        model.net.save_model(str(output / "models" / "cellpose"))
    finally:
        handle.remove()
    model.net.eval()
    facts = {
        "source": f"trained by cellpose {version('cellpose')} (train_seg from scratch, "
        + (f"{epochs} epochs" if epoch_s is None else f"{epochs} epochs from a one-epoch probe")
        + ")",
        "train_seconds": deadline.elapsed(),
        "train_crops": counter.crops,
        "train_epochs": round(
            counter.steps / math.ceil(budget.samples_per_epoch / budget.batch_size), 2
        ),
        "stopped_at_deadline": stopped,
        "threads": torch.get_num_threads(),
        "flow_seconds": flow_seconds,
        "planned_epochs": epochs,
        "probe_epoch_seconds": epoch_s,
        "probe_setup_seconds": setup_s,
    }
    return TrainedCellpose(model, facts, budget.crop_size)
