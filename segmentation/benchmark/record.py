"""The run record: what a benchmark's numbers depend on (config, commit, machine, device, seed,
date, library versions)."""

from __future__ import annotations

import dataclasses
import datetime
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

_REPO = Path(__file__).resolve().parents[2]


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=_REPO, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def machine_summary() -> dict[str, Any]:
    """Processor, core count, memory and OS of this machine."""
    memory = None
    try:
        with open("/proc/meminfo") as fh:
            memory = int(fh.readline().split()[1]) / 2**20
    except (OSError, ValueError, IndexError):
        pass
    cores = os.cpu_count()
    summary = f"{platform.machine()}, {cores} CPU cores"
    if memory:
        summary += f", {memory:.0f} GiB"
    summary += f", {platform.system()} {platform.release()}, Python {platform.python_version()}"
    return {
        "cores": cores,
        "memory_gib": memory,
        "platform": platform.platform(),
        "summary": summary,
    }


def device_summary(device: torch.device) -> str:
    """``"cpu (N threads)"`` or the CUDA device's name."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} torch threads)"


def library_versions() -> dict[str, str]:
    """Versions of the libraries the numbers depend on ("not installed" when absent)."""
    from importlib.metadata import PackageNotFoundError, version

    names = ("segmentation", "torch", "torchvision", "segmentation-models-pytorch", "numpy")
    found = {}
    for name in (*names, "scikit-image"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def run_record(config: Any, device: torch.device) -> dict[str, Any]:
    """The record stored with every benchmark's results.

    Args:
        config: the :class:`~segmentation.benchmark.config.BenchmarkConfig`.
        device: where it runs.
    """
    status = _git("status", "--porcelain", "--untracked-files=no")
    versions = library_versions()
    if any(getattr(a, "peer", None) for a in config.architectures):
        from segmentation.benchmark.peers import peer_versions

        versions.update(peer_versions())
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "git_commit": _git("rev-parse", "HEAD") or "unknown (not a git checkout)",
        "git_dirty": bool(status),
        "machine": machine_summary(),
        "device": device_summary(device),
        "seed": config.seed,
        "config_path": config.source,
        "config": dataclasses.asdict(config),
        "versions": versions,
    }
