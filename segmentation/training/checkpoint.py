"""The checkpoint format: one self-describing file per trained model (or ensemble).

A model file is a ``torch.save`` dict of plain Python values and tensors (loadable with
``weights_only=True``)::

    format: "segmentation-model", format_version: 1
    family: "unet" | "fpn" | "maskrcnn"
    members: [{"config": model config, "state_dict": weights}, ...]   # ensemble = several
    normalization: {"low": 1.0, "high": 99.8}     # percentile normalisation of inputs
    thresholds: {...}                            # tuned post-processing thresholds
    metrics: {...}                               # reached on its validation split
    recipe: {...}                                # the whole training config
    toolkit_version: "0.1.0"
    training_state: {...} | None                 # optimizer, scheduler, epoch, RNG (last.pt only)

Files are written atomically (a temporary file in the same folder, then ``os.replace``), so a run
killed while saving leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

FORMAT = "segmentation-model"
FORMAT_VERSION = 1


def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` ``obj`` to ``path`` through a temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; a model file is for sharing
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def make_checkpoint(
    *,
    family: str,
    members: list[dict[str, Any]],
    thresholds: dict[str, Any],
    metrics: dict[str, Any],
    recipe: dict[str, Any],
    normalization: dict[str, float] | None = None,
    training_state: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble a checkpoint dict; ``members`` is a list of ``{"config", "state_dict"}``."""
    from segmentation import __version__

    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "family": family,
        "members": [
            {
                "config": dict(m["config"]),
                "state_dict": {k: v.detach().cpu() for k, v in m["state_dict"].items()},
            }
            for m in members
        ],
        "normalization": dict(normalization or {"low": 1.0, "high": 99.8}),
        "thresholds": dict(thresholds),
        "metrics": dict(metrics),
        "recipe": recipe,
        "toolkit_version": __version__,
        "training_state": training_state,
    }


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load and check a checkpoint file; errors name the file and what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file {str(path)!r} not found")
    if path.stat().st_size == 0:
        raise ValueError(f"model file {str(path)!r} is empty; it was not written completely")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for corrupt files
        raise ValueError(f"model file {str(path)!r} is not a readable checkpoint: {err}") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(
            f"{str(path)!r} is not a segmentation model file (expected format {FORMAT!r}); "
            "train one with `segmentation train CONFIG`"
        )
    if ckpt.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(
            f"{str(path)!r} has format version {ckpt['format_version']}, newer than this toolkit "
            f"reads ({FORMAT_VERSION}); upgrade the segmentation package"
        )
    return ckpt
