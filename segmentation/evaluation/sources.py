"""The two sides of ``segmentation evaluate``: where label images come from, and their names.

A side (``--truth`` or ``--pred``) is one of:

- the output folder of ``segmentation segment``: it holds ``<name>_labels.tif`` files (``.tiff``
  and ``.png`` too); only those are read, named without ``_labels``, so that ``img7_labels.tif``
  matches the truth ``img7``; overlays, per-nucleus CSVs and submissions beside them are ignored;
- a folder of label images (PNG/TIFF, the StarDist/Cellpose/BBBC039 ``labels/`` folder), named by
  file stem;
- a folder in the Kaggle DSB2018 layout (``<id>/images/<id>.png`` + ``<id>/masks/*.png``), named by
  ``<id>`` (the image's stem, so ``segment``'s outputs match it);
- a Kaggle CSV: a solution (``ImageId,EncodedPixels,Height,Width``) or, for the prediction, a
  submission (``ImageId,EncodedPixels``) whose shapes come from the truth side; UTF-8 with or
  without a byte-order mark.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path

import numpy as np

LABELS_TAG = "_labels"  # segment writes <name>_labels.tif


def _label_files(folder: Path) -> list[Path]:
    from segmentation.datasets.io import LABEL_SUFFIXES

    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in LABEL_SUFFIXES
    )


def folder_label_files(folder: Path) -> dict[str, Path]:
    """``{name: label file}`` of a folder of label images or of a ``segment`` output folder.

    Args:
        folder: a folder holding label images directly.

    Returns:
        When any file is named ``*_labels.<png|tif|tiff>`` (a ``segment`` output folder): those
        files only, named without ``_labels``; else every label image, named by stem.

    Raises:
        ValueError: no label images, or two files that would have the same name.
    """
    from segmentation.datasets.io import LABEL_SUFFIXES

    files = _label_files(folder)
    tagged = [p for p in files if p.stem.endswith(LABELS_TAG)]
    if tagged:
        files = tagged
    if not files:
        hint = (
            f"; its labels seem to be in {folder / 'labels'}: pass that folder"
            if (folder / "labels").is_dir()
            else ""
        )
        raise ValueError(
            f"{folder} holds no label images ({', '.join(LABEL_SUFFIXES)}); pass a folder of "
            f"label images, the output folder of `segmentation segment`, a Kaggle DSB2018 folder "
            f"or a Kaggle CSV{hint}"
        )
    by_name: dict[str, Path] = {}
    for path in files:
        name = path.stem[: -len(LABELS_TAG)] if tagged else path.stem
        if name in by_name:
            raise ValueError(
                f"{folder} has two label files for image {name!r}: {by_name[name].name} and "
                f"{path.name}; keep one"
            )
        by_name[name] = path
    return by_name


def _dsb_dirs(folder: Path) -> dict[str, Path]:
    return {p.name: p for p in sorted(folder.iterdir()) if (p / "masks").is_dir()}


class LabelSource:
    """The image names of one side and a way to read each of its label images.

    Args:
        path: a folder (``segment`` output, label images, DSB2018 layout) or a ``.csv`` file.
        role: ``"truth"`` or ``"pred"``, for messages (``--truth``/``--pred``).

    Attributes:
        names: the image names, in the order found.
        has_shapes: whether the side knows its images' shapes (every folder, a solution CSV) or
            needs them from the other side (a submission CSV).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: an unsupported path, a folder without label images, an unreadable CSV.
    """

    def __init__(self, path: str | Path, role: str):
        from segmentation.datasets.rle import read_rle_rows

        self.path, self.role = Path(path), role
        self.files: dict[str, Path] | None = None
        self.dsb: dict[str, Path] | None = None
        self.decoded: dict[str, np.ndarray] | None = None
        self.has_shapes = True
        if self.path.is_dir():
            if not _label_files(self.path) and _dsb_dirs(self.path):
                self.dsb = _dsb_dirs(self.path)
                self.names = list(self.dsb)
            else:
                self.files = folder_label_files(self.path)
                self.names = list(self.files)
        elif self.path.is_file() and self.path.suffix.lower() == ".csv":
            fields, rows = read_rle_rows(self.path)
            self.names = list(dict.fromkeys((r["ImageId"] or "").strip() for _, r in rows))
            self.has_shapes = "Height" in fields and "Width" in fields
        elif not self.path.exists():
            raise FileNotFoundError(f"--{role} {self.path} does not exist")
        else:
            raise ValueError(
                f"--{role} {self.path} must be a folder of label images, the output folder of "
                "`segmentation segment`, a Kaggle DSB2018 folder or a .csv file"
            )

    def decode(
        self, keep: Collection[str], shapes: Mapping[str, tuple[int, int]] | None = None
    ) -> None:
        """Decode a CSV side (only the images in ``keep``); folders are read lazily instead.

        Args:
            keep: the image names that will be read.
            shapes: ``{name: (H, W)}`` for a submission CSV (from the truth side).
        """
        from segmentation.datasets.rle import read_rle_csv

        if self.files is not None or self.dsb is not None:
            return
        if self.role == "truth" and not self.has_shapes:
            raise ValueError(
                f"--truth {self.path} has no Height/Width columns; the truth must be a solution "
                "CSV (ImageId,EncodedPixels,Height,Width) or a folder of label images"
            )
        self.decoded = read_rle_csv(self.path, shapes=shapes, keep=set(keep))

    def read(self, name: str) -> np.ndarray:
        """The ``(H, W)`` int32 label image of ``name`` (CSV sides: after :meth:`decode`)."""
        from segmentation.datasets.io import read_labels

        if self.files is not None:
            return read_labels(self.files[name])
        if self.dsb is not None:
            from segmentation.datasets.dsb import read_dsb_sample

            sample, _ = read_dsb_sample(self.dsb[name])
            return sample.labels
        return self.decoded[name]
