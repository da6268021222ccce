"""Load time of DSB2018 stage1_train from the Kaggle layout vs from the packed cache, and sizes.

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_dataset_cache.py [--root DIR] [--cache FILE]

Writes (or rewrites) the packed cache, by default ``<repo>/cache/stage1_train.npz``, checks that it
loads back identical to the Kaggle layout, and prints a table. The Kaggle layout is read once (the
baseline, with the OS file cache as it is); the cache is loaded ``--repeats`` times and the median
is reported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from segmentation.datasets.dsb import default_dsb_root, load_dsb  # noqa: E402
from segmentation.datasets.pack import load_packed, pack_samples  # noqa: E402


def _sizes(paths) -> tuple[float, float]:
    """(bytes in the files, bytes they occupy on disk) in MB."""
    stats = [p.stat() for p in paths if p.is_file()]
    return sum(s.st_size for s in stats) / 1e6, sum(s.st_blocks * 512 for s in stats) / 1e6


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=default_dsb_root())
    parser.add_argument("--cache", type=Path, default=REPO / "cache" / "stage1_train.npz")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if not args.root.is_dir():
        print(f"DSB2018 stage1_train not found at {args.root}; set $SEGMENTATION_DSB_ROOT")
        return 1

    start = time.perf_counter()
    samples, report = load_dsb(args.root)
    kaggle_s = time.perf_counter() - start
    n_files = sum(1 for _ in args.root.glob("*/masks/*.png")) + len(samples)

    start = time.perf_counter()
    path = pack_samples(samples, args.cache)
    pack_s = time.perf_counter() - start

    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        loaded = load_packed(path)
        times.append(time.perf_counter() - start)
    cache_s = statistics.median(times)

    restored = load_packed(path, restore_channels=True)  # exact round trip, for the check
    identical = len(restored) == len(samples) and all(
        a.name == b.name and np.array_equal(a.image, b.image) and np.array_equal(a.labels, b.labels)
        for a, b in zip(samples, restored, strict=True)
    )
    gray = sum(s.image.shape[2] == 1 for s in loaded)
    kaggle_mb, kaggle_disk = _sizes(args.root.rglob("*"))
    cache_mb, cache_disk = _sizes([path])
    threads = os.environ.get("OMP_NUM_THREADS", "unset")
    print(
        f"DSB2018 stage1_train: {len(samples)} images, {n_files} files, "
        f"{sum(int(s.labels.max()) for s in samples)} nuclei; "
        f"overlaps: {len(report)} images, {sum(report.values())} pixels; "
        f"OMP_NUM_THREADS={threads}"
    )
    print("| source | load time (s) | ratio | file bytes (MB) | on disk (MB) |")
    print("|---|---|---|---|---|")
    print(
        f"| Kaggle layout (PNG per image and per mask) | {kaggle_s:.1f} | 1.00 | "
        f"{kaggle_mb:.1f} | {kaggle_disk:.1f} |"
    )
    print(
        f"| packed cache {path.name} (median of {args.repeats}) | {cache_s:.2f} | "
        f"{cache_s / kaggle_s:.3f} ({kaggle_s / cache_s:.0f}x faster) | {cache_mb:.1f} | "
        f"{cache_disk:.1f} |"
    )
    print(
        f"packing took {pack_s:.1f} s; {gray} images stored as 1-channel gray; "
        f"cache identical to the Kaggle layout (restore_channels=True): {identical}"
    )
    print(f"cache written to {path}")
    return 0 if identical else 1


if __name__ == "__main__":
    raise SystemExit(main())
