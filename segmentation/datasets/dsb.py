"""The DSB2018 Kaggle layout: ``<root>/<id>/images/<id>.png`` and ``<root>/<id>/masks/*.png``.

Each mask file holds one nucleus (nonzero pixels). The label image gives the nucleus of the k-th
mask file, in sorted file-name order, the label k.

Overlap rule: where masks overlap, the mask file whose name sorts first keeps the pixel. Overlapping
pixels are counted per image and reported; when a mask loses all its pixels to earlier masks (or is
empty on disk) a warning names the file and the labels are renumbered 1..N without gaps, so no
annotation disappears silently. Images without a ``masks`` folder (test sets) get ``labels=None``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from segmentation.datasets.io import IMAGE_SUFFIXES, read_image
from segmentation.datasets.labels import relabel_sequential
from segmentation.datasets.sample_type import Sample

DSB_ROOT_ENV = "SEGMENTATION_DSB_ROOT"


def default_dsb_root() -> Path:
    """Where the DSB2018 ``stage1_train`` folder is expected.

    Returns:
        ``$SEGMENTATION_DSB_ROOT`` when set, else ``<repo>/../shared/data/dsb2018/stage1_train``
        where ``<repo>`` is the folder holding the ``segmentation`` package. The path may not
        exist; callers check.
    """
    env = os.environ.get(DSB_ROOT_ENV)
    if env:
        return Path(env).expanduser()
    repo = Path(__file__).resolve().parents[2]
    return repo.parent / "shared" / "data" / "dsb2018" / "stage1_train"


def _read_mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """One DSB mask file -> ``(H, W)`` bool (nonzero pixels), checked against the image shape."""
    try:
        with Image.open(path) as img:
            if img.mode in ("L", "1", "I;16", "I"):
                mask = np.asarray(img) != 0
            else:
                mask = None
    except (OSError, SyntaxError, EOFError, ValueError) as err:
        raise ValueError(f"cannot read mask {path}: {err}; re-export it") from err
    if mask is None:  # colour or palette masks: any nonzero channel
        mask = (read_image(path) != 0).any(axis=2)
    if mask.shape != shape:
        raise ValueError(
            f"mask {path} has shape {mask.shape} but its image has shape {shape}; every mask "
            "must match its image's height and width"
        )
    return mask


def _find_image(sample_dir: Path) -> Path:
    images_dir = sample_dir / "images"
    if not images_dir.is_dir():
        raise FileNotFoundError(
            f"{sample_dir} has no 'images' folder; expected the Kaggle layout "
            "<id>/images/<id>.png and <id>/masks/*.png"
        )
    preferred = images_dir / f"{sample_dir.name}.png"
    if preferred.is_file():
        return preferred
    files = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if len(files) != 1:
        raise ValueError(
            f"{images_dir} should hold one image named {preferred.name}, found "
            f"{[p.name for p in files]}"
        )
    return files[0]


def read_dsb_sample(sample_dir: str | os.PathLike) -> tuple[Sample, int]:
    """Read one image folder of the Kaggle layout and build its label image.

    Args:
        sample_dir: ``<root>/<id>`` holding ``images/<id>.png`` and optionally ``masks/*.png``.

    Returns:
        ``(sample, overlap_pixels)``: ``sample.name`` is the folder name, ``sample.image`` the
        ``(H, W, C)`` uint8/uint16 image (see :func:`read_image`), ``sample.labels`` the
        ``(H, W)`` int32 label image (label k = k-th mask file in sorted order, see the module
        docstring for overlaps) or ``None`` without a ``masks`` folder. ``overlap_pixels`` counts
        the mask pixels that were already taken by an earlier mask.
    """
    sample_dir = Path(sample_dir)
    image = read_image(_find_image(sample_dir))
    masks_dir = sample_dir / "masks"
    if not masks_dir.is_dir():
        return Sample(name=sample_dir.name, image=image, labels=None), 0
    shape = image.shape[:2]
    flat = np.zeros(shape[0] * shape[1], dtype=np.int32)
    overlap = 0
    lost = []
    mask_files = sorted(p for p in masks_dir.iterdir() if p.suffix.lower() == ".png")
    for k, mask_path in enumerate(mask_files, start=1):
        index = np.flatnonzero(_read_mask(mask_path, shape))
        taken = flat[index] != 0
        n_taken = int(np.count_nonzero(taken))
        overlap += n_taken
        if n_taken == index.size:
            lost.append(mask_path.name)
            continue
        flat[index[~taken] if n_taken else index] = k
    labels = flat.reshape(shape)
    if lost:
        warnings.warn(
            f"{sample_dir.name}: {len(lost)} mask(s) have no pixel of their own (empty, or fully "
            f"covered by masks that sort earlier) and are absent from the labels: {lost}",
            stacklevel=2,
        )
        labels = relabel_sequential(labels)
    return Sample(name=sample_dir.name, image=image, labels=labels), overlap


def _sample_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if (p / "images").is_dir())


def load_dsb(
    root: str | os.PathLike | None = None,
    ids: list[str] | None = None,
    progress: bool = False,
) -> tuple[list[Sample], dict[str, int]]:
    """Read a whole folder in the Kaggle layout.

    Args:
        root: folder holding one sub-folder per image (default: :func:`default_dsb_root`).
        ids: image ids to read, in that order (default: all, sorted by id).
        progress: show a tqdm progress bar.

    Returns:
        ``(samples, overlap_report)``: one :class:`Sample` per image (labels ``None`` where there
        is no ``masks`` folder) and ``{image_id: overlapping pixels}`` for the images whose masks
        overlap (empty when none do).

    Raises:
        FileNotFoundError: ``root`` missing, holding no image folder, or an id not found.
    """
    root = default_dsb_root() if root is None else Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"DSB folder not found: {root}; pass root= or set ${DSB_ROOT_ENV} to the "
            "stage1_train folder"
        )
    if ids is None:
        dirs = _sample_dirs(root)
        if not dirs:
            raise FileNotFoundError(
                f"{root} holds no <id>/images/ folder; is it the Kaggle layout (stage1_train)?"
            )
    else:
        dirs = [root / str(i) for i in ids]
        missing = [d.name for d in dirs if not (d / "images").is_dir()]
        if missing:
            raise FileNotFoundError(f"image ids not found under {root}: {missing}")
    if progress:
        from tqdm import tqdm

        dirs = tqdm(dirs, desc="reading DSB", unit="image")
    samples, report = [], {}
    for d in dirs:
        sample, overlap = read_dsb_sample(d)
        samples.append(sample)
        if overlap:
            report[sample.name] = overlap
    return samples, report
