"""What makes two runs of a large job the same job: the settings fingerprint kept in ``job.json``.

A restarted job reuses the finished blocks only when its fingerprint equals the saved one; any
difference (another image, model, block size, halo, option) is an error that names the keys that
differ, since mixing blocks of two settings would give a wrong result silently.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Any

from segmentation.large.source import ImageSource


def model_identity(model: Any) -> dict[str, Any]:
    """A JSON-able identity of a model: a file's path, size and time, or a loaded model's hash.

    Args:
        model: ``None`` (the default model), a model file path, or a loaded
            :class:`~segmentation.inference.SegmentationModel`.
    """
    from segmentation.inference import SegmentationModel, default_model_path

    if model is None or isinstance(model, str | os.PathLike):
        path = default_model_path() if model is None else os.path.abspath(model)
        stat = os.stat(path)
        return {"file": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    if not isinstance(model, SegmentationModel):
        raise TypeError(
            f"model must be None, a model file path or a SegmentationModel, got "
            f"{type(model).__name__}"
        )
    digest = hashlib.sha1()
    for member in model.members:
        for name, tensor in sorted(member.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return {
        "family": model.family.name,
        "weights_sha1": digest.hexdigest(),
        "thresholds": model.thresholds_dict(),
        "normalization": model.normalization,
    }


def _plain(value: Any) -> Any:
    """JSON round trip (tuples become lists, unknown objects their repr)."""
    return json.loads(json.dumps(value, default=repr, sort_keys=True))


def fingerprint(source: ImageSource, model: Any, **settings: Any) -> dict[str, Any]:
    """The job's fingerprint: the source, the model's identity and the settings.

    Args:
        source: the image.
        model: as for :func:`model_identity`.
        settings: the job's other settings (block size, halo, tile size, options...); a
            :class:`~segmentation.inference.SegmentOptions` is stored without ``progress``.

    Returns:
        A JSON-able dict.
    """
    out: dict[str, Any] = {
        "source": {
            k: getattr(source, k)
            for k in ("path", "component", "axes", "shape", "dtype", "level", "series")
        },
        "model": model_identity(model),
    }
    for key, value in settings.items():
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = {k: v for k, v in dataclasses.asdict(value).items() if k != "progress"}
        out[key] = value
    return _plain(out)


def differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Top-level keys whose values differ between two fingerprints."""
    return sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
