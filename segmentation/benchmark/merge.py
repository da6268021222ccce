"""One table from the parts of a benchmark run as ``segmentation benchmark FILE --only NAME ...``
in several processes or on several machines: :func:`merge_parts`.

The parts must have run the same file's split, data and budget (their run records are compared);
their rows are joined in the order of the parts, and the merged run record keeps each part's
record (commit, machine, date, versions) under ``parts``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: Sections of a part's config that must agree for its rows to be comparable with the others'.
SHARED = ("data", "train", "seed", "device", "test")


def _read_part(folder: Path) -> dict[str, Any]:
    path = folder / "results.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{str(folder)!r} holds no results.json: give the output folders of finished "
            "`segmentation benchmark` runs"
        )
    return json.loads(path.read_text())


def merge_parts(folders: list[str | Path], out: str | Path) -> Path:
    """Join the results of benchmark parts into one ``results.md`` / ``.csv`` / ``.json`` and
    ``speed_accuracy.png`` in ``out``.

    Args:
        folders: output folders of finished parts (each with its ``results.json``), at least two.
        out: the merged output folder (created).

    Returns:
        ``out`` as a Path.

    Raises:
        ValueError: fewer than two parts, parts with another split or shared config section
            (the section is named), or an architecture name in two parts.
        FileNotFoundError: a folder without ``results.json``.
    """
    from segmentation.benchmark.plots import plot_speed_accuracy
    from segmentation.benchmark.tables import write_rows

    folders = [Path(f) for f in folders]
    if len(folders) < 2:
        raise ValueError("merging needs the output folders of at least two benchmark parts")
    parts = [_read_part(f) for f in folders]
    first = parts[0]["record"]
    for folder, part in zip(folders[1:], parts[1:], strict=True):
        record = part["record"]
        if record.get("split") != first.get("split"):
            raise ValueError(
                f"{str(folder)!r} ran on another split ({record.get('split')!r}) than "
                f"{str(folders[0])!r} ({first.get('split')!r}): its rows are not comparable"
            )
        for key in SHARED:
            if record["config"].get(key) != first["config"].get(key):
                raise ValueError(
                    f"{str(folder)!r} and {str(folders[0])!r} differ in the benchmark's "
                    f"{key!r} section: their rows are not comparable"
                )
    rows, curves, seen = [], {}, {}
    for folder, part in zip(folders, parts, strict=True):
        for row in part["rows"]:
            if row["name"] in seen:
                raise ValueError(
                    f"{row['name']!r} is in both {str(seen[row['name']])!r} and {str(folder)!r}"
                )
            seen[row["name"]] = folder
            rows.append(row)
        curves.update(part["curves"])
    record = {**first, "parts": {str(f): p["record"] for f, p in zip(folders, parts, strict=True)}}
    out = Path(out)
    write_rows(rows, curves, record, out)
    plot_speed_accuracy(rows, out / "speed_accuracy.png")
    return out
