"""A packed cache: a whole data set in one compact ``.npz`` file that loads in seconds.

Layout (plain arrays, no pickles, so ``np.load(..., allow_pickle=False)`` reads it): ``format``
(version), ``names`` (str), ``shapes`` ``(N, 3)`` stored (H, W, C), ``channels`` ``(N,)`` channels
before packing, ``has_labels`` ``(N,)``; ``image_png``: each image as a lossless PNG file (8 or 16
bits as read), one after the other, with ``image_offsets`` ``(N + 1,)``; ``labels_zlib``: each
label image as ``labels_dtype`` (uint16, or int32 when a label exceeds 65535) compressed with zlib,
one after the other, with ``label_offsets`` ``(N + 1,)`` (an empty stream where there are no
labels). PNG's filters compress microscopy images about 20 % better than plain zlib; one stream per
image lets threads decode them in parallel (OpenCV and zlib release the GIL).

Gray images stored as RGB (R = G = B, common in DSB2018) are stored with one channel: they load as
``(H, W, 1)`` unless ``restore_channels=True``.

``codec="webp"`` (format 4, field ``image_codec``) is the compact training encoding of the device kit:
each image is percentile-normalised (:func:`~segmentation.datasets.normalize.normalize_image`),
quantised to 8 bits over ``[CLIP_LOW, CLIP_HIGH]`` and stored as lossy WebP (quality 90). It loads as
a uint8 image that normalises again to (almost) the same values. On DSB2018 stage1_train it is 9.7 MB
against 45 MB of lossless PNG, and the default model scores the same on the validation images either
way (0.5695 against 0.5683: docs/benchmarks.md, "Device kit").
"""

from __future__ import annotations

import os
import zipfile
import zlib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from segmentation.datasets.labels import validate_labels
from segmentation.datasets.sample_type import Sample

FORMAT_VERSION = 4
READABLE_VERSIONS = (3, 4)
CODECS = ("png", "webp")
_WEBP_QUALITY = 90
_PNG_LEVEL = 6  # 1..9: level 6 is ~4x faster to write than 9 and 2 % larger


def _workers(workers: int | None) -> int:
    return max(1, min(8, os.cpu_count() or 1) if workers is None else int(workers))


def _is_gray_rgb(image: np.ndarray) -> bool:
    return image.shape[2] == 3 and bool(
        np.array_equal(image[..., 0], image[..., 1])
        and np.array_equal(image[..., 0], image[..., 2])
    )


def _check(sample: Sample) -> None:
    image = sample.image
    if (
        not isinstance(image, np.ndarray)
        or image.ndim != 3
        or image.shape[2] not in (1, 3)
        or image.dtype not in (np.uint8, np.uint16)
    ):
        raise ValueError(
            f"sample {sample.name!r}: image must be a (H, W, C) uint8/uint16 array with C in "
            f"{{1, 3}}, got {getattr(image, 'dtype', type(image).__name__)} with shape "
            f"{getattr(image, 'shape', None)}; read it with segmentation.datasets.read_image"
        )
    if sample.labels is not None:
        try:
            validate_labels(sample.labels, image.shape)
        except (TypeError, ValueError) as err:
            raise type(err)(f"sample {sample.name!r}: {err}") from err


def _encode(
    sample: Sample, label_dtype: np.dtype, codec: str
) -> tuple[tuple[int, ...], bytes, bytes]:
    image = sample.image[..., :1] if _is_gray_rgb(sample.image) else sample.image
    if codec == "webp":
        from segmentation.datasets.normalize import CLIP_HIGH, CLIP_LOW, normalize_image

        scaled = (normalize_image(image) - CLIP_LOW) * (255.0 / (CLIP_HIGH - CLIP_LOW))
        image = np.rint(scaled).astype(np.uint8)
        # WebP codes colour as YUV from BGR: give it BGR so that its chroma weights are right
        pixels = image[..., 0] if image.shape[2] == 1 else image[..., ::-1]
        ok, data = cv2.imencode(".webp", pixels, [cv2.IMWRITE_WEBP_QUALITY, _WEBP_QUALITY])
    else:
        # OpenCV swaps R and B on encode and again on decode: the round trip keeps the order.
        ok, data = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, _PNG_LEVEL])
    if not ok:
        raise ValueError(f"sample {sample.name!r}: {codec} encoding failed")
    labels = b""
    if sample.labels is not None:
        labels = zlib.compress(np.ascontiguousarray(sample.labels, dtype=label_dtype).tobytes(), 6)
    return image.shape, data.tobytes(), labels


def _offsets(chunks: list[bytes]) -> np.ndarray:
    return np.concatenate(([0], np.cumsum([len(c) for c in chunks]))).astype(np.int64)


