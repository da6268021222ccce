"""Reports of a data-set evaluation: per-image CSV, JSON summary, threshold-curve plot, text table.

Files are written atomically (:mod:`segmentation.atomic`): complete or absent, never truncated.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from segmentation.atomic import atomic_write
from segmentation.evaluation.dataset import DatasetResult

_PAPER_THRESHOLD = 0.7  # F1 at IoU 0.7: the DSB2018 paper's figure (Caicedo et al. 2019)


def _fmt(t: float) -> str:
    return f"{t:g}"


def per_image_rows(result: DatasetResult) -> list[dict[str, object]]:
    """One dict per image: name, object counts, score, mean F1, matched IoU, TP/FP/FN per threshold.

    Keys: ``image, n_true, n_pred, score, mean_f1, [f1@0.7,] mean_matched_iou`` then
    ``tp@t, fp@t, fn@t`` for every threshold ``t`` (``f1@0.7`` only when 0.7 was evaluated).
    """
    has_paper = _PAPER_THRESHOLD in result.thresholds
    rows = []
    for name, r in zip(result.names, result.images, strict=True):
        row: dict[str, object] = {
            "image": name,
            "n_true": r.n_true,
            "n_pred": r.n_pred,
            "score": round(r.mean_score, 6),
            "mean_f1": round(r.mean_f1, 6),
        }
        if has_paper:
            row["f1@0.7"] = round(r.at(_PAPER_THRESHOLD).f1, 6)
        row["mean_matched_iou"] = round(r.mean_matched_iou, 6)
        for i, t in enumerate(r.thresholds):
            row[f"tp@{_fmt(t)}"] = int(r.tp[i])
            row[f"fp@{_fmt(t)}"] = int(r.fp[i])
            row[f"fn@{_fmt(t)}"] = int(r.fn[i])
        rows.append(row)
    return rows


def write_per_image_csv(result: DatasetResult, path) -> Path:
    """Write :func:`per_image_rows` as a CSV file (parent folders created); return the path.

    Written atomically, like every report here: a failed write leaves no truncated file, and
    raises :class:`~segmentation.atomic.OutputError` naming the path and the fix.
    """
    path = Path(path)
    rows = per_image_rows(result)
    with atomic_write(path) as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def summary_dict(result: DatasetResult) -> dict[str, object]:
    """JSON-ready summary: both aggregations, per threshold and averaged.

    Keys: ``n_images, n_true, n_pred, inclusive, thresholds, mean_score`` (competition),
    ``mean_f1`` (pooled), ``f1@0.7`` and ``image_f1@0.7`` (when 0.7 was evaluated), and
    ``per_threshold``: a list of dicts with the pooled ``tp, fp, fn, precision, recall, f1,
    score`` and the per-image means ``image_score, image_f1`` at each threshold.
    """
    out: dict[str, object] = {
        "n_images": result.n_images,
        "n_true": result.n_true,
        "n_pred": result.n_pred,
        "inclusive": result.inclusive,
        "thresholds": list(result.thresholds),
        "mean_score": result.mean_score,
        "mean_f1": result.mean_f1,
    }
    if _PAPER_THRESHOLD in result.thresholds:
        out["f1@0.7"] = result.f1_at(_PAPER_THRESHOLD)
        out["image_f1@0.7"] = result.mean_image_f1_at(_PAPER_THRESHOLD)
    out["per_threshold"] = [
        {
            "threshold": t,
            "tp": int(result.tp[i]),
            "fp": int(result.fp[i]),
            "fn": int(result.fn[i]),
            "precision": float(result.precision[i]),
            "recall": float(result.recall[i]),
            "f1": float(result.f1[i]),
            "score": float(result.score[i]),
            "image_score": float(result.image_score[i]),
            "image_f1": float(result.image_f1[i]),
        }
        for i, t in enumerate(result.thresholds)
    ]
    return out


def write_summary_json(result: DatasetResult, path, extra: dict | None = None) -> Path:
    """Write :func:`summary_dict` (updated with ``extra``, e.g. missing images) as JSON (atomic)."""
    path = Path(path)
    data = summary_dict(result)
    data.update(extra or {})
    text = json.dumps(data, indent=2) + "\n"
    with atomic_write(path) as fh:
        fh.write(text)
    return path


def plot_threshold_curves(
    curves: dict[str, DatasetResult], path, *, title: str | None = None
) -> Path:
    """Plot pooled F1 and the competition score (mean per-image score) against the IoU threshold.

    Args:
        curves: ``{label: DatasetResult}``, one line per entry in each of the two panels.
        path: output image file (PNG, or any format matplotlib infers from the suffix).
        title: optional figure title.

    Uses matplotlib's Agg canvas directly, so no display and no global backend change. Written
    atomically (a failed write leaves no truncated file).
    """
    if not curves:
        raise ValueError("curves is empty; pass at least one {name: DatasetResult}")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.8 + 0.22 * len(curves)), layout="constrained")
    FigureCanvasAgg(fig)
    ax_f1, ax_score = fig.subplots(1, 2, sharex=True, sharey=True)
    for label, res in curves.items():
        line = ax_f1.plot(res.thresholds, res.f1, marker="o")[0]
        ax_score.plot(res.thresholds, res.image_score, marker="o", color=line.get_color())
        line.set_label(f"{label}: F1@0.7 = {_f1_07(res)}, score = {res.mean_score:.3f}")
    ax_f1.set_title("F1 (pooled over images)")
    ax_score.set_title("competition score (mean over images)")
    for ax in (ax_f1, ax_score):
        ax.set_xlabel("IoU threshold")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    # one legend under both panels, so that long names never squeeze the axes
    fig.legend(loc="outside lower center", fontsize="small", ncols=1 if len(curves) > 3 else 2)
    ax_f1.set_ylabel("value")
    if title:
        fig.suptitle(title)
    path = Path(path)
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, dpi=120, format=path.suffix[1:].lower() or "png")
    return path


def _f1_07(res: DatasetResult) -> str:
    return f"{res.f1_at(_PAPER_THRESHOLD):.3f}" if _PAPER_THRESHOLD in res.thresholds else "n/a"


def format_summary_table(result: DatasetResult) -> str:
    """A plain-text table: one row per threshold (pooled counts and ratios, mean image score).

    The last lines give the competition score, the pooled mean F1 and F1 at IoU 0.7.
    """
    header = f"{'IoU>':>6} {'TP':>8} {'FP':>8} {'FN':>8} {'prec':>6} {'recall':>6} {'F1':>6} {'score':>6}"
    if result.inclusive:
        header = header.replace("IoU> ", "IoU>=")
    lines = [header, "-" * len(header)]
    for i, t in enumerate(result.thresholds):
        lines.append(
            f"{t:>6.2f} {result.tp[i]:>8d} {result.fp[i]:>8d} {result.fn[i]:>8d} "
            f"{result.precision[i]:>6.3f} {result.recall[i]:>6.3f} {result.f1[i]:>6.3f} "
            f"{result.image_score[i]:>6.3f}"
        )
    lines.append("-" * len(header))
    lines.append("TP..F1: pooled over images; score: TP/(TP+FP+FN) per image, mean over images")
    lines.append(
        f"images {result.n_images}, true objects {result.n_true}, predicted {result.n_pred}"
    )
    lines.append(f"competition score (mean over images): {result.mean_score:.4f}")
    lines.append(f"mean F1 over thresholds (pooled):     {result.mean_f1:.4f}")
    if _PAPER_THRESHOLD in result.thresholds:
        lines.append(
            f"F1 at IoU 0.7: pooled {result.f1_at(_PAPER_THRESHOLD):.4f}, "
            f"mean over images {result.mean_image_f1_at(_PAPER_THRESHOLD):.4f}"
        )
    return "\n".join(lines)


def print_summary(result: DatasetResult) -> None:
    """Print :func:`format_summary_table` to stdout."""
    print(format_summary_table(result))
