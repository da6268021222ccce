"""What a training step needs besides the network: the optimizer and learning-rate schedule a
recipe names, and the random state (Python, NumPy, torch) seeded at the start and saved in
``last.pt`` so that ``--resume`` continues bit for bit."""

from __future__ import annotations

import ast
import math
import random
import time
from typing import Any

import numpy as np
import torch

from segmentation.training.config import Config


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (global RNG that libraries use)
    torch.manual_seed(seed)


def build_optimizer(model: torch.nn.Module, config: Config) -> torch.optim.Optimizer:
    """AdamW or SGD (with momentum) over the model's parameters, as the recipe says."""
    t = config.train
    if t.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(), lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay
        )
    return torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: Config, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step schedule: linear warm-up, then cosine to 0, step decay, or constant.

    With ``train.max_minutes`` set, the cosine's progress is the larger of the step fraction and
    the fraction of the wall-time budget spent, so a run cut by its budget still ends at a low
    learning rate (the price: a resumed time-budgeted run does not replay the same rates).
    """
    t = config.train
    total = max(1, t.epochs * steps_per_epoch)
    warmup = int(round(t.warmup_epochs * steps_per_epoch))
    started = time.perf_counter()

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if t.schedule == "cosine":
            progress = min(1.0, (step - warmup) / max(1, total - warmup))
            if t.max_minutes:
                elapsed = (time.perf_counter() - started) / (60 * t.max_minutes)
                progress = min(1.0, max(progress, elapsed))
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        if t.schedule == "step":
            return t.step_gamma ** (step // max(1, t.step_epochs * steps_per_epoch))
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def numpy_state() -> tuple:
    """NumPy's global random state as plain values (name, keys, position, gauss state)."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()  # noqa: NPY002
    return (name, [int(k) for k in keys], int(pos), int(has_gauss), float(gauss))


def rng_state() -> dict[str, Any]:
    """The Python, NumPy and torch CPU random states as plain values (for a checkpoint)."""
    return {
        "torch": torch.get_rng_state(),
        "numpy": repr(numpy_state()),
        "python": repr(random.getstate()),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the random states saved by :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, gauss = ast.literal_eval(state["numpy"])
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))  # noqa: NPY002
    random.setstate(ast.literal_eval(state["python"]))