def pack_samples(
    samples: Iterable[Sample],
    path: str | os.PathLike,
    *,
    workers: int | None = None,
    codec: str = "png",
) -> Path:
    """Write samples to one compact ``.npz`` file.

    Args:
        samples: :class:`Sample` objects with unique names; images ``(H, W, C)`` uint8/uint16,
            labels ``(H, W)`` integer or ``None``.
        path: destination; ``.npz`` is appended when missing, parent folders are created. The
            file is written under a temporary name and renamed when complete.
        workers: encoding threads (default: up to 8, one per CPU).
        codec: ``"png"`` (lossless, pixel values as read) or ``"webp"`` (normalised to 8 bits,
            lossy; the compact training encoding, see the module docstring).

    Returns:
        The path of the written file. The samples are not modified.
    """
    if codec not in CODECS:
        raise ValueError(f"codec must be one of {CODECS}, got {codec!r}")
    samples = list(samples)
    if not samples:
        raise ValueError("nothing to pack: samples is empty")
    names = [s.name for s in samples]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"sample names must be unique, repeated: {dupes}")
    for sample in samples:
        _check(sample)
    max_label = max(
        (int(s.labels.max()) for s in samples if s.labels is not None and s.labels.size), default=0
    )
    label_dtype = np.dtype(np.uint16 if max_label < 2**16 else np.int32)
    with ThreadPoolExecutor(_workers(workers)) as pool:
        encoded = list(pool.map(lambda s: _encode(s, label_dtype, codec), samples))
    shapes, pngs, labels = zip(*encoded, strict=True)
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.stem + ".partial.npz")  # never leave a half-written cache
    np.savez(
        partial,
        format=np.array(FORMAT_VERSION),
        image_codec=np.array(codec),
        names=np.array(names, dtype=str),
        shapes=np.array(shapes, dtype=np.int64).reshape(-1, 3),
        channels=np.array([s.image.shape[2] for s in samples], dtype=np.int8),
        has_labels=np.array([s.labels is not None for s in samples], dtype=bool),
        image_png=np.frombuffer(b"".join(pngs), dtype=np.uint8),
        image_offsets=_offsets(list(pngs)),
        labels_dtype=np.array(label_dtype.str),
        labels_zlib=np.frombuffer(b"".join(labels), dtype=np.uint8),
        label_offsets=_offsets(list(labels)),
    )
    os.replace(partial, path)
    return path


def load_packed(
    path: str | os.PathLike, *, restore_channels: bool = False, workers: int | None = None
) -> list[Sample]:
    """Read a file written by :func:`pack_samples`.

    Args:
        path: the ``.npz`` file.
        restore_channels: give gray-as-RGB images back their 3 identical channels (exact round
            trip); by default they load as ``(H, W, 1)``, a third of the memory.
        workers: decoding threads (default: up to 8, one per CPU).

    Returns:
        Samples in packed order: images ``(H, W, C)`` uint8/uint16 (uint8 and normalised for the
        ``webp`` codec), labels ``(H, W)`` int32 or ``None``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no packed file at {path}; create one with `segmentation pack DATA --output {path}`"
        )

    def not_a_pack(why: str) -> ValueError:
        return ValueError(
            f"{path} is not a packed data set written by `segmentation pack` ({why}); re-create it "
            f"with `segmentation pack DATA --output {path}`, or point data.root at the data folder"
        )

    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise not_a_pack("it is a single .npy array, not an .npz archive")
        with data:
            if "format" not in data.files:
                raise not_a_pack("it has no pack format field")
            version = int(data["format"])
            if version not in READABLE_VERSIONS:
                raise ValueError(
                    f"{path} has pack format {version}, this version reads "
                    f"{', '.join(map(str, READABLE_VERSIONS))}; re-create it with `segmentation pack`"
                )
            arrays = {key: data[key] for key in data.files}
        codec = str(arrays["image_codec"]) if "image_codec" in arrays else "png"
        label_dtype = np.dtype(str(arrays["labels_dtype"]))
        names = arrays["names"].tolist()
        shapes = [tuple(int(v) for v in s) for s in arrays["shapes"]]
        png, png_at = arrays["image_png"], arrays["image_offsets"]
        zl, zl_at = arrays["labels_zlib"], arrays["label_offsets"]
    except KeyError as err:
        raise not_a_pack(f"the field {err} is missing") from None
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        raise not_a_pack(f"the archive is damaged or truncated: {err}") from None
    except ValueError as err:
        if str(err).startswith(str(path)):  # ours, above
            raise
        # numpy found neither an .npz archive nor an .npy array (it offers to unpickle)
        raise not_a_pack("numpy reads no .npz archive of the pack layout in it") from None

    def decode(i: int) -> Sample:
        shape = shapes[i]
        image = cv2.imdecode(png[png_at[i] : png_at[i + 1]], cv2.IMREAD_UNCHANGED)
        if image is not None and codec == "webp" and image.ndim == 3:  # WebP decodes to BGR
            image = image[..., :1] if shape[2] == 1 else image[..., ::-1]
        if image is None or image.size != np.prod(shape):
            raise ValueError(f"{path}: image {names[i]!r} is corrupt; re-create the file")
        image = np.ascontiguousarray(image).reshape(shape)
        if restore_channels and arrays["channels"][i] != shape[2]:
            image = np.repeat(image, int(arrays["channels"][i]), axis=2)
        labels = None
        if arrays["has_labels"][i]:
            try:
                raw = zlib.decompress(zl[zl_at[i] : zl_at[i + 1]].tobytes())
            except zlib.error as err:
                raise ValueError(f"{path}: labels of {names[i]!r} are corrupt ({err})") from err
            labels = np.frombuffer(raw, dtype=label_dtype).astype(np.int32).reshape(shape[:2])
        return Sample(name=names[i], image=image, labels=labels)

    with ThreadPoolExecutor(_workers(workers)) as pool:
        return list(pool.map(decode, range(len(names))))
