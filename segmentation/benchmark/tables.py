"""The benchmark's tables: Markdown (for people and docs), CSV (one row per architecture) and JSON
(everything, with the run record and the per-threshold curves)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from segmentation.datasets.image_types import IMAGE_TYPES

#: Columns of results.csv, in order (per-type scores and counts follow).
CSV_COLUMNS = (
    "name",
    "family",
    "score",
    "f1_0.5",
    "f1_0.7",
    "f1_0.9",
    "precision_0.7",
    "recall_0.7",
    "oracle",
    "parameters",
    "members",
    "train_seconds",
    "train_crops",
    "train_epochs",
    "network_ms_per_image",
    "post_ms_per_image",
    "total_ms_per_image",
    "network_mpx_per_s",
    "post_mpx_per_s",
    "total_mpx_per_s",
    "peak_cpu_mb",
    "peak_gpu_mb",
    "source",
    "note",
)


def _num(value: Any, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def _markdown(headers: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def markdown_tables(rows: list[dict[str, Any]], record: dict[str, Any]) -> str:
    """The three tables (accuracy, speed and memory, score by image type) with the run header.

    Args:
        rows: each architecture's metrics (see :mod:`segmentation.benchmark.runner`).
        record: the run record (:func:`segmentation.benchmark.record.run_record`).
    """
    head = [
        f"# Benchmark {record.get('config_path') or ''}".rstrip(),
        "",
        f"- date: {record['date']}; git commit: {record['git_commit']}"
        + (" (with uncommitted changes)" if record.get("git_dirty") else ""),
        f"- machine: {record['machine']['summary']}; device: {record['device']}",
        f"- seed: {record['seed']}; split: {record.get('split', '')}",
        f"- budget (shared train section): {record['config'].get('train') or 'recipes own'}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in (record.get("versions") or {}).items()),
        "",
        "## Accuracy on the test split",
        "",
        "score = competition score (mean over images of the mean over IoU 0.5-0.95 of "
        "TP/(TP+FP+FN)); F1, precision (P) and recall (R) pool the matches of all test images; "
        "oracle = the score of the family's decoding on perfect network outputs.",
        "",
    ]
    acc = []
    for r in rows:
        minutes = r.get("train_seconds")
        acc.append(
            [
                r["name"],
                _num(r["score"], ".4f"),
                _num(r["f1_0.5"], ".3f"),
                _num(r["f1_0.7"], ".3f"),
                _num(r["f1_0.9"], ".3f"),
                _num(r["precision_0.7"], ".3f"),
                _num(r["recall_0.7"], ".3f"),
                _num(r.get("oracle"), ".4f"),
                _num(r["parameters"] / 1e6, ".2f"),
                _num(None if minutes is None else minutes / 60, ".1f"),
                _num(r.get("train_crops"), "d"),
            ]
        )
    lines = head + _markdown(
        [
            "architecture",
            "score",
            "F1@0.5",
            "F1@0.7",
            "F1@0.9",
            "P@0.7",
            "R@0.7",
            "oracle",
            "params (M)",
            "train (min)",
            "train crops",
        ],
        acc,
    )
    base = next((r for r in rows if r.get("source") == "classical"), None)
    reference = base["total_ms_per_image"] if base else None
    speed = [
        [
            r["name"],
            _num(r["network_ms_per_image"], ".0f"),
            _num(r["post_ms_per_image"], ".0f"),
            _num(r["total_ms_per_image"], ".0f"),
            _num(r["total_ms_per_image"] / reference if reference else None, ".1f"),
            _num(r["network_mpx_per_s"], ".2f"),
            _num(r["post_mpx_per_s"], ".2f"),
            _num(r["peak_cpu_mb"], ".0f"),
            _num(r["peak_gpu_mb"], ".0f"),
        ]
        for r in rows
    ]
    lines += ["", "## Speed and memory (segmenting the test split)", ""]
    if base:
        lines += [f"time ratio: total time / that of {base['name']} in the same run.", ""]
    lines += _markdown(
        [
            "architecture",
            "network ms/image",
            "post-processing ms/image",
            "total ms/image",
            "time ratio",
            "network MP/s",
            "post-processing MP/s",
            "peak CPU MiB",
            "peak GPU MiB",
        ],
        speed,
    )
    counts = {k: rows[0][f"images_{k}"] for k in IMAGE_TYPES}
    lines += ["", "## Score by image type (test split)", ""]
    lines += _markdown(
        ["architecture"] + [f"{k} ({counts[k]} images)" for k in IMAGE_TYPES],
        [[r["name"]] + [_num(r[f"score_{k}"], ".4f") for k in IMAGE_TYPES] for r in rows],
    )
    notes = [f"- {r['name']}: {r.get('source', '')}. {r['note']}".rstrip() for r in rows]
    lines += ["", "## Notes", "", *notes, ""]
    lines += ["![threshold curves](threshold_curves.png)", "", "![speed](speed_accuracy.png)"]
    lines += ["", "![examples](examples.png)", ""]
    return "\n".join(lines)


def write_tables(results: list[Any], record: dict[str, Any], out: Path) -> list[Path]:
    """Write ``results.md``, ``results.csv`` and ``results.json`` into ``out``.

    Args:
        results: :class:`~segmentation.benchmark.runner.ArchitectureResult` objects.
        record: the run record.
        out: output folder (created).
    """
    rows = [r.metrics for r in results]
    curves = {
        r.name: {
            "iou_thresholds": [float(t) for t in r.result.thresholds],
            "f1": [float(v) for v in r.result.f1],
            "score": [float(v) for v in r.result.image_score],
        }
        for r in results
    }
    return write_rows(rows, curves, record, out)


def write_rows(
    rows: list[dict[str, Any]],
    curves: dict[str, dict[str, list[float]]],
    record: dict[str, Any],
    out: Path,
) -> list[Path]:
    """:func:`write_tables` from the rows and curves themselves (as ``results.json`` holds them).

    Args:
        rows: each architecture's metrics.
        curves: ``{name: {"iou_thresholds", "f1", "score"}}``, lists of 10 floats.
        record: the run record.
        out: output folder (created).
    """
    out.mkdir(parents=True, exist_ok=True)
    md = out / "results.md"
    md.write_text(markdown_tables(rows, record))
    columns = list(CSV_COLUMNS)
    columns += [f"score_{k}" for k in IMAGE_TYPES] + [f"images_{k}" for k in IMAGE_TYPES]
    path_csv = out / "results.csv"
    with path_csv.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    path_json = out / "results.json"
    payload = {"record": record, "rows": rows, "curves": curves}
    path_json.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return [md, path_csv, path_json]
