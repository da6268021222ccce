"""A deterministic train/validation split that keeps image types balanced."""

from __future__ import annotations

import fnmatch
import hashlib
import math
from collections.abc import Sequence

from segmentation.datasets.image_types import IMAGE_TYPES, image_type
from segmentation.datasets.sample_type import Sample


def matches_any(name: str, patterns: Sequence[str]) -> bool:
    """Whether an image name matches one of the ``fnmatch`` patterns (case-sensitive), e.g.
    ``matches_any("TCGA-06-0129_1", ["TCGA-*"])`` is True."""
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _rank(seed: int, name: str) -> str:
    return hashlib.sha256(f"{seed}\0{name}".encode()).hexdigest()


def train_val_split(
    samples: Sequence[Sample], val_fraction: float = 0.2, seed: int = 0
) -> tuple[list[Sample], list[Sample]]:
    """Split samples into training and validation sets, stratified by :func:`image_type`.

    Within each image type the samples are ranked by a hash of ``(seed, name)`` and the first
    ``round(val_fraction * n)`` go to validation (at least one when the type has two or more
    samples and ``val_fraction > 0``). The result depends only on the names, images and seed:
    the same samples in another order give the same split.

    Args:
        samples: samples with unique names.
        val_fraction: share of each image type that goes to validation, in ``[0, 1)``.
        seed: changes the ranking, hence which samples are held out.

    Returns:
        ``(train, val)``, two lists of the input samples (not copied), each sorted by name.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    names = [s.name for s in samples]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"sample names must be unique to split deterministically: {dupes}")
    groups: dict[str, list[Sample]] = {t: [] for t in IMAGE_TYPES}
    for sample in samples:
        groups[image_type(sample.image)].append(sample)
    train, val = [], []
    for group in groups.values():
        group.sort(key=lambda s: _rank(seed, s.name))
        n_val = math.floor(val_fraction * len(group) + 0.5)
        if val_fraction > 0 and n_val == 0 and len(group) >= 2:
            n_val = 1
        val.extend(group[:n_val])
        train.extend(group[n_val:])
    return sorted(train, key=lambda s: s.name), sorted(val, key=lambda s: s.name)
