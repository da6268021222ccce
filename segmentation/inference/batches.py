"""Reading and predicting inputs in groups: :class:`SegmentResult` (one per input) and
:func:`segment_inputs`, the loop behind :func:`~segmentation.inference.segment` and
:func:`~segmentation.inference.segment_files`.

Inputs are read and sent to the network in groups (up to ``4 x batch_size`` images or
:data:`_GROUP_PIXELS` pixels), each image to the network its kind of image is routed to; an image
whose nuclei are not the size the network was trained at is segmented a second time at the
estimated diameter (and the first pass kept when the second does not confirm the fragments).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from segmentation.inference.details import SegmentDetails
from segmentation.inference.diameter import (
    choose_diameter,
    estimate_diameter,
    fragments_confirmed,
    fragments_suspected,
)
from segmentation.inference.engine import Job, Settings, finish, make_job, run_network
from segmentation.inference.inputs import as_image_array
from segmentation.inference.model import SegmentationModel
from segmentation.models.base import thresholds_from_dict

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


def segment_inputs(
    items: Sequence[Any], model: SegmentationModel, settings: Settings, details: bool
) -> Iterator[SegmentResult]:
    """Yield one :class:`SegmentResult` per item, in order; inputs are read and predicted in groups.

    Each image goes to the network ``model.for_image`` picks (a route for its kind of image, or
    the model's own). With ``options.progress``, a bar counts the images of a list, or the tiles
    (x TTA views) of a single image.

    Args:
        items: ``(H, W)`` / ``(H, W, C)`` arrays (any int or float dtype) and/or image file paths.
        model: the loaded model; its routes serve their kinds of image.
        settings: tiles, views, batch size, options and thresholds (``api._settings``).
        details: also compute each result's :class:`SegmentDetails`.

    Yields:
        One result per item: ``labels`` an ``(H, W)`` int32 image, or ``error`` when the input
        could not be read or is not a valid image.
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
