"""Writing model files: checksums stamped, then an atomic rename (a run killed while saving leaves
the previous file intact)."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import torch

from segmentation.modelfile import checksum
from segmentation.modelfile.card import check_model_card
from segmentation.modelfile.format import FORMAT


def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` ``obj`` to ``path`` through a temporary file and an atomic rename.

    A model checkpoint (a dict with ``format: "segmentation-model"``) is written with the
    checksums of its weights, settings and training state, its routes' too
    (:func:`.checksum.checksums`, recomputed from what is written), and its ``model_card`` as a
    plain dict; ``obj`` itself is not modified.
    """
    path = Path(path)
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        obj = _with_checksums(obj)  # its routes' too
        if isinstance(obj.get("model_card"), dict):  # e.g. a ModelCard: loadable as plain data
            obj["model_card"] = check_model_card(obj["model_card"])
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


def _with_checksums(ckpt: dict[str, Any]) -> dict[str, Any]:
    """``ckpt`` with fresh checksums (stale ones, e.g. of a dropped training state, removed)."""
    out = {k: v for k, v in ckpt.items() if k not in checksum.KEYS}
    out.update(checksum.checksums(ckpt))
    if out.get("routes"):
        out["routes"] = {k: _with_checksums(r) for k, r in out["routes"].items()}
    return out


def orphaned_temporary_files(folder: str | Path, names: tuple[str, ...]) -> list[Path]:
    """Temporary files that :func:`atomic_save` left in ``folder`` when killed while writing one
    of ``names`` (``.<name>.<random>.tmp``), sorted; other files are never listed."""
    pattern = re.compile(r"\.(" + "|".join(re.escape(n) for n in names) + r")\.[A-Za-z0-9_]+\.tmp")
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and pattern.fullmatch(p.name))
