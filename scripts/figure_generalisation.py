"""Overlays of two models on images unlike their training data, side by side, to inspect by eye.

Cases: scikit-image's immunohistochemistry image (bundled, offline; no annotation), the H&E images
and a fluorescence image of the held-out acquisition groups of DSB2018 (annotated: their scores are
printed), an RGB fluorescence composite: a held-out nuclear image in blue beside a bright
non-nuclear (cytoplasm-like) channel in red, made from the same image by dilating its nuclei into
a textured ring, so that a model must ignore a bright channel that is not nuclear; and a
brightfield validation image (DSB2018's one brightfield experiment is kept for training, so no
brightfield group is held out); and, where ``../shared/data`` holds them, images of the held-out
sources (other labs: a dense TCGA H&E tile, a TCGA tile at twice its size, a Huh7 image).

Usage:
  python scripts/figure_generalisation.py --model old=OLD.pt --model new=NEW.pt@hematoxylin \\
      [--data cache/stage1_train.npz] [--output docs/figures/generalisation_overlays.png]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import ndimage as ndi  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from segmentation.datasets.sample_type import Sample  # noqa: E402
from segmentation.evaluation.dataset import evaluate_dataset  # noqa: E402
from segmentation.inference import (  # noqa: E402
    SegmentOptions,
    load_default_model,
    load_model,
    segment,
)
from segmentation.training.config import DataConfig  # noqa: E402
from segmentation.training.data import load_samples, split_three  # noqa: E402
from segmentation.visualize import overlay_outlines  # noqa: E402


def rgb_fluorescence(sample: Sample, seed: int = 0) -> Sample:
    """Blue nuclei (the sample's gray image) and a red textured cytoplasm-like channel."""
    gray = sample.image[..., 0].astype(np.float32)
    rng = np.random.default_rng(seed)
    ring = ndi.grey_dilation(gray, size=(15, 15)) - gray
    texture = ndi.gaussian_filter(rng.random(gray.shape).astype(np.float32), 2)
    red = np.clip(ring * (0.6 + 0.8 * texture), 0, None)
    image = np.stack([red, 0.2 * red, gray], axis=2)
    image = (255 * image / max(float(image.max()), 1.0)).astype(np.uint8)
    return Sample(f"{sample.name}-rgb", image, sample.labels)


def cases(data: str) -> list[tuple[str, Sample]]:
    """(title, sample) pairs; labels None where there is no annotation."""
    from skimage import data as skdata

    config = DataConfig(
        root=data,
        split="group",
        test_fraction=0.25,
        groups="configs/groups/dsb2018_bbbc039.csv",
    )
    _, val, test = split_three(load_samples(config), config, extra=[])
    groups = {s.name: s for s in [*test, *val]}
    from segmentation.datasets.groups import read_group_table

    table = read_group_table(config.groups)
    he = [s for s in test if table[s.name] in ("histology-256x320-7", "histology-256x320-6")]
    purple = [s for s in test if table[s.name] == "histology-256x320-5"][:1]
    fluo = [s for s in test if table[s.name] == "fluorescence-360x360-1"][:1]
    # brightfield: DSB2018 has one experiment, kept for training; a validation image of it
    bright = [s for s in val if table[s.name].startswith("brightfield")][:1]
    ihc = skdata.immunohistochemistry()[256:, 256:]  # a quarter: the nuclei stay visible
    out = [("IHC (skimage.data, lower right quarter, no annotation)", Sample("ihc", ihc))]
    out += [(f"H&E, held-out group ({s.name[:8]})", s) for s in he[:2]]
    out += [(f"stained tissue, held-out group ({s.name[:8]})", s) for s in purple]
    out += [(f"fluorescence, held-out group ({s.name[:8]})", s) for s in fluo]
    out += [("RGB fluorescence composite (blue nuclei)", rgb_fluorescence(s)) for s in fluo]
    out += [(f"brightfield, validation; group seen ({s.name[:8]})", s) for s in bright]
    assert all(s.name in groups or s.labels is None or s.name.endswith("-rgb") for _, s in out)
    return out + source_cases()


def source_cases() -> list[tuple[str, Sample]]:
    """Images of the held-out sources (other labs), when ``../shared/data`` holds them: a dense
    TCGA H&E tile (no bright background), a TCGA tile shown at twice its size (nuclei of about
    47 px, which a first pass cuts into pieces), and a Huh7 fluorescence image."""
    from bench_auto_diameter import resized

    from segmentation.evaluation.heldout import load_source

    try:
        tcga, huh7 = load_source("tcga"), load_source("huh7")
    except FileNotFoundError:
        return []
    by_name = {s.name: s for s in tcga}
    dense, plain = by_name["TCGA-DU-5847-R01_1"], by_name["TCGA-DB-5270-R01_1"]
    return [
        (f"dense H&E, held-out source ({dense.name})", dense),
        (f"H&E at 2x, held-out source ({plain.name})", resized(plain, 2.0)),
        (f"Hoechst, held-out source ({huh7[0].name})", huh7[0]),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model",
        action="append",
        required=True,
        help="NAME=PATH or NAME=PATH@VIEW (PATH 'default': the shipped model; VIEW: rgb or "
        "hematoxylin, how stained tissue is shown)",
    )
    parser.add_argument("--data", default="cache/stage1_train.npz")
    parser.add_argument("--output", default="docs/figures/generalisation_overlays.png")
    args = parser.parse_args()
    models = []
    for spec in args.model:  # NAME=PATH or NAME=PATH@VIEW (the stained_view segment() uses)
        name, path = spec.split("=", 1)
        path, _, view = path.partition("@")
        model = load_default_model("cpu") if path == "default" else load_model(path, "cpu")
        models.append((name, model, SegmentOptions(stained_view=view or None)))
    rows = cases(args.data)
    fig, axes = plt.subplots(len(rows), len(models), figsize=(4.2 * len(models), 3.6 * len(rows)))
    axes = np.atleast_2d(axes)
    for r, (title, sample) in enumerate(rows):
        for c, (name, model, options) in enumerate(models):
            labels = segment(sample.image, model, options=options)
            text = f"{name}: {int(labels.max())} nuclei"
            if sample.labels is not None:
                score = evaluate_dataset([(sample.labels, labels)]).mean_score
                text += f" (of {int(sample.labels.max())}), score {score:.2f}"
            print(f"{title} | {text}")
            ax = axes[r, c]
            ax.imshow(overlay_outlines(sample.image, labels))
            ax.set_title(f"{title}\n{text}", fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(args.output, dpi=90)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
