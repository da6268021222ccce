"""The files of a BioImage Model Zoo package as bytes: arrays, cover, environment, YAML, zip.

Helpers of :func:`segmentation.export.bioimageio.to_bioimageio`.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np


def saved(write: Callable[[IO[bytes]], Any]) -> bytes:
    """The bytes ``write(file_object)`` writes."""
    buffer = io.BytesIO()
    write(buffer)
    return buffer.getvalue()


def npy(array: np.ndarray) -> bytes:
    """An array in NumPy's ``.npy`` format (the test tensors)."""
    return saved(lambda f: np.save(f, array))


def cover_png(image: np.ndarray, labels: np.ndarray) -> bytes:
    """PNG, 2:1: the ``(h, w, C)`` test image (before its nuclear view) | the same with the
    outlines of ``labels``; a square of the shorter side each."""
    from PIL import Image
    from skimage.segmentation import find_boundaries

    side = min(image.shape[:2])
    norm = _display(image[:side, :side])
    outlined = norm.copy()
    outlined[find_boundaries(labels[:side, :side], mode="inner")] = (255, 215, 0)
    return saved(lambda f: Image.fromarray(np.concatenate([norm, outlined], 1)).save(f, "PNG"))


def _display(image: np.ndarray) -> np.ndarray:
    """``(h, w, C)`` image -> ``(h, w, 3)`` uint8, its 1..99.8 percentiles stretched to 0..255."""
    lo, hi = np.percentile(image, [1.0, 99.8])
    scaled = (image.astype(np.float32) - lo) / max(float(hi - lo), 1e-6)
    rgb = np.broadcast_to(scaled, (*image.shape[:2], 3))
    return (np.clip(rgb, 0.0, 1.0) * 255).astype(np.uint8)


def environment_yaml(versions: dict[str, str]) -> str:
    """``environment.yaml`` (conda) of the state-dict weights: torch and smp."""
    torch_version = versions["torch"].split("+")[0]
    return (
        "name: segmentation-nucleus-maps\n"
        "channels: [conda-forge, nodefaults]\n"
        "dependencies:\n"
        "  - python>=3.10\n"
        f"  - pytorch>={torch_version}\n"
        "  - pip\n"
        "  - pip:\n"
        f"      - segmentation-models-pytorch=={versions['smp']}\n"
    )


def tiff(array: np.ndarray) -> bytes:
    """A ``(C, H, W)`` float32 array as a TIFF (the human-readable sample tensors)."""
    import tifffile

    return saved(lambda f: tifffile.imwrite(f, array, photometric="minisblack"))


def yaml_bytes(content: dict[str, Any]) -> bytes:
    """``content`` as YAML (keys in their order), UTF-8."""
    import yaml

    return yaml.safe_dump(content, sort_keys=False, allow_unicode=True, width=100).encode()


def write_zip(path: Path, files: dict[str, bytes]) -> Path:
    """Write ``files`` (name -> bytes) as a zip, atomically."""
    from segmentation.atomic import atomic_write

    with (
        atomic_write(path, "wb") as f,
        zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf,
    ):
        for name, data in files.items():
            zf.writestr(name, data)
    return path
