"""The benchmark's pictures: a speed/accuracy scatter and a grid of example outlines (the
threshold curves come from :func:`segmentation.evaluation.report.plot_threshold_curves`)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from segmentation.datasets.sample_type import Sample


def _figure(size: tuple[float, float]):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def plot_speed_accuracy(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """Competition score against total milliseconds per image (log axis), one point each.

    Args:
        rows: metrics dicts with ``name``, ``score`` and ``total_ms_per_image``.
        path: output PNG.
    """
    fig = _figure((6.5, 3.6 + 0.22 * len(rows)))
    ax = fig.subplots()
    markers = "osD^vP*X"
    for i, row in enumerate(rows):
        ms = max(float(row["total_ms_per_image"]), 1e-3)
        label = f"{row['name']} ({row['score']:.3f}, {ms:.0f} ms)"
        ax.scatter(ms, row["score"], s=50, marker=markers[i % len(markers)], label=label)
    ax.set_xscale("log")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("milliseconds per test image (network + post-processing)")
    ax.set_ylabel("competition score (test split)")
    ax.grid(alpha=0.3, which="both")
    # the legend under the axes, so that long names never squeeze them
    fig.legend(loc="outside lower center", fontsize="small")
    path = Path(path)
    fig.savefig(path, dpi=120)
    return path


def _crop_box(labels: np.ndarray, side: int = 256) -> tuple[slice, slice]:
    """A ``side`` x ``side`` window around the densest part of the image (whole if smaller)."""
    h, w = labels.shape
    if h <= side and w <= side:
        return slice(0, h), slice(0, w)
    ys, xs = np.nonzero(labels)
    cy, cx = (int(np.median(ys)), int(np.median(xs))) if len(ys) else (h // 2, w // 2)
    y0 = min(max(0, cy - side // 2), max(0, h - side))
    x0 = min(max(0, cx - side // 2), max(0, w - side))
    return slice(y0, y0 + side), slice(x0, x0 + side)


def plot_examples(samples: list[Sample], results: list[Any], path: str | Path) -> Path:
    """A grid: one row per example image, columns = ground truth then each architecture's
    outlines (256 x 256 windows of larger images), each titled with its image score.

    Args:
        samples: the example test samples.
        results: :class:`~segmentation.benchmark.runner.ArchitectureResult` objects whose
            ``examples`` hold the predicted labels of these samples.
        path: output PNG.
    """
    from segmentation.evaluation.matching import dsb_score
    from segmentation.visualize import overlay_outlines

    columns = 1 + len(results)
    fig = _figure((2.0 * columns, 2.3 * max(1, len(samples))))
    axes = np.atleast_2d(fig.subplots(max(1, len(samples)), columns, squeeze=False))
    for row, sample in enumerate(samples):
        box = _crop_box(sample.labels)
        image = sample.image[box]
        panels = [("ground truth", sample.labels)]
        panels += [(r.name, r.examples[sample.name]) for r in results]
        for col, (title, labels) in enumerate(panels):
            ax = axes[row, col]
            ax.imshow(overlay_outlines(image, labels[box]))
            title = "\n".join(textwrap.wrap(title, 24))
            if col:
                title = f"{title}\nscore {dsb_score(sample.labels, labels):.3f}"
            ax.set_title(title, fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[row, 0].set_ylabel(sample.name[:12], fontsize=7)
    path = Path(path)
    fig.savefig(path, dpi=80)
    return path
