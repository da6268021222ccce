"""The default model that ships inside the package: :func:`load_default_model`.

``segment(image)`` with no ``model`` uses it. The file is ``segmentation/weights/default_unet.pt``
(compact U-Nets stored in float16, see ``configs/default_unet.yaml``: a main network, and a network
of its own for stained tissue that sees the haematoxylin density, ``model.routes["stained"]``,
picked per image by :meth:`~.model.SegmentationModel.for_image`); its model card (recipe,
data, validation scores against the Otsu baseline, how to retrain) is
``load_default_model().model_card``: ``print()`` it for a short summary, index it as a dict for
everything (e.g. ``["split"]["validation_ids"]``). Loading it reads only that file, whose weights
checksum is verified: no network access.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import torch

from segmentation.inference.model import SegmentationModel, load_model, resolve_device

#: File name of the shipped model inside ``segmentation/weights/``.
DEFAULT_MODEL_FILE = "default_unet.pt"

_CACHE: dict[tuple[str, str, int, int], SegmentationModel] = {}
_LOCK = threading.Lock()


def default_model_path() -> Path:
    """Path of the shipped model file, ``<package>/weights/default_unet.pt`` (may be missing)."""
    return Path(__file__).resolve().parents[1] / "weights" / DEFAULT_MODEL_FILE


def load_default_model(device: str | torch.device = "auto") -> SegmentationModel:
    """Load the model that ships with the package (cached: one load per device and file version).

    Args:
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda:N"``.

    Returns:
        A :class:`SegmentationModel` (shared between calls with the same device: changing its
        thresholds or moving it changes it for later ``segment(image)`` calls too; a model moved
        to another device is reloaded on the next call). Its ``model_card`` describes it.

    Raises:
        FileNotFoundError: the file is missing (a broken install).
        ValueError: the file is not a readable model file.
    """
    path = default_model_path()
    if not path.is_file():
        raise FileNotFoundError(
            f"the default model file {path} is missing; reinstall the package "
            "(pip install -e . from the repository, or pip install segmentation), or write it with "
            "`python scripts/ship_default_model.py runs/default_unet/model.pt`; or pass "
            "model='path/to/model.pt'"
        )
    target = resolve_device(device)
    stat = path.stat()
    key = (str(path), str(target), stat.st_mtime_ns, stat.st_size)
    with _LOCK:
        model = _CACHE.get(key)
        if model is None or model.device != target:
            for old in [k for k in _CACHE if k[:2] == key[:2]]:
                del _CACHE[old]  # an older version of the file
            model = load_model(path, target)
            _CACHE[key] = model
    return model


def model_card_summary(card: dict[str, Any]) -> str:
    """One line from a model card: name, validation score and F1@0.7, and the baseline's.

    Args:
        card: a model card dict (``SegmentationModel.model_card``); may be empty.

    Returns:
        e.g. ``"default_unet (configs/default_unet.yaml): validation score 0.561, F1@0.7 0.741 on
        99 DSB2018 images (Otsu + watershed: 0.470, 0.612)"``, followed by the held-out
        acquisition groups' scores when the card has them; ``"no model card"`` for ``{}``.
    """
    if not card:
        return "no model card"
    text = str(card.get("name", "unnamed model"))
    if card.get("recipe"):
        text += f" ({card['recipe']})"
    validation = card.get("validation") or {}
    scores = validation.get(card.get("weights_dtype", "float32")) or next(
        iter(validation.values()), None
    )
    if scores:
        n = (card.get("split") or {}).get("validation_images")
        text += f": validation score {scores['score']:.3f}, F1@0.7 {scores['f1_0.7']:.3f}"
        text += f" on {n} held-out images" if n else ""
        baseline = card.get("baseline") or {}
        if "score" in baseline:
            name = baseline.get("name", "baseline")
            text += f" ({name}: {baseline['score']:.3f}, {baseline['f1_0.7']:.3f})"
    held = card.get("held_out_groups") or {}
    ours, theirs = held.get(card.get("weights_dtype", "float32")) or {}, held.get("baseline") or {}
    if "all" in ours:
        kinds = ", ".join(f"{k} {v['score']:.3f}" for k, v in ours.items() if k != "all")
        text += f"; held-out acquisition groups ({held.get('images')} images): {ours['all']['score']:.3f}"
        text += f" ({kinds})" if kinds else ""
        if "all" in theirs:
            text += f", Otsu {theirs['all']['score']:.3f}"
    for kind, route in (card.get("routes") or {}).items():
        text += f"; {kind} images: a network of their own ({route.get('view', 'rgb')} view)"
    return text
