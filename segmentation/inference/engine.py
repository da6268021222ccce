"""The inference pipeline for a group of images: tiles -> batches -> blended raw outputs -> labels.

For every image of a group, every tile and every test-time view becomes one network input; inputs
of the same shape (same-size images, same-size tiles) are stacked into batches of ``batch_size``,
so a folder of equally sized images runs in full batches. Dense maps are inverted from their view,
averaged over views and members, and blended into full-size maps with weights towards tile centres
(:mod:`.tiling`); Mask R-CNN instances are merged over views and members, then across tiles
(:mod:`.instances`). Each image is decoded once (:mod:`.blocks` for large ones), its labels are
resized back to the input's size, and optionally measured (:mod:`.details`).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from segmentation.datasets.labels import relabel_sequential
from segmentation.datasets.nuclear_view import nuclear_view, recipe_stained_view
from segmentation.inference.blocks import decode_maps
from segmentation.inference.details import (
    SegmentDetails,
    dense_scores,
    instance_scores,
    nucleus_table,
)
from segmentation.inference.inputs import (
    intensity_range,
    normalized_window,
    resize_image,
    resize_labels,
    scaled_shape,
)
from segmentation.inference.instances import merge_tiles, merge_views, shift_instances
from segmentation.inference.model import INPUT_MULTIPLE, SegmentationModel
from segmentation.inference.options import SegmentOptions
from segmentation.inference.size_model import StyleRecorder
from segmentation.inference.tiling import MapBlender, Tile, tile_grid
from segmentation.inference.transforms import View, invert_instances, invert_maps


@dataclass(frozen=True)
class Settings:
    """Resolved settings of one :func:`segment` call (see its arguments)."""

    tile_size: int | None
    overlap: int
    views: tuple[View, ...]
    batch_size: int
    options: SegmentOptions
    thresholds: Any
    #: apply :func:`~segmentation.datasets.nuclear_view.nuclear_view` to each image (``False``
    #: where the caller decided the view once for a whole image, as ``segment_large`` does)
    nuclear_view: bool = True


@dataclass
class Job:
    """One image in flight: its arrays, normalisation range, tiles and partial results."""

    original: np.ndarray  # (H, W, C) after the channel choice
    image: np.ndarray  # (h, w, C) resized for the network
    lo: float
    hi: float
    tiles: list[Tile]
    blender: MapBlender | None = None
    instances: dict[int, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    network_seconds: float = 0.0
    #: record the style of its tiles for the network's size model (:mod:`.size_model`)
    wants_style: bool = False
    style: list[torch.Tensor] | None = None  # summed pooled encoder stages of its tiles
    style_windows: int = 0

    def size_estimate(self, model: SegmentationModel) -> float | None:
        """The nuclei's diameter (pixels of ``image``) the model's size model reads from the
        recorded style, or ``None`` (no size model, or no style recorded)."""
        from segmentation.inference.size_model import style_from_sums

        if model.size_model is None or not self.style_windows:
            return None
        return model.size_model.predict(style_from_sums(self.style, self.style_windows))


def make_job(
    model: SegmentationModel,
    image: np.ndarray,
    settings: Settings,
    intensity: tuple[float, float] | None = None,
    seen: np.ndarray | None = None,
) -> Job:
    """Prepare one ``(H, W, C)`` image (``C`` in {1, 3}, validated): its nuclear view (unless a
    channel was picked), resize, range, tiles.

    ``intensity``: the ``(lo, hi)`` normalisation range to use instead of this image's own
    percentiles (a window of a larger image uses the whole image's, ``segment_large``).
    ``seen``: the ``(H, W, C)`` view the network sees, made by the caller (``segment_large``'s
    whole-image haematoxylin density); ``image`` stays the one measured in the nucleus table."""
    options = settings.options
    if seen is not None:
        if seen.shape[:2] != image.shape[:2]:
            raise ValueError(f"seen {seen.shape[:2]} and image {image.shape[:2]} differ in size")
    elif options.channel is None and settings.nuclear_view:
        seen = nuclear_view(image, options.stained_view or recipe_stained_view(model.recipe))
    else:
        seen = image
    factor = options.resize_factor
    scaled = resize_image(seen, scaled_shape(seen.shape[:2], factor)) if factor != 1 else seen
    if intensity is None:
        lo, hi = intensity_range(scaled, model.normalization["low"], model.normalization["high"])
    else:
        lo, hi = intensity
    dense = model.family.dense  # dense networks need padded inputs, Mask R-CNN pads itself
    tiles = tile_grid(scaled.shape[:2], settings.tile_size, settings.overlap, INPUT_MULTIPLE, dense)
    job = Job(image, scaled, lo, hi, tiles)
    if model.family.dense:
        job.blender = MapBlender(len(model.channels), scaled.shape[:2], settings.overlap)
    return job


def run_network(
    model: SegmentationModel,
    jobs: list[Job],
    settings: Settings,
    done: Callable[[int], Any] | None = None,
) -> None:
    """Predict every tile x view of ``jobs`` in batches; fills each job's blender/instances.

    ``done(n)``, when given, is called after each batch with its number of tile x view inputs
    (a progress bar's ``update``).
    """
    items = [
        (j, t, v)
        for j, job in enumerate(jobs)
        for t, tile in enumerate(job.tiles)
        for v in range(len(settings.views))
    ]
    by_shape: dict[tuple[int, int], list[tuple[int, int, int]]] = defaultdict(list)
    for j, t, v in items:
        tile = jobs[j].tiles[t]
        by_shape[settings.views[v].shape_of((tile.height, tile.width))].append((j, t, v))
    n_views = len(settings.views)
    record = model.size_model is not None and any(job.wants_style for job in jobs)
    with StyleRecorder(model.members) if record else nullcontext() as recorder:
        _run_batches(model, jobs, settings, by_shape, n_views, recorder, done)


def _run_batches(model, jobs, settings, by_shape, n_views, recorder, done) -> None:
    """The batches of :func:`run_network`; ``recorder`` adds the tiles' styles to their jobs."""
    for shape, group in by_shape.items():
        for start in range(0, len(group), settings.batch_size):
            batch = group[start : start + settings.batch_size]
            began = time.perf_counter()
            inputs = []
            for j, t, v in batch:
                job, tile = jobs[j], jobs[j].tiles[t]
                window = normalized_window(
                    job.image, job.lo, job.hi, tile.y0, tile.x0, tile.height, tile.width
                )
                inputs.append(np.ascontiguousarray(settings.views[v].apply(window)))
            outputs = model.forward(torch.from_numpy(np.stack(inputs)))
            if recorder is not None:  # the style: the identity view of each tile
                pooled = recorder.take()
                for b, (j, _, v) in enumerate(batch):
                    if jobs[j].wants_style and settings.views[v].name == "rot0":
                        rows = [stage[b] for stage in pooled]
                        jobs[j].style = (
                            rows
                            if jobs[j].style is None
                            else [a + r for a, r in zip(jobs[j].style, rows, strict=True)]
                        )
                        jobs[j].style_windows += 1
            for b, (j, t, v) in enumerate(batch):
                job, tile, view = jobs[j], jobs[j].tiles[t], settings.views[v]
                if model.family.dense:
                    maps = invert_maps(view, outputs[0][b], model.channels)
                    job.blender.add(tile, maps, 1.0 / n_views)
                else:
                    for member_out in outputs:
                        job.instances[t].append(invert_instances(view, member_out[b], shape))
            share = (time.perf_counter() - began) / len(batch)
            for j, _, _ in batch:
                jobs[j].network_seconds += share
            if done is not None:
                done(len(batch))


def merged_instances(job: Job, settings: Settings, mask_threshold: float) -> dict[str, Any]:
    """Merge a Mask R-CNN job's instances over views/members, then over tiles."""
    shape = job.image.shape[:2]
    merge_iou = settings.options.merge_iou
    per_tile = []
    for t, tile in enumerate(job.tiles):
        raw = merge_views(job.instances[t], (tile.height, tile.width), mask_threshold, merge_iou)
        per_tile.append((tile, shift_instances(raw, tile.y0, tile.x0, shape)))
    min_score = float(getattr(settings.thresholds, "score_threshold", 0.0))
    return merge_tiles(per_tile, shape, mask_threshold, merge_iou, min_score)


def finish(
    model: SegmentationModel, job: Job, settings: Settings, details: bool
) -> np.ndarray | tuple[np.ndarray, SegmentDetails]:
    """Decode one job whose network pass is done; resize back; optionally measure.

    Returns:
        ``(H, W)`` int32 labels ``1..N`` of the original image, or ``(labels, details)``.
    """
    began = time.perf_counter()
    thresholds = settings.thresholds
    if model.family.dense:
        raw = job.blender.result()
        job.blender = None
        options = settings.options
        labels = decode_maps(
            model.family, raw, thresholds, options.decode_limit, options.decode_block
        )
    else:
        mask_threshold = getattr(thresholds, "mask_threshold", 0.5)
        raw = merged_instances(job, settings, mask_threshold)
        job.instances.clear()
        labels = np.asarray(model.family.decode(raw, thresholds), dtype=np.int32)
    scores, scoring = None, 0.0  # the per-nucleus scores are table work, not decoding
    if details:
        scored = time.perf_counter()
        if model.family.dense:
            scores = dense_scores(labels, raw[0])
        else:
            scores = instance_scores(labels, raw, mask_threshold)
        scoring = time.perf_counter() - scored
    shape = job.original.shape[:2]
    if labels.shape != shape:
        n = int(labels.max()) if labels.size else 0
        labels = resize_labels(labels, shape)
        present = (np.bincount(labels.ravel(), minlength=n + 1) > 0)[1:]
        if not present.all():  # small nuclei can vanish when shrinking back
            if scores is not None:
                scores = np.concatenate([[np.nan], scores[1:][present]]).astype(np.float32)
            labels = relabel_sequential(labels)
    if not details:
        return labels
    decoded = time.perf_counter()
    table = nucleus_table(labels, job.original, scores)
    timings = {
        "network": job.network_seconds,
        "decode": decoded - began - scoring,
        "table": time.perf_counter() - decoded + scoring,
    }
    channels = model.channels
    views = len(settings.views) * len(model.members)
    info = SegmentDetails(
        table, raw, channels, settings.options.resize_factor, len(job.tiles), views, timings
    )
    return labels, info
