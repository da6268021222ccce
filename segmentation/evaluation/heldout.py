"""Held-out sources: whole labs a model never trained on, scored image by image.

Groups cut from one data set (:mod:`segmentation.datasets.groups`) share labs, microscopes and
annotators with the training images and overstate a model's score on truly new images. A held-out
*source* is a set of images from a lab found nowhere in training: a folder with ``images/`` and
``labels/`` (label files named by the image stem) and a pattern of stems (``fnmatch``).

The project's held-out sources (:data:`HELD_OUT_SOURCES`, in ``../shared/data``):

- ``tcga``: the 28 TCGA glioma H&E tiles of ``gbm40_tcga`` (7 slides, 4 tiles each; Emory / TCGA),
- ``huh7``: the 16 Huh7 Hoechst images of ``koyuncu_fluo`` (Bilkent University, 20x).

A recipe keeps them out of training with ``data.holdout: ["TCGA-*", "Huh7_*"]``
(:data:`HOLDOUT_PATTERNS`) while the rest of both sets (GBM40, HepG2) may train. A model that never
trained on those either is also scored on them (:data:`UNSEEN_SOURCES`).
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segmentation.datasets.sample_type import Sample

#: Where the shared data sets live, relative to the repository root (``$SEGMENTATION_DATA`` wins).
DATA_ROOT = "../shared/data"


@dataclass(frozen=True)
class HeldOutSource:
    """A source of images held out of training.

    Attributes:
        key: short name (``"tcga"``), used in tables and on the command line.
        title: what the images are, for tables (``"TCGA glioma H&E"``).
        folder: the data set's folder below the data root (holds ``images/`` and ``labels/``).
        pattern: ``fnmatch`` pattern of the image stems that belong to the source.
        modality: ``"fluorescence"`` or ``"histology"`` (the column it is reported under).
    """

    key: str
    title: str
    folder: str
    pattern: str
    modality: str


TCGA = HeldOutSource("tcga", "TCGA glioma H&E (7 slides)", "gbm40_tcga", "TCGA-*", "histology")
HUH7 = HeldOutSource("huh7", "Huh7 Hoechst (Bilkent)", "koyuncu_fluo", "Huh7_*", "fluorescence")
GBM40 = HeldOutSource(
    "gbm40", "GBM40 glioblastoma H&E (Emory)", "gbm40_tcga", "gbm40_*", "histology"
)
HEPG2 = HeldOutSource("hepg2", "HepG2 Hoechst (Bilkent)", "koyuncu_fluo", "HepG2_*", "fluorescence")

#: The sources every decision is judged on; no recipe trains on them.
HELD_OUT_SOURCES: tuple[HeldOutSource, ...] = (TCGA, HUH7)
#: The other parts of the same data sets: held out only from models that never trained on them.
UNSEEN_SOURCES: tuple[HeldOutSource, ...] = (GBM40, HEPG2)
SOURCES = {s.key: s for s in HELD_OUT_SOURCES + UNSEEN_SOURCES}
#: ``data.holdout`` of a recipe that trains on the rest of both data sets.
HOLDOUT_PATTERNS: tuple[str, ...] = tuple(s.pattern for s in HELD_OUT_SOURCES)


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The folder of the shared data sets: ``root``, else ``$SEGMENTATION_DATA``, else
    :data:`DATA_ROOT` (relative to the working directory)."""
    return Path(root or os.environ.get("SEGMENTATION_DATA") or DATA_ROOT)


def load_source(source: HeldOutSource | str, root: str | os.PathLike | None = None) -> list[Sample]:
    """The annotated images of one source, sorted by name.

    Args:
        source: a :class:`HeldOutSource` or its key (``"tcga"``, ``"huh7"``, ``"gbm40"``,
            ``"hepg2"``).
        root: the data root (:func:`data_root`).

    Returns:
        Samples with ``(H, W, C)`` uint8/uint16 images and ``(H, W)`` int32 labels.

    Raises:
        KeyError: an unknown key (the message lists the known ones).
        FileNotFoundError: the data set is not under the data root.
        ValueError: no image of the folder matches the source's pattern.
    """
    from segmentation.datasets.folders import load_folder_pairs

    if isinstance(source, str):
        if source not in SOURCES:
            raise KeyError(f"unknown source {source!r}; known: {', '.join(SOURCES)}")
        source = SOURCES[source]
    folder = data_root(root) / source.folder
    if not (folder / "images").is_dir():
        raise FileNotFoundError(
            f"{folder}/images not found: the {source.key} source needs the {source.folder} data "
            "set (set $SEGMENTATION_DATA or pass the data root)"
        )
    samples = [
        s
        for s in load_folder_pairs(folder / "images", folder / "labels")
        if fnmatch.fnmatchcase(s.name, source.pattern)
    ]
    if not samples:
        raise ValueError(f"no image of {folder} matches {source.pattern!r}")
    return samples


def score_images(
    samples: Sequence[Sample], predict: Callable[[np.ndarray], np.ndarray]
) -> dict[str, float]:
    """Segment and score a list of annotated images.

    Args:
        samples: annotated images.
        predict: ``(H, W, C)`` image as read -> ``(H, W)`` integer labels.

    Returns:
        ``{"score": competition score (mean over images), "f1_0.5", "f1_0.7", "f1_0.9": pooled
        F1, "matched_iou": mean IoU of the nuclei matched at IoU > 0.5 (pooled), "images": n,
        "seconds": wall time of ``predict`` per image}``.
    """
    import time

    from segmentation.evaluation.dataset import evaluate_dataset

    start = time.perf_counter()
    preds = [predict(s.image) for s in samples]
    seconds = (time.perf_counter() - start) / len(samples)
    pairs = [(s.labels, p) for s, p in zip(samples, preds, strict=True)]
    result = evaluate_dataset(pairs, names=[s.name for s in samples])
    matched = sum(int(r.tp[0]) for r in result.images)
    sum_iou = sum(r.sum_matched_iou for r in result.images)
    return {
        "score": result.mean_score,
        "f1_0.5": result.f1_at(0.5),
        "f1_0.7": result.f1_at(0.7),
        "f1_0.9": result.f1_at(0.9),
        "matched_iou": sum_iou / matched if matched else 0.0,
        "images": len(samples),
        "seconds": seconds,
        "per_image": [r.mean_score for r in result.images],
    }
