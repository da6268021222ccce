"""Draw the training targets of the dense families for one real image: ``docs/figures/maps.png``.

Panels: the image and its annotation; the three U-Net maps (body, border, contact); the FPN energy
(distance to the nucleus boundary, normalised per nucleus) and angle (direction towards the
nucleus centre as a hue, with arrows on a zoomed crop). The image comes from the bundled sample.

Run: ``.venv/bin/python scripts/figure_maps.py [--name histo-medium-7f556782]
[--output docs/figures/maps.png]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import hsv_to_rgb  # noqa: E402
from skimage.segmentation import find_boundaries  # noqa: E402

from segmentation.datasets.sample_data import load_sample  # noqa: E402
from segmentation.models.fpn.targets import encode_targets as fpn_targets  # noqa: E402
from segmentation.models.unet.targets import encode_targets as unet_targets  # noqa: E402


def label_colours(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """``(H, W)`` labels -> ``(H, W, 3)`` float RGB: a random colour per nucleus, dark outlines."""
    rng = np.random.default_rng(seed)
    colours = rng.uniform(0.35, 1.0, (int(labels.max()) + 1, 3))
    colours[0] = 0.0
    rgb = colours[labels]
    rgb[find_boundaries(labels, mode="inner")] *= 0.3
    return rgb


def angle_rgb(foreground: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """Direction field as colour: hue = angle of (cos, sin), black on the background."""
    hue = (np.arctan2(sin, cos) / (2 * np.pi)) % 1.0
    value = foreground * np.hypot(cos, sin).clip(0, 1)
    return hsv_to_rgb(np.stack([hue, np.ones_like(hue), value], axis=-1))


def busiest_crop(labels: np.ndarray, size: int) -> tuple[slice, slice]:
    """The ``size`` x ``size`` window (on a coarse grid) holding the most nuclei."""
    best, best_box = -1, (slice(0, size), slice(0, size))
    h, w = labels.shape
    for r in range(0, max(h - size, 0) + 1, size // 4):
        for c in range(0, max(w - size, 0) + 1, size // 4):
            box = (slice(r, r + size), slice(c, c + size))
            count = len(np.unique(labels[box]))
            if count > best:
                best, best_box = count, box
    return best_box


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", default="histo-medium-7f556782", help="bundled sample name")
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "figures" / "maps.png")
    args = parser.parse_args(argv)
    samples = {s.name: s for s in load_sample()}
    if args.name not in samples:
        parser.error(f"no bundled sample {args.name!r}; choose from {sorted(samples)}")
    sample = samples[args.name]
    labels = sample.labels
    body, border, contact = unet_targets(labels)
    foreground, energy, cos, sin = fpn_targets(labels)

    fig, axes = plt.subplots(2, 4, figsize=(16, 8.6))
    panels = [
        (sample.image, None, f"image ({args.name})"),
        (label_colours(labels), None, f"annotation: {labels.max()} nuclei"),
        (body, "gray", "U-Net body"),
        (border, "gray", "U-Net border (band grows with size)"),
        (contact, "gray", "U-Net contact (touching / 1-px gaps)"),
        (energy, "magma", "FPN energy (per-nucleus normalised)"),
        (angle_rgb(foreground, cos, sin), None, "FPN angle (hue = direction to centre)"),
    ]
    for ax, (img, cmap, title) in zip(axes.flat, panels, strict=False):
        ax.imshow(img, cmap=cmap, interpolation="nearest", vmin=0, vmax=1)
        ax.set_title(title, fontsize=11)
        ax.axis("off")
    rows, cols = busiest_crop(labels, 48)
    ax = axes.flat[7]
    ax.imshow(label_colours(labels)[rows, cols], interpolation="nearest")
    yy, xx = np.mgrid[rows, cols]
    step = 3
    keep = foreground[rows, cols][::step, ::step] > 0
    ax.quiver(
        (xx - cols.start)[::step, ::step][keep],
        (yy - rows.start)[::step, ::step][keep],
        cos[rows, cols][::step, ::step][keep],
        -sin[rows, cols][::step, ::step][keep],  # image rows grow downwards
        color="white",
        scale=24,
        width=0.006,
    )
    ax.set_title(f"FPN (cos, sin) arrows, rows {rows.start}-{rows.stop}", fontsize=11)
    ax.axis("off")
    fig.tight_layout()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output, dpi=80)
    print(f"wrote {args.output} ({args.output.stat().st_size / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
