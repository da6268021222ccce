"""The public calls: :func:`segment` (one image, a list, or a folder) and :func:`segment_files`."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from segmentation.inference.batches import SegmentResult, segment_inputs
from segmentation.inference.engine import Settings
from segmentation.inference.model import (
    INPUT_MULTIPLE,
    SegmentationModel,
    load_model,
    resolve_device,
)
from segmentation.inference.options import SegmentOptions, merge_options, pick_tile_size
from segmentation.inference.transforms import views_from_names
from segmentation.models.base import thresholds_from_dict

ImageInput = np.ndarray | str | os.PathLike

#: Default overlap of neighbouring tiles (pixels): above the largest DSB2018 nuclei (99.9 % are
#: under 75 px across), so a nucleus cut by one tile is whole in its neighbour.
TILE_OVERLAP = 96


def _resolve_model(model: Any, device: str | torch.device) -> SegmentationModel:
    """``None`` -> the shipped default model; a path -> loaded; a loaded model -> moved."""
    resolve_device(device)  # a device this machine lacks: a clear error before any loading
    if model is None:
        from segmentation.inference.default import load_default_model

        return load_default_model(device)
    if isinstance(model, SegmentationModel):
        return model if device == "auto" else model.to(device)
    if isinstance(model, str | os.PathLike):
        return load_model(model, device)
    raise TypeError(
        f"model must be a model file path or a SegmentationModel, got {type(model).__name__}"
    )


def _settings(
    model: SegmentationModel,
    tile_size: int | None,
    tile_overlap: int | None,
    tta: bool,
    batch_size: int,
    options: SegmentOptions,
) -> Settings:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    multiple = INPUT_MULTIPLE  # tiles start on the networks' stride grid
    if tile_size is None:
        tile_size = pick_tile_size(model.device, batch_size, multiple)
    if isinstance(tile_size, bool) or not isinstance(tile_size, int) or tile_size < 64:
        raise ValueError(f"tile_size must be None or an integer >= 64 pixels, got {tile_size!r}")
    if tile_size % multiple:
        low = tile_size // multiple * multiple
        raise ValueError(
            f"tile_size must be a multiple of {multiple} (the networks' stride), got {tile_size}; "
            f"use {low} or {low + multiple}"
        )
    if tile_overlap is None:
        tile_overlap = min(TILE_OVERLAP, tile_size // 4)
    if isinstance(tile_overlap, bool) or not isinstance(tile_overlap, int):
        raise TypeError(f"tile_overlap must be an integer (pixels), got {tile_overlap!r}")
    if not 0 <= tile_overlap < tile_size / 2:
        raise ValueError(
            f"tile_overlap must satisfy 0 <= tile_overlap < tile_size / 2, got {tile_overlap} "
            f"with tile_size {tile_size}"
        )
    views = views_from_names(options.tta_views if tta else ("rot0",))
    thresholds = model.thresholds
    if options.thresholds is not None:
        thresholds = thresholds_from_dict(model.family.Thresholds, options.thresholds)
    return Settings(tile_size, tile_overlap, tuple(views), batch_size, options, thresholds)


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files (PNG, JPEG, BMP, GIF, TIFF) of a folder, sorted by name; hidden files skipped."""
    from segmentation.datasets.io import IMAGE_SUFFIXES

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"folder not found: {folder}")
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    )


def segment_files(
    inputs: Sequence[ImageInput],
    model: SegmentationModel | str | os.PathLike | None = None,
    *,
    diameter: float | None = None,
    channel: int | None = None,
    channel_axis: int | None = None,
    tile_size: int | None = None,
    tile_overlap: int | None = None,
    tta: bool = False,
    batch_size: int = 4,
    device: str | torch.device = "auto",
    return_details: bool = False,
    options: SegmentOptions | None = None,
) -> Iterator[SegmentResult]:
    """Segment many images, yielding one :class:`SegmentResult` per input, in order.

    Unlike :func:`segment`, an input that cannot be read or is not a valid image does not stop the
    run: its result carries the ``error`` (naming the file) and the others are still segmented.
    Arguments as for :func:`segment`; ``inputs`` is a sequence of arrays and/or file paths.
    """
    options = merge_options(options, diameter=diameter, channel=channel, channel_axis=channel_axis)
    model = _resolve_model(model, device)
    settings = _settings(model, tile_size, tile_overlap, tta, batch_size, options)
    yield from segment_inputs(list(inputs), model, settings, return_details)


