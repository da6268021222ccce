"""Decode time per family on synthetic nuclei of 256², 1024² and 4096² pixels.

Each image comes from ``segmentation.datasets.synthetic_nuclei`` (fluorescence, ~800 nuclei per
megapixel, half of them touching, ~27% foreground). The raw outputs decoded are the family's
oracle outputs (``family.oracle_raw(labels)``); for the dense families they are smoothed with a
Gaussian (sigma 1 px) so that the maps are soft like a network's. Only ``family.decode`` is timed
(best of several runs). Baseline in the same run: ``scipy.ndimage.label`` of the foreground, a
linear-time pass over the same pixels.

Targets: under 150 ms per megapixel per family, and the 4096² time at most 20x the 1024² time
(16x the pixels).

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_decode.py [--families unet fpn maskrcnn]
[--sizes 256 1024 4096] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from segmentation.datasets.synthetic import synthetic_nuclei  # noqa: E402
from segmentation.models.registry import available_families, get_family  # noqa: E402

NUCLEI_PER_MP = 800


def best_time(fn, repeats: int) -> tuple[float, float]:
    """Smallest wall time and smallest CPU time of ``repeats`` calls of ``fn`` (seconds).

    The CPU time of this process is less sensitive to other jobs on a shared machine.
    """
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return min(wall), min(cpu)


def soft(raw):
    """Gaussian-smoothed copy of dense maps (sigma 1 px per channel); other outputs unchanged."""
    if isinstance(raw, np.ndarray):
        return ndi.gaussian_filter(raw, sigma=(0, 1, 1)).astype(np.float32)
    return raw


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="+", default=available_families())
    parser.add_argument("--sizes", nargs="+", type=int, default=[256, 1024, 4096])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    print(
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    images = {}
    for size in args.sizes:
        n = max(10, int(NUCLEI_PER_MP * size * size / 2**20))
        labels = synthetic_nuclei((size, size), n, seed=size).labels
        base = best_time(lambda labels=labels: ndi.label(labels > 0), args.repeats)[0]
        images[size] = (labels, base)
        print(
            f"{size}²: {labels.max()} nuclei, foreground {np.mean(labels > 0):.2f}, "
            f"ndimage.label {base * 1e3:.1f} ms"
        )
    rows = []
    for family in args.families:
        fam = get_family(family)
        for size, (labels, base) in images.items():
            raw = soft(fam.oracle_raw(labels))
            repeats = args.repeats if size <= 1024 else max(1, args.repeats - 1)
            seconds, cpu = best_time(lambda raw=raw, fam=fam: fam.decode(raw), repeats)
            mp = size * size / 1e6
            rows.append((family, size, seconds, seconds / mp * 1e3, cpu / mp * 1e3, seconds / base))
    print(
        "\n| family | size | decode ms | ms / MP (wall) | ms / MP (CPU) | x ndimage.label "
        "| 4096²/1024² (wall) |"
    )
    print("|---|---|---|---|---|---|---|")
    for family, size, seconds, per_mp, cpu_mp, ratio in rows:
        growth = ""
        if size == 4096:
            ref = [r for r in rows if r[0] == family and r[1] == 1024]
            growth = f"{seconds / ref[0][2]:.1f}x" if ref else ""
        print(
            f"| {family} | {size}² | {seconds * 1e3:.0f} | {per_mp:.0f} | {cpu_mp:.0f} "
            f"| {ratio:.0f} | {growth} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
