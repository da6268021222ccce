"""napari reader for the label images ``segmentation segment`` writes (``<name>_labels.tif``).

Each file opens as a Labels layer ``"<name> nuclei"``; when the ``<name>_nuclei.csv`` the CLI
writes beside it is there, its rows become the layer's ``features`` (hover a nucleus to see its
area, centroid, mean intensity and score in the status bar).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: File names the reader claims (the manifest's ``filename_patterns`` say the same).
SUFFIXES = ("_labels.tif", "_labels.tiff")

LayerData = tuple[Any, dict[str, Any], str]


def get_reader(path: str | os.PathLike | list) -> Callable[[Any], list[LayerData]] | None:
    """The npe2 reader command: :func:`read_labels` for ``*_labels.tif`` paths, else ``None``.

    Args:
        path: one path, or a list of paths (napari passes a list for several files).
    """
    paths = path if isinstance(path, list | tuple) else [path]
    if not paths or not all(str(p).lower().endswith(SUFFIXES) for p in paths):
        return None
    return read_labels


def _features(csv: Path, n_labels: int) -> Any:
    """The CSV's rows as napari Labels features, or ``None`` (with a warning) when unusable."""
    import pandas as pd

    from segmentation.napari._layers import labels_features

    try:
        table = pd.read_csv(csv)
    except (OSError, ValueError) as err:
        warnings.warn(f"{csv} not read as the nuclei's measurements: {err}", stacklevel=3)
        return None
    if "label" not in table.columns:
        warnings.warn(f"{csv} has no 'label' column: not the nuclei's measurements", stacklevel=3)
        return None
    if len(table) and int(table["label"].max()) > n_labels:
        warnings.warn(
            f"{csv} lists labels up to {int(table['label'].max())} but the label image holds "
            f"{n_labels}: the table is not this image's, left out",
            stacklevel=3,
        )
        return None
    return labels_features(table)


def read_labels(path: str | os.PathLike | list) -> list[LayerData]:
    """Read ``<name>_labels.tif`` files as Labels layer data.

    Args:
        path: one path or a list of paths, each ending in ``_labels.tif`` (or ``.tiff``).

    Returns:
        One ``(labels, kwargs, "labels")`` per file: ``(H, W)`` int32 labels as stored (0 =
        background), ``kwargs`` with ``name`` ``"<name> nuclei"`` and, when ``<name>_nuclei.csv``
        sits beside the file, ``features`` (one row per nucleus, an ``index`` column = label,
        the CSV's ``image`` column dropped).

    Raises:
        FileNotFoundError / ValueError: what :func:`segmentation.datasets.io.read_labels` raises
            for a missing, corrupt or colour file.
    """
    from segmentation.datasets.io import read_labels as read_label_image

    paths = path if isinstance(path, list | tuple) else [path]
    layers = []
    for item in paths:
        item = Path(item)
        labels = read_label_image(item)
        suffix = next(s for s in SUFFIXES if item.name.lower().endswith(s))
        stem = item.name[: -len(suffix)]
        kwargs: dict[str, Any] = {"name": f"{stem} nuclei"}
        csv = item.with_name(f"{stem}_nuclei.csv")
        if csv.is_file():
            features = _features(csv, int(labels.max()) if labels.size else 0)
            if features is not None:
                kwargs["features"] = features
        layers.append((labels, kwargs, "labels"))
    return layers
