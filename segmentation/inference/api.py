"""The public calls: :func:`segment` (one image, a list, or a folder) and :func:`segment_files`."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from segmentation.inference.details import SegmentDetails
from segmentation.inference.diameter import (
    choose_diameter,
    estimate_diameter,
    fragments_confirmed,
    fragments_suspected,
)
from segmentation.inference.engine import Job, Settings, finish, make_job, run_network
from segmentation.inference.inputs import as_image_array
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

#: Images are read and predicted in groups of up to this many pixels (and 4 x batch_size images).
_GROUP_PIXELS = 32 * 2**20

_INPUT_ERRORS = (ValueError, TypeError, FileNotFoundError, OSError)


@dataclass
class SegmentResult:
    """One input of :func:`segment_files`.

    Attributes:
        index: position in the input list.
        name: the file path, or ``"image <index>"`` for an array.
        labels: ``(H, W)`` int32 labels, or ``None`` when the input failed.
        details: :class:`~segmentation.inference.details.SegmentDetails` when asked for.
        image: the ``(H, W, C)`` image as segmented (after the channel choice), or ``None``.
        error: why the input could not be segmented (unreadable file, bad array), else ``None``.
    """

    index: int
    name: str
    labels: np.ndarray | None = None
    details: SegmentDetails | None = None
    image: np.ndarray | None = None
    error: str | None = None
    _exception: Exception | None = field(default=None, repr=False)


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


def _name(item: Any, index: int) -> str:
    return str(item) if isinstance(item, str | os.PathLike) else f"image {index}"


def _routed(settings: Settings, model: SegmentationModel) -> Settings:
    """``settings`` with ``model``'s thresholds (a route's own, unless the caller set them)."""
    if settings.options.thresholds is not None:
        thresholds = thresholds_from_dict(model.family.Thresholds, settings.options.thresholds)
    else:
        thresholds = model.thresholds
    return replace(settings, thresholds=thresholds)


@dataclass
class _Pending:
    """An input in flight: its result, its job (``None`` when it failed), its network."""

    result: SegmentResult
    job: Job | None = None
    model: SegmentationModel | None = None
    settings: Settings | None = None
    size: float | None = None  # the size model's estimate of the nuclei's diameter
    first: tuple | None = None  # a first pass kept unless this one confirms its fragments


def _iterate(
    items: Sequence[Any], model: SegmentationModel, settings: Settings, details: bool
) -> Iterator[SegmentResult]:
    """Yield one result per item, in order; inputs are read and predicted in groups.

    Each image goes to the network ``model.for_image`` picks (a route for its kind of image, or
    the model's own). With ``options.progress``, a bar counts the images of a list, or the tiles
    (x TTA views) of a single image.
    """
    from tqdm.auto import tqdm

    group_images = 4 * settings.batch_size
    options = settings.options
    pending: list[_Pending] = []
    pixels = 0
    by_tile = len(items) == 1  # one image: its tiles are the work to count
    views = len(settings.views)
    bar = tqdm(
        total=0 if by_tile else len(items),
        desc=("tiles" if views == 1 else f"tiles x {views} views") if by_tile else None,
        unit="tile" if by_tile else "image",
        disable=not options.progress,
    )
    per_image = 0 if by_tile else 1
    routed = {id(model): settings}

    def settings_of(net: SegmentationModel) -> Settings:
        if id(net) not in routed:
            routed[id(net)] = _routed(settings, net)
        return routed[id(net)]

    def network(work: list[_Pending]) -> None:
        """One network run per model over the jobs of ``work``."""
        if by_tile:  # a second pass at the estimated diameter adds its tiles
            bar.total += sum(len(p.job.tiles) for p in work) * views
            bar.refresh()
        nets: dict[int, list[_Pending]] = {}
        for item in work:
            nets.setdefault(id(item.model), []).append(item)
        for group in nets.values():
            net, jobs = group[0].model, [p.job for p in group]
            run_network(net, jobs, group[0].settings, bar.update if by_tile else None)

    routes = {id(net): kind for kind, net in model.routes.items()}

    def finished(item: _Pending) -> None:
        out = finish(item.model, item.job, item.settings, details)
        item.result.labels, item.result.details = out if details else (out, None)
        if details:
            item.result.details.network = routes.get(id(item.model), "main")

    def flush() -> Iterator[SegmentResult]:
        work = [p for p in pending if p.job is not None]
        if work:
            network(work)
        redo = []  # the same inputs, at the estimated diameter
        for item in work:
            finished(item)
            if item.settings.options.estimates_diameter:
                reference = item.settings.options.reference_diameter
                item.size = item.job.size_estimate(item.model)  # read in the first pass
                estimate = estimate_diameter(item.result.labels)
                diameter = choose_diameter(estimate, reference, item.size)
                if diameter is not None:
                    again = replace(
                        item.settings, options=replace(item.settings.options, diameter=diameter)
                    )
                    job = make_job(item.model, item.result.image, again)
                    retry = _Pending(item.result, job, item.model, again)
                    if fragments_suspected(estimate, reference, item.size):  # to be confirmed
                        retry.first = (item.result.labels, item.result.details, estimate)
                    redo.append(retry)
        if redo:  # the views and batch size are the same: one network run per model
            network(redo)
            for item in redo:
                finished(item)
                if item.first is not None:
                    labels, details, estimate = item.first
                    if not fragments_confirmed(estimate, estimate_diameter(item.result.labels)):
                        item.result.labels, item.result.details = labels, details
        yield from (p.result for p in pending)
        pending.clear()

    try:
        for index, item in enumerate(items):
            entry = _Pending(SegmentResult(index, _name(item, index)))
            try:
                entry.result.image = as_image_array(item, options.channel, options.channel_axis)
                options.check_resized_shape(entry.result.image.shape)  # a stated size
            except _INPUT_ERRORS as err:
                entry.result.error, entry.result._exception = str(err), err
            else:
                entry.model = model.for_image(entry.result.image, options.stained_view)
                entry.settings = settings_of(entry.model)
                entry.job = make_job(entry.model, entry.result.image, entry.settings)
                entry.job.wants_style = entry.settings.options.estimates_diameter
            pending.append(entry)
            pixels += (
                0 if entry.job is None else entry.job.image.shape[0] * entry.job.image.shape[1]
            )
            if len(pending) >= group_images or pixels >= _GROUP_PIXELS:
                for done in flush():
                    bar.update(per_image)
                    yield done
                pixels = 0
        for done in flush():
            bar.update(per_image)
            yield done
    finally:
        bar.close()


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
    yield from _iterate(list(inputs), model, settings, return_details)


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
        for result in _iterate(files, model, settings, return_details):
            if result.error is not None:
                warnings.warn(f"skipped {result.name}: {result.error}", stacklevel=2)
            else:
                out[Path(result.name).name] = pack(result)
        return out
    if isinstance(image, list | tuple):
        results = []
        for result in _iterate(list(image), model, settings, return_details):
            if result._exception is not None:
                err = result._exception
                raise type(err)(f"cannot segment {result.name}: {err}") from err
            results.append(pack(result))
        return results
    (result,) = _iterate([image], model, settings, return_details)
    if result._exception is not None:  # one input: its error, with its own type and message
        raise result._exception
    return pack(result)
