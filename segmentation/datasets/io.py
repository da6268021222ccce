"""Read images and label images from PNG and TIFF files; write label images.

Images come back as ``(H, W, C)`` arrays, ``uint8`` or ``uint16``, ``C`` in ``{1, 3}``: gray is one
channel, colour is RGB (alpha is dropped, palette images are expanded to RGB). A gray image stored
as RGB keeps its three channels here (the packer may store it as one). Label images come back as
``(H, W)`` ``int32`` arrays, 0 = background.

PNG, JPEG, BMP and GIF files are read with Pillow, except 16-bit PNGs with colour or alpha, which
Pillow silently reduces to 8 bits: those are read with OpenCV. TIFF files are read with tifffile;
multi-page and 3-D TIFFs are rejected with an error until 3-D data are supported. Label images are
written atomically (a temporary file, then a rename), so a failed write never leaves half a file.

:func:`read_image_axes` reads an image as stored, multi-page and multi-channel TIFFs included, with
the names of its axes: ``segment()`` reads its inputs with it and picks the channels itself.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from segmentation.atomic import atomic_write
from segmentation.datasets.labels import validate_labels

TIFF_SUFFIXES = (".tif", ".tiff")
PIL_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
IMAGE_SUFFIXES = PIL_SUFFIXES + TIFF_SUFFIXES
LABEL_SUFFIXES = (".png",) + TIFF_SUFFIXES

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: TIFF extra-sample codes that mark alpha (associated, unassociated).
_ALPHA_SAMPLES = (1, 2)


def _check_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.is_file():
        if path.exists():
            raise ValueError(f"{path} is a directory, not an image file; pass the path of a file")
        raise FileNotFoundError(f"no such file: {path}")
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is an empty file (0 bytes); re-export or re-download it")
    return path


def _png_16bit_colour_type(path: Path) -> int | None:
    """PNG colour type (2 RGB, 4 gray+alpha, 6 RGBA) of a 16-bit PNG Pillow cannot read; else None."""
    with open(path, "rb") as f:
        head = f.read(26)
    if len(head) == 26 and head[:8] == _PNG_SIGNATURE and head[24] == 16 and head[25] in (2, 4, 6):
        return head[25]
    return None


def _read_with_cv2(path: Path) -> np.ndarray:
    import cv2

    data = np.fromfile(path, dtype=np.uint8)
    array = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if array is None:
        raise ValueError(f"cannot decode {path}: the PNG is truncated or corrupt; re-export it")
    if array.ndim == 3:  # OpenCV gives BGR(A)
        array = array[..., [2, 1, 0, 3][: array.shape[2]]]
    return array


def _read_with_pil(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as img:
            n_frames = getattr(img, "n_frames", 1)
            if n_frames == 1:
                if img.mode == "P":
                    img = img.convert("RGBA" if "transparency" in img.info else "RGB")
                elif img.mode == "PA":
                    img = img.convert("RGBA")
                elif img.mode in ("1", "CMYK"):
                    img = img.convert("L" if img.mode == "1" else "RGB")
                array = np.array(img)
    except (OSError, SyntaxError, EOFError, ValueError) as err:  # Pillow's errors for bad files
        raise ValueError(
            f"cannot read {path}: {err} (the file is truncated, corrupt, or not an image); "
            "re-export it"
        ) from err
    if n_frames > 1:
        raise ValueError(
            f"{path} has {n_frames} frames; only single-frame 2-D images are supported, save one "
            "frame per file"
        )
    return array


def _tiff_series(path: Path, single_page: bool) -> tuple[np.ndarray, str, tuple[int, ...]]:
    """The first series of a TIFF without its length-1 axes (except Y and X): array, axes
    (tifffile's letters) and the page's extra-sample codes."""
    try:
        with tifffile.TiffFile(path) as tif:
            n_pages = len(tif.pages)
            series = tif.series[0]
            axes, shape = series.axes, series.shape
            if single_page and n_pages > 1:
                raise ValueError(
                    f"{path} is a multi-page TIFF ({n_pages} pages, axes {axes!r}, shape "
                    f"{shape}); only 2-D images are supported for now: save one plane per file"
                )
            array = series.asarray()
            extrasamples = tuple(int(e) for e in getattr(tif.pages[0], "extrasamples", ()))
    except ValueError:
        raise
    except Exception as err:  # tifffile raises several types for broken files
        raise ValueError(f"cannot read TIFF {path}: {err}; re-export it") from err
    keep = [i for i, a in enumerate(axes) if a in "YX" or shape[i] != 1]
    array = array.reshape([shape[i] for i in keep])
    axes = "".join(axes[i] for i in keep)
    return array, axes, extrasamples


def is_alpha_channel(plane: np.ndarray) -> bool:
    """Whether a 4th (or 2nd) channel of colour (or gray) pixels is alpha rather than a channel of
    its own: 8-bit (uint8) pixels, or a constant plane (an opaque image's alpha, any dtype).

    Args:
        plane: ``(H, W)`` array, the candidate alpha channel.

    Returns:
        ``True`` for alpha: the plane may be dropped without losing an image channel.
    """
    return plane.dtype == np.uint8 or bool(plane.min() == plane.max())


def _read_tiff(path: Path) -> np.ndarray:
    array, axes, _ = _tiff_series(path, single_page=True)
    if axes == "SYX":  # planar colour
        array, axes = np.moveaxis(array, 0, -1), "YXS"
    if axes not in ("YX", "YXS"):
        raise ValueError(
            f"{path} is a {array.ndim}-D TIFF (axes {axes!r}, shape {array.shape}); only 2-D "
            "gray or colour images are supported for now: save one 2-D plane per file"
        )
    return array


def _read_array(path: Path) -> np.ndarray:
    suffix = path.suffix.lower()
    if suffix in TIFF_SUFFIXES:
        return _read_tiff(path)
    if suffix in PIL_SUFFIXES:
        colour_type = _png_16bit_colour_type(path) if suffix == ".png" else None
        if colour_type is not None:
            array = _read_with_cv2(path)
            # OpenCV expands gray+alpha to 4 equal colour channels + alpha: keep gray + alpha
            return array[..., [0, 3]] if colour_type == 4 and array.ndim == 3 else array
        return _read_with_pil(path)
    raise ValueError(
        f"unsupported file type {suffix!r} for {path}; supported: {', '.join(IMAGE_SUFFIXES)}"
    )


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read a 2-D image file.

    Args:
        path: PNG, JPEG, BMP, GIF or TIFF file; 8- or 16-bit; gray, gray+alpha, RGB, RGBA or
            palette.

    Returns:
        ``(H, W, C)`` array, ``uint8`` or ``uint16`` as stored (bilevel images become ``uint8``
        0/255), ``C == 1`` for gray and ``C == 3`` (RGB order) for colour; alpha is dropped.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: empty, truncated or corrupt file, multi-page or 3-D TIFF, more than 2
            spatial dimensions, or a float/signed pixel type.
    """
    path = _check_file(path)
    array = _read_array(path)
    if array.dtype == bool:
        array = array.astype(np.uint8) * np.uint8(255)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3:
        raise ValueError(
            f"{path} holds a {array.ndim}-D array of shape {array.shape}; expected a 2-D image "
            "(H, W) or (H, W, C): save one 2-D plane per file"
        )
    channels = array.shape[2]
    if channels in (2, 4):  # gray+alpha or RGBA: drop alpha
        array = array[:, :, : channels - 1]
    elif channels not in (1, 3):
        raise ValueError(
            f"{path} has {channels} channels (shape {array.shape}); expected 1 (gray), 2 "
            "(gray+alpha), 3 (RGB) or 4 (RGBA)"
        )
    if array.dtype not in (np.uint8, np.uint16):
        if array.dtype.kind in "iu" and array.size and array.min() >= 0 and array.max() < 2**16:
            array = array.astype(np.uint16)
        else:
            raise ValueError(
                f"{path} has pixel type {array.dtype}; expected uint8 or uint16. Rescale it and "
                "save as 8- or 16-bit, e.g. (img / img.max() * 65535).astype(np.uint16)"
            )
    return np.ascontiguousarray(array)


def read_image_axes(path: str | os.PathLike) -> tuple[np.ndarray, str]:
    """Read an image file as stored, with the names of its axes (what ``segment()`` reads).

    Unlike :func:`read_image`, multi-page and multi-channel TIFFs (ImageJ or OME hyperstacks,
    tifffile's shaped files) are read whole, and the pixel type is kept as stored (float32 and
    signed TIFFs too); :func:`segmentation.inference.as_image_array` then picks the channels.

    Args:
        path: PNG, JPEG, BMP, GIF or TIFF file.

    Returns:
        ``(array, axes)``: the array (length-1 axes other than ``Y`` and ``X`` dropped; bilevel
        images become ``uint8`` 0/255) and one letter per axis, tifffile's names: ``Y``, ``X``
        (the image plane), ``S`` (colour samples: 1 gray or 3 RGB, last), ``C`` (channels),
        ``Z``, ``T``, ``Q`` (unknown, e.g. the pages of a plain multi-page TIFF)... E.g. ``"YX"``
        (gray), ``"YXS"`` (RGB), ``"CYX"``, ``"QYX"``. Planar RGB is moved to channels-last:
        ``"YXS"`` when 8-bit, else ``"YXC"`` (channels, not colour: what tifffile writes for a
        ``(3, H, W)`` uint16 or float stack without ``photometric``). Alpha is dropped where it
        is alpha (:func:`is_alpha_channel`: 8-bit, or constant): PNG gray+alpha and RGBA, TIFF
        extra samples marked as alpha; a varying alpha of more than 8 bits (a 4th fluorescence
        channel that tifffile or OpenCV saved as RGBA) and other extra samples of a TIFF make
        the sample axis ``C`` (channels, not colour).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: empty, truncated or corrupt file; an unsupported suffix.
    """
    path = _check_file(path)
    if path.suffix.lower() in TIFF_SUFFIXES:
        array, axes, extrasamples = _tiff_series(path, single_page=False)
        if axes == "SYX":  # planar colour: photographs are 8-bit, other planes are channels
            array = np.moveaxis(array, 0, -1)
            axes = "YXS" if array.dtype == np.uint8 else "YXC"
    else:
        array = _read_array(path)
        axes, extrasamples = ("YX", ()) if array.ndim == 2 else ("YXS", ())
        if array.ndim == 3 and array.shape[2] in (2, 4):  # Pillow/OpenCV: gray+alpha or RGBA
            extrasamples = (2,)
    if array.dtype == bool:
        array = array.astype(np.uint8) * np.uint8(255)
    if axes.endswith("S"):
        samples = array.shape[-1]
        colour = samples - len(extrasamples)
        if colour not in (1, 3):  # extra samples not described: gray+alpha or RGBA as before
            colour, extrasamples = (samples - 1, (2,)) if samples in (2, 4) else (samples, ())
        alpha = [colour + k for k, e in enumerate(extrasamples) if e in _ALPHA_SAMPLES]
        alpha = [i for i in alpha if is_alpha_channel(array[..., i])]
        if alpha:
            array = np.delete(array, alpha, axis=-1)
        if array.shape[-1] not in (1, 3) or len(alpha) < len(extrasamples):
            axes = axes[:-1] + "C"  # channels of their own, not gray or colour
    return np.ascontiguousarray(array), axes


def read_labels(path: str | os.PathLike) -> np.ndarray:
    """Read a label image (0 = background, k = object k).

    Args:
        path: PNG or TIFF file holding one 2-D integer plane (``uint8``, ``uint16``, ``int32``...).

    Returns:
        ``(H, W)`` ``int32`` label image, values as stored (not relabelled).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: empty, truncated or corrupt file; a colour (RGB) or multi-plane image; float
            or negative values.
    """
    path = _check_file(path)
    suffix = path.suffix.lower()
    if suffix not in LABEL_SUFFIXES:
        raise ValueError(
            f"unsupported label file type {suffix!r} for {path}; use one of "
            f"{', '.join(LABEL_SUFFIXES)} (lossy formats such as JPEG corrupt label values)"
        )
    array = _read_array(path)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim != 2:
        raise ValueError(
            f"{path} holds an array of shape {array.shape}; a label image must be one 2-D "
            "integer plane (H, W), not a colour or multi-plane image: save the labels as a "
            "single-channel uint16 PNG or TIFF"
        )
    try:
        return validate_labels(array)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: {err}") from err


def write_labels(path: str | os.PathLike, labels: np.ndarray) -> None:
    """Write a label image to PNG or TIFF.

    Args:
        path: destination ending in ``.png``, ``.tif`` or ``.tiff``; parent folders are created.
        labels: ``(H, W)`` integer label image, no negative values.

    Stored as ``uint16`` when ``labels.max() < 65536``, else as ``int32`` (TIFF only). TIFFs are
    zlib-compressed. The file is written atomically (:func:`segmentation.atomic.atomic_write`):
    a failed write leaves no truncated file under ``path``.

    Raises:
        TypeError / ValueError: invalid labels (see :func:`validate_labels`), an unsupported
            suffix, or a PNG asked to hold more than 65535 labels.
        segmentation.atomic.OutputError: the file cannot be written (full disk, read-only
            folder...); the message names the path and the fix.
    """
    path = Path(path)
    labels = validate_labels(labels)
    suffix = path.suffix.lower()
    if suffix not in LABEL_SUFFIXES:
        raise ValueError(
            f"unsupported label file type {suffix!r} for {path}; use .png, .tif or .tiff"
        )
    max_label = int(labels.max()) if labels.size else 0
    if max_label < 2**16:
        data = labels.astype(np.uint16)
    elif suffix == ".png":
        raise ValueError(
            f"cannot write {path}: the largest label is {max_label}, more than a 16-bit PNG "
            "holds (65535); write a .tif instead, or relabel with relabel_sequential first"
        )
    else:
        data = labels
    with atomic_write(path, "wb") as f:
        if suffix == ".png":
            Image.fromarray(data).save(f, format="PNG")
        else:
            tifffile.imwrite(f, data, compression="zlib")
