"""Kaggle run-length encoding (DSB2018) and the solution/submission CSV files.

Definition used by the competition: pixels are numbered from 1, top to bottom, then left to right
(column-major: pixel 1 is ``(0, 0)``, pixel 2 is ``(1, 0)``, pixel ``H + 1`` is ``(0, 1)``). A mask is
the string ``"start length start length ..."`` of its runs, starts increasing and runs not touching
one another. One CSV row per nucleus; an image without nuclei is one row with an empty
``EncodedPixels``.

CSV files are read as UTF-8 with or without a byte-order mark; errors name the file and line.
Submissions are written atomically (a temporary file, then a rename).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Collection, Mapping
from pathlib import Path

import numpy as np

from segmentation.atomic import atomic_write
from segmentation.datasets.labels import validate_labels


def _runs(positions: np.ndarray) -> np.ndarray:
    """Sorted 0-based flat positions -> ``(n, 2)`` array of (1-based start, length)."""
    if positions.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    breaks = np.flatnonzero(np.diff(positions) != 1) + 1
    starts = np.concatenate(([0], breaks))
    ends = np.concatenate((breaks, [positions.size]))
    return np.stack([positions[starts] + 1, ends - starts], axis=1)


def _format(runs: np.ndarray) -> str:
    return " ".join(map(str, runs.ravel().tolist()))


def rle_encode(mask: np.ndarray) -> str:
    """Encode one binary mask.

    Args:
        mask: ``(H, W)`` bool array, or integer array holding only 0 and 1.

    Returns:
        ``"start length ..."`` (1-based, column-major, sorted); ``""`` for an empty mask.
    """
    if not isinstance(mask, np.ndarray) or mask.ndim != 2:
        shape = getattr(mask, "shape", None)
        raise ValueError(f"mask must be a 2-D (H, W) numpy array, got shape {shape}")
    if mask.dtype != bool:
        if mask.dtype.kind not in "iu" or (mask.size and not np.isin(mask, (0, 1)).all()):
            raise ValueError(
                f"mask must be bool or hold only 0/1, got {mask.dtype} with values "
                f"{np.unique(mask)[:5].tolist()}...; for a label image use labels_to_rles, "
                "for one object use rle_encode(labels == k)"
            )
        mask = mask != 0
    return _format(_runs(np.flatnonzero(mask.T)))


def rle_decode(rle: str, shape: tuple[int, int]) -> np.ndarray:
    """Decode one run-length string.

    Args:
        rle: ``"start length ..."`` (1-based, column-major); ``""`` gives an empty mask.
        shape: ``(H, W)`` of the image.

    Returns:
        ``(H, W)`` bool mask.

    Raises:
        ValueError: odd number of values, non-integers (also numbers of 20 digits or more), starts
            < 1, lengths < 1, runs out of order or overlapping, or runs beyond ``H * W``.
    """
    if len(shape) != 2 or min(shape) < 0:
        raise ValueError(f"shape must be (H, W), got {shape}")
    height, width = int(shape[0]), int(shape[1])
    flat = np.zeros(height * width, dtype=bool)
    text = "" if rle is None else str(rle).strip()
    if text:
        tokens = text.split()
        try:
            values = np.array(tokens, dtype=np.int64)
        except (ValueError, OverflowError) as err:
            raise ValueError(f"RLE must hold integers: {_bad_token(tokens)}") from err
        if values.size % 2:
            raise ValueError(f"RLE needs 'start length' pairs, got {values.size} values")
        starts, lengths = values[0::2] - 1, values[1::2]
        if starts.min() < 0 or lengths.min() < 1:
            raise ValueError("RLE starts are 1-based and lengths must be >= 1")
        if starts.max() >= flat.size or lengths.max() > flat.size:  # before any sum can overflow
            raise ValueError(
                f"RLE run beyond the image's {flat.size} pixels (start {int(starts.max()) + 1}, "
                f"length {int(lengths.max())}; shape {shape}); check the shape (H, W)"
            )
        ends = starts + lengths
        if np.any(starts[1:] < ends[:-1]):
            raise ValueError("RLE runs must be sorted by start and must not overlap")
        if ends[-1] > flat.size:
            raise ValueError(
                f"RLE run ends at pixel {int(ends[-1])} beyond the image's {flat.size} pixels "
                f"(shape {shape}); check the shape (H, W)"
            )
        marks = np.zeros(flat.size + 1, dtype=np.int32)
        np.add.at(marks, starts, 1)
        np.add.at(marks, ends, -1)
        flat = np.cumsum(marks[:-1]) > 0
    return flat.reshape(width, height).T


def _bad_token(tokens: list[str]) -> str:
    """Say which token of an RLE string is not an int64, e.g. ``'12345678901234567890' ...``."""
    for token in tokens:
        try:
            value = int(token)
        except ValueError:
            return f"{token[:30]!r} is not an integer"
        if not -(2**63) <= value < 2**63:
            return (
                f"{token[:30]} has {len(token.lstrip('+-'))} digits, too large for a pixel number"
            )
    return f"{' '.join(tokens)[:60]!r}"


def labels_to_rles(labels: np.ndarray) -> list[str]:
    """Encode every object of a label image.

    Args:
        labels: ``(H, W)`` integer label image, 0 = background.

    Returns:
        One RLE string per object present, in increasing label order (absent label values are
        skipped, so the list has as many entries as there are distinct nonzero labels).
    """
    labels = validate_labels(labels)
    column_major = labels.T.ravel()
    positions = np.flatnonzero(column_major)
    values = column_major[positions]
    order = np.argsort(values, kind="stable")  # positions stay increasing within a label
    positions, values = positions[order], values[order]
    splits = np.flatnonzero(np.diff(values)) + 1
    return [_format(_runs(p)) for p in np.split(positions, splits)] if positions.size else []


#: Height or Width above this is refused (it is no image, and would not fit in memory).
_MAX_SIDE = 2**31 - 1


def read_rle_rows(path: str | os.PathLike) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header and rows of a Kaggle solution or submission CSV, without decoding the RLEs.

    Args:
        path: CSV file, UTF-8 with or without a byte-order mark (as Excel saves "CSV UTF-8").

    Returns:
        ``(fields, rows)``: the column names (stripped) and, per data row, ``(line, row)`` with the
        row's line number in the file (for messages) and ``{column: value}``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not UTF-8 text, malformed CSV, or no ``ImageId``/``EncodedPixels`` columns.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such CSV file: {path}")
    rows: list[tuple[int, dict[str, str]]] = []
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            fields = [name.strip() for name in (reader.fieldnames or [])]
            reader.fieldnames = fields
            for row in reader:
                rows.append((reader.line_num, row))
    except UnicodeDecodeError as err:
        raise ValueError(
            f"{path} is not UTF-8 text ({err.reason} at byte {err.start}); save it as UTF-8 CSV"
        ) from err
    except csv.Error as err:
        raise ValueError(f"{path}, line {reader.line_num}: malformed CSV: {err}") from err
    if "ImageId" not in fields or "EncodedPixels" not in fields:
        raise ValueError(
            f"{path} needs the columns ImageId,EncodedPixels[,Height,Width], found {fields}"
        )
    return fields, rows


def _row_shape(path: Path, line: int, row: dict[str, str]) -> tuple[int, int]:
    try:
        shape = (int(row["Height"]), int(row["Width"]))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}, line {line}: Height/Width must be integers") from err
    if not all(1 <= side <= _MAX_SIDE for side in shape):
        raise ValueError(
            f"{path}, line {line}: Height/Width {shape} must lie in 1..{_MAX_SIDE}; check the "
            "columns"
        )
    return shape


def read_rle_csv(
    path: str | os.PathLike,
    shapes: Mapping[str, tuple[int, int]] | None = None,
    *,
    keep: Collection[str] | None = None,
) -> dict[str, np.ndarray]:
    """Read a Kaggle solution or submission CSV into label images.

    Args:
        path: CSV with ``ImageId,EncodedPixels,Height,Width`` (solution; other columns such as
            ``Usage`` are ignored) or ``ImageId,EncodedPixels`` (submission); UTF-8, with or
            without a byte-order mark.
        shapes: ``{image_id: (H, W)}``, required when the CSV has no Height/Width columns; when
            both are present they must agree.
        keep: decode only these image ids (default: all); the other rows are not checked.

    Returns:
        ``{image_id: (H, W) int32 labels}`` in order of first appearance; the nucleus on the i-th
        row of an image gets label i; an image whose only row is empty has no nucleus.

    Raises:
        ValueError: missing columns or shapes, bad RLE strings (numbers too large included), or
            overlapping nuclei; messages name the file, the line and the image id (the
            competition rejected overlapping submissions too).
    """
    path = Path(path)
    fields, rows = read_rle_rows(path)
    has_shape = "Height" in fields and "Width" in fields
    by_image: dict[str, list[tuple[int, str]]] = {}
    row_shapes: dict[str, tuple[int, int]] = {}
    for line, row in rows:
        image_id = (row["ImageId"] or "").strip()
        if not image_id:
            raise ValueError(f"{path}, line {line}: empty ImageId")
        if keep is not None and image_id not in keep:
            continue
        by_image.setdefault(image_id, []).append((line, (row["EncodedPixels"] or "").strip()))
        if has_shape:
            shape = _row_shape(path, line, row)
            if row_shapes.setdefault(image_id, shape) != shape:
                raise ValueError(f"{path}, line {line}: {image_id} has two different shapes")
    result = {}
    for image_id, rles in by_image.items():
        shape = row_shapes.get(image_id)
        if shapes is not None and image_id in shapes:
            given = tuple(int(s) for s in shapes[image_id])
            if shape is not None and shape != given:
                raise ValueError(f"{image_id}: the CSV says shape {shape} but shapes= says {given}")
            shape = given
        if shape is None:
            raise ValueError(
                f"{path} has no Height/Width columns and no shape for image {image_id!r}; pass "
                "shapes={image_id: (H, W)} for every image"
            )
        labels = np.zeros(shape, dtype=np.int32)
        for k, (line, rle) in enumerate(((n, r) for n, r in rles if r), start=1):
            try:
                mask = rle_decode(rle, shape)
            except ValueError as err:
                raise ValueError(
                    f"{path}, line {line}: image {image_id}, nucleus {k}: {err}"
                ) from err
            if np.any(labels[mask]):
                raise ValueError(
                    f"{path}, line {line}: image {image_id}: nucleus {k} overlaps an earlier "
                    f"nucleus ({int(np.count_nonzero(labels[mask]))} pixels); overlapping masks "
                    "are not allowed in DSB2018 submissions"
                )
            labels[mask] = k
        result[image_id] = labels
    return result


def write_submission_csv(path: str | os.PathLike, labels_by_id: Mapping[str, np.ndarray]) -> None:
    """Write label images as a Kaggle submission CSV (``ImageId,EncodedPixels``).

    Args:
        path: destination CSV; parent folders are created.
        labels_by_id: ``{image_id: (H, W) integer label image}``.

    Images are written in sorted id order, nuclei in label order, runs sorted; a label image
    cannot hold overlaps, so none are written. An image with no nucleus gets one row with an
    empty ``EncodedPixels``. The file is written atomically: a failed write leaves no truncated
    CSV under ``path``.

    Raises:
        TypeError / ValueError: an invalid label image (named by its id).
        segmentation.atomic.OutputError: the file cannot be written (message names path and fix).
    """
    path = Path(path)
    encoded = {}
    for image_id in sorted(labels_by_id):
        try:
            encoded[image_id] = labels_to_rles(labels_by_id[image_id])
        except (TypeError, ValueError) as err:
            raise type(err)(f"image {image_id}: {err}") from err
    with atomic_write(path) as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["ImageId", "EncodedPixels"])
        for image_id, rles in encoded.items():
            for rle in rles or [""]:
                writer.writerow([image_id, rle])
