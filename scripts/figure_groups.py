"""Draw the acquisition groups of a data set (a row of thumbnails per group) to check them by eye.

Usage: python scripts/figure_groups.py [DATA] [--extra EXTRA ...] [--output FILE] [--distance D]
    [--table CSV]
DATA: a packed cache or DSB2018 folder (default cache/stage1_train.npz); EXTRA: data sets used
for training only (their groups are marked "kept": never held out). Held-out groups of
``group_split(test_fraction=0.25, seed=0)`` are marked "held out". ``--table`` also writes the
groups of DATA and EXTRA as a CSV for ``data.groups``. The stored table and figure were made with:

    python scripts/figure_groups.py cache/stage1_train.npz --extra cache/bbbc039.npz \
        --table configs/groups/dsb2018_bbbc039.csv
"""

from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from segmentation.datasets.groups import (  # noqa: E402
    DISTANCE,
    acquisition_groups,
    group_split,
    write_group_table,
)
from segmentation.datasets.normalize import normalize_image  # noqa: E402
from segmentation.training.config import DataConfig  # noqa: E402
from segmentation.training.data import load_samples  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", nargs="?", default="cache/stage1_train.npz")
    parser.add_argument("--extra", nargs="*", default=[])
    parser.add_argument("--output", default="docs/figures/acquisition_groups.png")
    parser.add_argument("--distance", type=float, default=DISTANCE)
    parser.add_argument("--per-group", type=int, default=8)
    parser.add_argument("--table", default=None, help="also write the groups as this CSV")
    args = parser.parse_args()
    samples = load_samples(DataConfig(root=args.data))
    extra = [s for root in args.extra for s in load_samples(DataConfig(root=root))]
    groups = acquisition_groups(samples + extra, args.distance)
    if args.table:
        print(f"wrote {write_group_table(groups, args.table)}")
    keep = sorted({groups[s.name] for s in extra})
    _, held = group_split(samples, 0.25, 0, groups, keep=keep)
    held_groups = {groups[s.name] for s in held}
    members: dict[str, list] = {}
    for s in samples:
        members.setdefault(groups[s.name], []).append(s)
    names = sorted(members, key=lambda g: (g.split("-")[0], -len(members[g])))
    rows, cols = len(names), args.per_group
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.3, rows * 1.45), squeeze=False)
    rng = np.random.default_rng(0)
    for r, group in enumerate(names):
        chosen = list(rng.permutation(len(members[group]))[:cols])
        for c in range(cols):
            ax = axes[r, c]
            ax.axis("off")
            if c < len(chosen):
                image = normalize_image(members[group][chosen[c]].image)
                ax.imshow(np.clip(image.squeeze(), 0, 1), cmap="gray")
        tag = "held out" if group in held_groups else ("kept (extra data)" if group in keep else "")
        axes[r, 0].set_title(
            f"{group}: {len(members[group])} images {tag}", fontsize=7, loc="left", pad=2
        )
    fig.tight_layout(pad=0.2, h_pad=0.6)
    fig.savefig(args.output, dpi=80)
    print(f"{len(names)} groups, {len(held)} images held out; wrote {args.output}")


if __name__ == "__main__":
    main()
