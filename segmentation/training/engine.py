"""One epoch of training, and validation with the real metric."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from segmentation.datasets.sample_type import Sample
from segmentation.training.precision import autocast, uses_channels_last


def _to_device(targets: Any, device: torch.device) -> Any:
    if isinstance(targets, torch.Tensor):
        return targets.to(device, non_blocking=True)
    if isinstance(targets, dict):
        return {k: _to_device(v, device) for k, v in targets.items()}
    if isinstance(targets, list):
        return [_to_device(t, device) for t in targets]
    return targets


def train_one_epoch(
    family: Any,
    model: torch.nn.Module,
    loader: torch.utils.data.DataLoader,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    *,
    device: torch.device,
    amp: bool,
    channels_last: bool,
    grad_clip: float | None,
    progress: bool = False,
    desc: str = "train",
) -> dict[str, float]:
    """Train ``model`` for one pass over ``loader``; the scheduler steps every batch.

    Returns:
        Mean of each named loss over the epoch, plus ``crops`` (images seen), ``seconds``,
        ``crops_per_s`` and ``loader_wait`` (share of the epoch spent waiting for batches; on CUDA
        a lower bound, since the step's kernels run asynchronously).
    """
    model.train()
    sums: dict[str, torch.Tensor] = {}  # summed on the device
    steps = crops = 0
    start = time.perf_counter()
    step_autocast = autocast(device, amp)
    channels_last = uses_channels_last(device, channels_last, amp)
    waited = 0.0
    batches = iter(tqdm(loader, desc=desc, disable=not progress, leave=False))
    while True:
        ready = time.perf_counter()
        try:
            images, targets = next(batches)
        except StopIteration:
            break
        waited += time.perf_counter() - ready
        images = images.to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        targets = _to_device(targets, device)
        with step_autocast:
            losses = family.training_loss(model, images, targets)
        total = losses["total"]
        # on CUDA a per-step check would wait for the GPU every step: check every 32 steps
        if (device.type != "cuda" or steps % 32 == 0) and not torch.isfinite(total):
            raise FloatingPointError(
                f"training loss became {total.item()} at step {steps}; lower train.lr or enable "
                "train.grad_clip"
            )
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        scheduler.step()
        for name, value in losses.items():  # no .item(): the sums never wait for the GPU
            sums[name] = sums.get(name, 0.0) + value.detach().float()
        steps += 1
        crops += images.shape[0]
    out = {name: float(total) / max(steps, 1) for name, total in sums.items()}
    if not np.isfinite(out.get("total", 0.0)):
        raise FloatingPointError(
            f"training loss became {out['total']} during the epoch; lower train.lr or enable "
            "train.grad_clip"
        )
    seconds = time.perf_counter() - start
    out.update(
        crops=crops,
        seconds=seconds,
        crops_per_s=crops / max(seconds, 1e-9),
        loader_wait=waited / max(seconds, 1e-9),
    )
    return out


def predict_validation(predictor: Any, images: list[np.ndarray]) -> list[Any]:
    """Raw outputs of whole validation images (normalised ``(3, H, W)`` float32 each)."""
    return [predictor.predict_raw(chw) for chw in images]


def score_raw(
    family: Any, raws: list[Any], samples: list[Sample], thresholds: Any = None
) -> dict[str, float]:
    """Decode raw outputs and score them against the samples' labels.

    Returns:
        ``score`` (DSB competition score, mean over images), ``f1_0.7`` (pooled F1 at IoU 0.7),
        ``f1_mean`` (F1 averaged over the 10 thresholds, pooled), ``images``.
    """
    from segmentation.evaluation.dataset import evaluate_dataset

    preds = [family.decode(raw, thresholds) for raw in raws]
    result = evaluate_dataset([(s.labels, p) for s, p in zip(samples, preds, strict=True)])
    return {
        "score": float(result.mean_score),
        "f1_0.7": float(result.f1_at(0.7)),
        "f1_mean": float(result.mean_f1),
        "images": len(samples),
    }