def segment(
    image: ImageInput | Sequence[ImageInput],
    model: SegmentationModel | str | os.PathLike | None = None,
    *,
    diameter: float | None = None,
    channel: int | None = None,
    channel_axis: int | None = None,
    tile_size: int | None = None,
    tile_overlap: int | None = None,
    tta: bool = False,
    batch_size: int = 4,
    device: str | torch.device = "auto",
    return_details: bool = False,
    options: SegmentOptions | None = None,
) -> Any:
    """Segment the nuclei of 2-D images.

    Args:
        image: one image: an ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)`` array
            (uint8, uint16, any int or float; gray replicated to three channels; the 4th of 4
            channels dropped as alpha when 8-bit or constant, else ``channel`` is needed), any
            ``(H, W, C)`` with ``channel``, a ``(C, H, W)`` array with ``channel_axis=0`` (and
            ``channel`` unless ``C == 1``: three channels first are stains, not colour), or a
            PNG/TIFF path (8/16-bit or float32, gray/RGB/RGBA, multi-channel or multi-page TIFF;
            an ImageJ/OME ``C`` axis needs ``channel``). Or a list of those, or a folder path.
        model: a model file path or a loaded :class:`SegmentationModel`; ``None`` uses the
            default model that ships inside the package
            (:func:`~segmentation.inference.default.load_default_model`, loaded once per device,
            offline; its scores: ``load_default_model().model_card``).
        diameter: typical nucleus diameter in pixels; the image is resized so that nuclei are
            the size the model was trained at (a rescale factor ``reference_diameter /
            diameter`` within 1/32 .. 8: 2.25 .. 576 px for the default model, and at most the
            image's shorter side; else a ``ValueError``). ``None``: estimated from a first pass
            (see :class:`~segmentation.inference.options.SegmentOptions`).
        channel: segment this channel (from 0) as a gray image, e.g. the nuclear stain.
        channel_axis: the axis holding the channels: ``0`` for ``(C, H, W)`` arrays and
            multi-page TIFFs, ``-1`` for ``(H, W, C)``.
            ``diameter``, ``channel`` and ``channel_axis`` are the fields of ``options`` of the
            same names (:func:`~segmentation.inference.inputs.as_image_array` details the channel
            rules); giving one here and a different value in ``options`` is an error.
        tile_size: images larger than this (pixels, a multiple of 32 for dense families) are
            predicted in overlapping tiles whose raw outputs are blended; ``None`` picks a size
            from the device's free memory (:func:`~.options.pick_tile_size`).
        tile_overlap: minimum overlap of neighbouring tiles in pixels (``< tile_size / 2``);
            should exceed the largest nucleus. ``None``: :data:`TILE_OVERLAP` (96), at most a
            quarter of the tile size.
        tta: average the eight rotations/mirrors (``options.tta_views``) on the raw maps (dense
            families) or merge their instances (Mask R-CNN); about 8x slower.
        batch_size: tiles (or same-size images) per forward pass.
        device: ``"auto"`` (CUDA when available, else the CPU), ``"cpu"``, ``"cuda"``,
            ``"cuda:N"``, ``"mps"`` or a ``torch.device``; moves a loaded model. A device this
            machine lacks is a ``ValueError`` listing those it has
            (:func:`~segmentation.inference.model.resolve_device`).
        return_details: also return :class:`~segmentation.inference.details.SegmentDetails`
            (raw outputs, per-nucleus table, timings).
        options: :class:`~segmentation.inference.options.SegmentOptions` (channel choice,
            ``scale``/``diameter`` rescaling, TTA views, block decoding, thresholds, progress).

    Returns:
        For one image, ``(H, W)`` int32 labels (0 = background, nuclei ``1..N``; more than 65,535
        are fine), or ``(labels, details)``. For a list, a list of those in order. For a folder,
        ``{file name: result}`` over its image files in name order; unreadable files are skipped
        with a warning naming each (use :func:`segment_files` to collect the errors).

    Raises:
        ValueError: bad settings (a keyword that conflicts with ``options``, a ``diameter`` or
            ``scale`` out of range), or an invalid image (NaN values, a 3-D stack, an ambiguous
            shape without ``channel_axis``, several channels without ``channel``, an empty or
            corrupt file, smaller than the stated diameter; for a list, the message names the
            item).
        TypeError: an input that is neither an array nor a path.
        FileNotFoundError: a missing file or folder (or a missing default model file).

    Example:
        >>> labels = segment("cells.tif")  # the default model  # doctest: +SKIP
        >>> labels = segment("cells.tif", model="runs/unet/model.pt")  # doctest: +SKIP
        >>> labels = segment("stack.tif", channel_axis=0, channel=1, diameter=30)  # doctest: +SKIP
        >>> labels, details = segment(big, model=m, tile_size=1024, return_details=True)  # doctest: +SKIP
        >>> details.nuclei["area"], details.timings["network"]  # doctest: +SKIP
    """
    options = merge_options(options, diameter=diameter, channel=channel, channel_axis=channel_axis)
    model = _resolve_model(model, device)
    settings = _settings(model, tile_size, tile_overlap, tta, batch_size, options)

    def pack(result: SegmentResult) -> Any:
        return (result.labels, result.details) if return_details else result.labels

    if isinstance(image, str | os.PathLike) and Path(image).is_dir():
        files = list_images(image)
        if not files:
            raise FileNotFoundError(f"no image files in folder {image}")
        out = {}
        for result in segment_inputs(files, model, settings, return_details):
            if result.error is not None:
                warnings.warn(f"skipped {result.name}: {result.error}", stacklevel=2)
            else:
                out[Path(result.name).name] = pack(result)
        return out
    if isinstance(image, list | tuple):
        results = []
        for result in segment_inputs(list(image), model, settings, return_details):
            if result._exception is not None:
                err = result._exception
                raise type(err)(f"cannot segment {result.name}: {err}") from err
            results.append(pack(result))
        return results
    (result,) = segment_inputs([image], model, settings, return_details)
    if result._exception is not None:  # one input: its error, with its own type and message
        raise result._exception
    return pack(result)
