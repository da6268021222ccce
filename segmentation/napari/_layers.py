"""What the widgets do, without napari: layer data in, arrays and tables out.

Every function here takes plain arrays (a layer's ``data``) and returns arrays, DataFrames or
napari "layer data tuples" ``(data, kwargs, layer_type)``, so that it runs, and is tested, without
a viewer. Errors are ``ValueError`` with a message a user can act on; the widgets show them with
``napari.utils.notifications.show_error``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

#: Value of the channel choice that keeps the image as it is (gray, or colour as colour).
ALL_CHANNELS = -1


def channel_count(shape: tuple[int, ...], rgb: bool) -> int:
    """Channels an image layer offers: 3 or 4 for an RGB(A) layer ``(H, W, 3|4)``, ``C`` for a
    ``(C, H, W)`` layer, 0 for a gray ``(H, W)`` one."""
    if rgb:
        return int(shape[-1])
    return int(shape[0]) if len(shape) == 3 else 0


def layer_image(data: Any, *, rgb: bool, channel: int = ALL_CHANNELS, name: str = "image"):
    """The 2-D image to segment from an image layer's data.

    Args:
        data: the layer's ``data``: ``(H, W)`` gray, ``(H, W, 3|4)`` colour (``rgb=True``) or
            ``(C, H, W)`` channel planes (``rgb=False``); any numeric dtype, NumPy or array-like
            (Dask, Zarr: read into memory).
        rgb: the layer's ``rgb`` flag (napari's: last axis of 3 or 4 is colour).
        channel: :data:`ALL_CHANNELS` (-1) keeps a gray or colour image as it is; ``c >= 0`` picks
            channel ``c`` (the nuclear stain of a colour image, or plane ``c`` of ``(C, H, W)``).
        name: the layer's name, for error messages.

    Returns:
        ``(H, W)`` or ``(H, W, 3|4)`` array (the layer's dtype), as :func:`segmentation.segment`
        takes it.

    Raises:
        ValueError: a ``(C, H, W)`` layer without a channel, a channel the layer lacks, or data
            that is not a 2-D image (4-D stacks, 1-D).
    """
    data = np.asarray(data)
    channels = channel_count(data.shape, rgb)
    if channel != ALL_CHANNELS and not 0 <= channel < max(channels, 1):
        have = f"channels 0..{channels - 1}" if channels else "one channel (it is gray)"
        raise ValueError(f"layer {name!r} {tuple(data.shape)} has {have}, not channel {channel}")
    if rgb:
        return data if channel == ALL_CHANNELS else data[..., channel]
    if data.ndim == 2:
        return data
    if data.ndim == 3:
        if channel == ALL_CHANNELS:
            raise ValueError(
                f"layer {name!r} holds {data.shape[0]} planes of {data.shape[1]} x "
                f"{data.shape[2]} pixels (shape {tuple(data.shape)}): choose the nuclear "
                "channel (plane) under 'channel'"
            )
        return data[channel]
    raise ValueError(
        f"layer {name!r} has shape {tuple(data.shape)}: the widget segments a 2-D image, gray "
        "(H, W), colour (H, W, 3) or channel planes (C, H, W) with a channel chosen; for a "
        "time-lapse or z-stack, segment one plane (e.g. a layer of viewer.layers[...].data[t])"
    )


def avoid_llvm_clash() -> bool:
    """Keep ``triton`` from loading when an OpenGL driver's LLVM is already in the process.

    Mesa's LLVM-based drivers (llvmpipe, radeonsi) load ``libLLVM`` with global symbols when
    napari's canvas starts; ``triton`` (installed with CUDA builds of torch, imported by
    ``torchvision`` through ``torch._dynamo``) then binds its own LLVM calls to that copy and the
    process dies with a segmentation fault on ``import triton``. The toolkit never compiles with
    triton, so when a ``libLLVM`` is mapped and triton is not loaded yet, ``import triton`` is made
    to fail (``sys.modules["triton"] = None``), which torch treats as "triton not installed".

    Returns:
        Whether triton was blocked.
    """
    if "triton" in sys.modules:
        return False
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:  # not Linux: no such clash seen
        return False
    if "libLLVM" not in maps:
        return False
    sys.modules["triton"] = None
    return True


@lru_cache(maxsize=2)
def _model_file(path: str, mtime_ns: int) -> Any:
    from segmentation import load_model

    return load_model(path)


def load_model_cached(path: str | os.PathLike | None) -> Any:
    """``None`` (the default model, which ``segment()`` caches itself) or a loaded model file,
    kept between runs until the file changes."""
    if path is None or str(path) == "":
        return None
    path = Path(path).expanduser()
    if not path.is_file():
        raise ValueError(f"model file not found: {path}; leave 'model file' empty for the default")
    return _model_file(str(path.resolve()), path.stat().st_mtime_ns)


def labels_features(table: pd.DataFrame) -> pd.DataFrame:
    """A per-nucleus table as napari Labels ``features``: the table with an ``index`` column
    (= ``label``) first, which napari uses to find a label's row (one row per nucleus, no
    background row)."""
    features = table.drop(columns=["image"], errors="ignore").reset_index(drop=True)
    if "index" not in features.columns:
        features.insert(0, "index", features["label"].to_numpy())
    return features


@dataclass
class SegmentJob:
    """One run of the "Segment nuclei" widget: everything read from the GUI and the layer.

    Attributes:
        image: ``(H, W)`` or ``(H, W, 3|4)`` array (:func:`layer_image`).
        name: the image layer's name; the labels layer is ``"<name> nuclei"``.
        model: a model file path, or ``None`` for the default model.
        diameter: nucleus diameter in pixels, or ``None`` (estimated).
        tta: test-time augmentation (8 views).
        stained_view: ``None`` (the model's), ``"rgb"`` or ``"hematoxylin"``.
        scale, translate: the image layer's last two ``scale``/``translate`` entries, copied to
            the labels layer so that it overlays the image.
    """

    image: np.ndarray
    name: str
    model: str | None = None
    diameter: float | None = None
    tta: bool = False
    stained_view: str | None = None
    scale: tuple[float, float] = (1.0, 1.0)
    translate: tuple[float, float] = (0.0, 0.0)


def run_segment(job: SegmentJob) -> tuple[np.ndarray, dict[str, Any], str]:
    """Segment ``job.image`` with :func:`segmentation.segment`; a napari layer data tuple.

    Returns:
        ``(labels, kwargs, "labels")``: ``(H, W)`` int32 labels (0 = background, nuclei
        ``1..N``) and the Labels layer's keyword arguments: ``name`` ``"<image> nuclei"``,
        ``features`` (:func:`labels_features` of ``details.nuclei``: ``index``, ``label``,
        ``area``, ``centroid_y``... one row per nucleus), ``scale``, ``translate`` and
        ``metadata`` (``timings`` in seconds, ``tiles``, ``network``, ``model``).

    Raises:
        ValueError, FileNotFoundError: what :func:`segmentation.segment` refuses (an image too
            small for the diameter, NaN pixels...), or a missing model file.
    """
    avoid_llvm_clash()
    from segmentation import SegmentOptions, segment

    model = load_model_cached(job.model)
    options = SegmentOptions(stained_view=job.stained_view) if job.stained_view else None
    labels, details = segment(
        job.image,
        model=model,
        diameter=job.diameter or None,
        tta=job.tta,
        return_details=True,
        options=options,
    )
    kwargs = {
        "name": f"{job.name} nuclei",
        "features": labels_features(details.nuclei),
        "scale": job.scale,
        "translate": job.translate,
        "metadata": {
            "timings": dict(details.timings),
            "tiles": details.tiles,
            "network": details.network,
            "model": job.model or "default",
        },
    }
    return labels, kwargs, "labels"


@dataclass
class FinetuneJob:
    """One run of the "Fine-tune on these labels" widget.

    Attributes:
        image: ``(H, W)`` or ``(H, W, 3|4)`` array (:func:`layer_image`).
        labels: ``(H, W)`` integer labels of the same height and width (0 = background).
        output: the model file to write (``.pt``).
        model: the base model file, or ``None`` for the default model.
        minutes: wall-time budget of the training.
    """

    image: np.ndarray
    labels: np.ndarray
    output: Path
    model: str | None = None
    minutes: float = 5.0


def run_finetune(job: FinetuneJob) -> dict[str, Any]:
    """Fine-tune on one annotated image with :func:`segmentation.finetune`; writes ``job.output``.

    Returns:
        The written model's card (``dict``: ``held_out_parts`` scores before/after, ``epochs``,
        ``weights``...), with ``"path"`` added.

    Raises:
        ValueError: shapes that differ, fewer nuclei than fine-tuning needs (the message says how
            many), a base model of another family; what :func:`segmentation.finetune` refuses.
    """
    avoid_llvm_clash()
    from segmentation import finetune

    labels = np.asarray(job.labels)
    if labels.shape != job.image.shape[:2]:
        raise ValueError(
            f"labels {labels.shape} and image {job.image.shape[:2]} differ in size: choose the "
            "Labels layer drawn on this image"
        )
    if labels.dtype.kind not in "iu":
        raise ValueError(f"labels must hold integers, got {labels.dtype}")
    output = Path(job.output).expanduser()
    if output.suffix != ".pt":
        raise ValueError(f"the model file should end in .pt, got {output.name}")
    model = finetune(
        [job.image],
        [labels.astype(np.int32, copy=False)],
        model=job.model or "default",
        minutes=job.minutes,
        output=output,
        progress=False,
    )
    card = dict(getattr(model, "model_card", None) or {})
    card["path"] = str(output)
    return card
