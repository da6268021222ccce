"""What the benchmark measures besides accuracy: memory peaks, parameters, training cost."""

from __future__ import annotations

import csv
import resource
import sys
from pathlib import Path
from typing import Any

import torch

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def reset_peaks(device: torch.device) -> bool:
    """Reset the peak-memory counters: the process's resident-set high-water mark (Linux:
    ``/proc/self/clear_refs``) and CUDA's allocator peak on ``device``.

    Returns:
        Whether the CPU peak could be reset (else :func:`peak_cpu_mb` reports the process's
        lifetime peak).
    """
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    try:
        _CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def peak_cpu_mb() -> float:
    """Peak resident memory of this process in MiB since the last :func:`reset_peaks`."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def peak_gpu_mb(device: torch.device) -> float | None:
    """Peak CUDA memory allocated on ``device`` in MiB since the last reset; None on a CPU."""
    if device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 2**20


def count_parameters(members: list[torch.nn.Module], dense: bool = True) -> int:
    """Parameters of all ensemble members together that inference uses.

    segmentation-models-pytorch keeps every encoder stage even when ``encoder_depth`` runs fewer;
    for dense networks the modules that a forward pass on a small input never calls are left out
    of the count. Mask R-CNN (``dense=False``) counts every parameter.
    """
    total = 0
    for net in members:
        if not dense:
            total += sum(p.numel() for p in net.parameters())
            continue
        from segmentation.models.dense import modules_run

        _, called = modules_run(
            net, torch.zeros(1, 3, 64, 64, device=next(net.parameters()).device)
        )
        total += sum(p.numel() for k, p in net.named_parameters() if k.rpartition(".")[0] in called)
    return total


def training_cost(model_file: str | Path) -> dict[str, Any]:
    """Training time and crops of a model file's run, from ``member_*/metrics.csv`` next to it.

    Returns:
        ``{"train_seconds", "train_crops", "train_epochs"}`` summed over the members (seconds are
        the epochs' training time, without validation), or ``{}`` when no log is found.
    """
    folder = Path(model_file).parent
    logs = sorted(folder.glob("member_*/metrics.csv"))
    if not logs:
        return {}
    seconds = crops = epochs = 0.0
    for log in logs:
        with log.open(newline="") as fh:
            for row in csv.DictReader(fh):
                seconds += float(row.get("seconds") or 0)
                crops += float(row.get("crops") or 0)
                epochs += 1
    return {"train_seconds": seconds, "train_crops": int(crops), "train_epochs": int(epochs)}
