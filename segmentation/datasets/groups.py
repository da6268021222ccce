"""Acquisition groups, and a split that holds out whole groups (a test of generalisation).

Images of one experiment share modality, size and look; a random split puts images of the same
experiment on both sides and flatters every choice. :func:`acquisition_groups` groups images by

1. image type (:func:`~segmentation.datasets.image_types.image_type`) and pixel size, then
2. appearance, within each such key: average-linkage clustering of a few standardised features
   (background and nucleus brightness, contrast, colour of colour images, median nucleus
   diameter), cut at ``distance`` (in standard deviations of the whole set).

:func:`group_split` then holds out whole groups, chosen per image type by a seeded hash of their
ids, until about ``test_fraction`` of that type's images are held out; an image type with a single
group keeps it in training (its images cannot be held out as a group without losing the type).

The groups of DSB2018 stage1_train and BBBC039 are stored, checked by eye, in
``configs/groups/dsb2018_bbbc039.csv`` (drawn in ``docs/figures/acquisition_groups.png``; both made
by ``scripts/figure_groups.py``): a recipe names it as ``data.groups`` so that the split does not
depend on the image encoding (a lossy training pack gives slightly different features).
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from segmentation.datasets.image_types import image_type
from segmentation.datasets.sample_type import Sample

#: Default cut of the appearance clustering, in standard deviations of the features.
DISTANCE = 2.0


def appearance_features(sample: Sample) -> np.ndarray:
    """Features of one image's look: ``float64 (6,)``.

    ``[background level, nucleus level, contrast, red - blue, green - mean, log median nucleus
    diameter]``: levels are the medians of background and nucleus pixels on the image's
    ``[0, 1]`` dtype range (uint8 / uint16, or 0..4095 for 12-bit data in uint16), contrast their
    difference divided by the background's spread, the two colour terms 0 for gray images.
    """
    image = sample.image.astype(np.float64)
    top = 255.0 if sample.image.dtype == np.uint8 else (4095.0 if image.max() < 4096 else 65535.0)
    gray = image.mean(axis=2) / top
    labels = sample.labels
    fg = labels > 0 if labels is not None else np.zeros(gray.shape, bool)
    bg_values = gray[~fg] if (~fg).any() else gray.ravel()
    fg_values = gray[fg] if fg.any() else bg_values
    background, nucleus = float(np.median(bg_values)), float(np.median(fg_values))
    contrast = abs(nucleus - background) / (float(bg_values.std()) + 1e-3)
    if image.shape[2] == 3:
        mean = image.reshape(-1, 3).mean(axis=0) / top
        red_blue, green = float(mean[0] - mean[2]), float(mean[1] - mean.mean())
    else:
        red_blue = green = 0.0
    diameter = 1.0
    if labels is not None and labels.max() > 0:
        areas = np.bincount(labels.ravel())[1:]
        areas = areas[areas > 0]
        diameter = float(np.sqrt(4 * np.median(areas) / np.pi))
    return np.array(
        [background, nucleus, np.log1p(contrast), red_blue, green, np.log(diameter)], np.float64
    )


def acquisition_groups(samples: Sequence[Sample], distance: float = DISTANCE) -> dict[str, str]:
    """Group images by type, size and appearance (module docstring).

    Args:
        samples: samples with unique names (labels used for the nucleus features when present).
        distance: cut of the average-linkage clustering, in standard deviations.

    Returns:
        ``{sample name: group id}``; ids look like ``"fluorescence-256x256-2"`` (type, height x
        width, cluster number), sorted clusters numbered from 1 by their first member's name.
    """
    from scipy.cluster.hierarchy import fcluster, linkage

    if not samples:
        return {}
    features = np.stack([appearance_features(s) for s in samples])
    spread = features.std(axis=0)
    scaled = (features - features.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
    keys: dict[str, list[int]] = {}
    for i, s in enumerate(samples):
        h, w = s.image.shape[:2]
        keys.setdefault(f"{image_type(s.image)}-{h}x{w}", []).append(i)
    groups = {}
    for key, members in keys.items():
        if len(members) == 1:
            cluster = np.array([1])
        else:
            tree = linkage(scaled[members], method="average")
            cluster = fcluster(tree, t=distance, criterion="distance")
        first = {}
        for i, c in zip(members, cluster, strict=True):
            first.setdefault(int(c), samples[i].name)
        order = {c: n + 1 for n, c in enumerate(sorted(first, key=first.get))}
        for i, c in zip(members, cluster, strict=True):
            groups[samples[i].name] = f"{key}-{order[int(c)]}"
    return groups


def _rank(seed: int, group: str) -> str:
    return hashlib.sha256(f"{seed}\0group\0{group}".encode()).hexdigest()


def group_split(
    samples: Sequence[Sample],
    test_fraction: float,
    seed: int = 0,
    groups: dict[str, str] | None = None,
    keep: Sequence[str] = (),
) -> tuple[list[Sample], list[Sample]]:
    """Hold out whole acquisition groups.

    Per image type, groups are taken in the order of a hash of ``(seed, group id)`` while the
    held-out share stays within ``test_fraction`` of the type's images; when every group is
    larger than that, the smallest is held out. A type with one group stays in training.

    Args:
        samples: samples with unique names.
        test_fraction: wanted share of each image type to hold out, in ``[0, 1)``.
        seed: changes which groups are held out.
        groups: ``{name: group id}`` (default: :func:`acquisition_groups` of ``samples``).
        keep: group ids never held out (e.g. the groups of extra training data: a group that
            training sees through other images is no test of generalisation).

    Returns:
        ``(kept, held_out)``: lists of the input samples, each sorted by name.
    """
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    groups = acquisition_groups(samples) if groups is None else groups
    missing = [s.name for s in samples if s.name not in groups]
    if missing:
        raise ValueError(f"no group given for {missing[:5]}")
    by_type: dict[str, dict[str, int]] = {}
    for s in samples:
        kind = groups[s.name].split("-", 1)[0]
        by_type.setdefault(kind, {})
        by_type[kind][groups[s.name]] = by_type[kind].get(groups[s.name], 0) + 1
    held: set[str] = set()
    for sizes in by_type.values():
        candidates = [g for g in sizes if g not in set(keep)]
        if len(sizes) < 2 or not candidates or test_fraction == 0:
            continue
        total, taken = sum(sizes.values()), 0
        for group in sorted(candidates, key=lambda g: _rank(seed, g)):
            if taken + sizes[group] <= test_fraction * total:
                held.add(group)
                taken += sizes[group]
        if not taken:  # every group is larger than the wanted share: hold out the smallest
            smallest = min(candidates, key=lambda g: (sizes[g], _rank(seed, g)))
            if sizes[smallest] < total:
                held.add(smallest)
    kept = sorted((s for s in samples if groups[s.name] not in held), key=lambda s: s.name)
    out = sorted((s for s in samples if groups[s.name] in held), key=lambda s: s.name)
    return kept, out


def write_group_table(groups: dict[str, str], path: str | os.PathLike) -> Path:
    """Write ``{name: group}`` as a two-column CSV (``name,group``), sorted by name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["name", "group"])
        writer.writerows(sorted(groups.items()))
    return path


def read_group_table(path: str | os.PathLike) -> dict[str, str]:
    """Read a table written by :func:`write_group_table`: ``{name: group}``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"group table {str(path)!r} not found")
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    if not rows or rows[0] != ["name", "group"] or any(len(r) != 2 for r in rows[1:]):
        raise ValueError(f"{path} is not a group table (a CSV with the columns name,group)")
    return {name: group for name, group in rows[1:]}
