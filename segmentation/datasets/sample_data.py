"""The bundled sample: 10 real DSB2018 images with label images, shipped inside the package.

Fluorescence with small and large nuclei, brightfield (512x512 crops) and stained tissue; about
1.2 MB. Source, licence (CC0) and the crop of each image: ``segmentation/sample/README.md`` and
``manifest.csv``; the files were chosen and written by ``scripts/make_sample.py``.
"""

from __future__ import annotations

from pathlib import Path

from segmentation.datasets.folders import load_folder_pairs
from segmentation.datasets.sample_type import Sample


def sample_dir() -> Path:
    """Folder of the bundled sample (``images/``, ``labels/``, ``manifest.csv``, ``README.md``)."""
    return Path(__file__).resolve().parents[1] / "sample"


def load_sample() -> list[Sample]:
    """Read the bundled sample.

    Returns:
        Samples sorted by name (``"<kind>-<dsb id prefix>"``, e.g. ``"fluo-small-a-2227fd9b"``):
        ``(H, W, 3)`` uint8 RGB images (gray ones have three equal channels) and ``(H, W)`` int32
        labels ``1..N``.

    Raises:
        FileNotFoundError: the sample folder is missing (a broken install); reinstall the package.
    """
    folder = sample_dir()
    if not (folder / "images").is_dir():
        raise FileNotFoundError(
            f"bundled sample not found at {folder}; reinstall the package (pip install -e .) or "
            "regenerate it with scripts/make_sample.py"
        )
    return load_folder_pairs(folder / "images", folder / "labels")
