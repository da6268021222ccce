"""Post-processing speed side by side: StarDist's polygon NMS, Cellpose's flow dynamics (CPU) and
this toolkit's decoders, on the same synthetic nuclei, in one run.

Images: ``segmentation.datasets.synthetic_nuclei`` at 1024² and 4096² (fluorescence, ~800 nuclei
per megapixel, half touching; the images of ``bench_decode.py``). Each method gets the outputs a
well-trained network of its kind would give, made from the true labels and softened:

- toolkit (``unet``, ``fpn``, ``maskrcnn``): ``family.oracle_raw(labels)``, dense maps smoothed
  with a Gaussian (sigma 1 px), then ``family.decode`` (as in ``bench_decode.py``);
- StarDist (``Config2D`` defaults: 32 rays, grid 1x1; and grid 2x2, the setting of its published
  2-D models): object probabilities ``edt_prob(labels)`` smoothed (sigma 1 px) and ray distances
  ``star_dist(labels, 32)``; timed: ``non_maximum_suppression`` (prob 0.5, NMS 0.4, StarDist's
  default thresholds) and ``polygons_to_label``, the steps of ``predict_instances`` after the
  network;
- Cellpose 3: flows ``5 * labels_to_flows(labels)`` (the scale its network learns) smoothed
  (sigma 1 px) and cell-probability logits of the smoothed mask; timed:
  ``dynamics.resize_and_compute_masks`` on the CPU with ``CellposeModel.eval``'s defaults (200
  iterations, flow threshold 0.4, cell probability 0, min size 15), and without the flow-error
  check (flow threshold 0).

Reported: best wall time of ``--repeats`` calls (one at 4096²), milliseconds per megapixel, the
ratio to the toolkit's U-Net decode in the same run, and the competition score of the result
against the true labels (a check that the outputs are plausible, not a benchmark of accuracy).

Needs the optional peers (``pip install -e ".[peers]"``). Run (repo root):
``OMP_NUM_THREADS=1 python benchmarks/bench_peer_postprocess.py [--sizes 1024 4096] [--repeats 2]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_decode import NUCLEI_PER_MP, best_time, soft  # noqa: E402

from segmentation.benchmark.peers import INSTALL_HINT, PeerNotInstalledError, require_peer  # noqa: E402
from segmentation.datasets.synthetic import synthetic_nuclei  # noqa: E402
from segmentation.evaluation.matching import dsb_score  # noqa: E402
from segmentation.models.registry import get_family  # noqa: E402

#: StarDist2D's default thresholds (before ``optimize_thresholds``).
STARDIST_PROB, STARDIST_NMS = 0.5, 0.4


def toolkit_methods(labels: np.ndarray) -> dict[str, Callable[[], np.ndarray]]:
    """``{name: decode()}`` of the toolkit's families on their softened oracle outputs."""
    methods = {}
    for name in ("unet", "fpn", "maskrcnn"):
        family = get_family(name)
        raw = soft(family.oracle_raw(labels))
        methods[f"toolkit {name}"] = lambda f=family, r=raw: f.decode(r)
    return methods


def stardist_methods(labels: np.ndarray) -> dict[str, Callable[[], np.ndarray]]:
    """``{name: post-process()}`` of StarDist (grid 1x1 and 2x2) on perfect, softened outputs."""
    from stardist import edt_prob, star_dist
    from stardist.geometry import polygons_to_label
    from stardist.nms import non_maximum_suppression

    prob = ndi.gaussian_filter(edt_prob(labels).astype(np.float32), 1)
    methods = {}
    for grid in (1, 2):
        p = prob[::grid, ::grid]
        dist = star_dist(labels, 32, grid=(grid, grid))

        def run(p=p, dist=dist, grid=grid) -> np.ndarray:
            points, probi, disti = non_maximum_suppression(
                dist, p, grid=(grid, grid), prob_thresh=STARDIST_PROB, nms_thresh=STARDIST_NMS
            )
            return polygons_to_label(disti, points, prob=probi, shape=labels.shape)

        methods[f"StarDist NMS (grid {grid}x{grid})"] = run
    return methods


def cellpose_methods(labels: np.ndarray) -> dict[str, Callable[[], np.ndarray]]:
    """``{name: dynamics()}`` of Cellpose 3 on the CPU, with and without its flow-error check."""
    import torch
    from cellpose import dynamics

    flows = dynamics.labels_to_flows([labels.astype(np.int32)], device=torch.device("cpu"))[0]
    dp = ndi.gaussian_filter(5.0 * flows[2:4], sigma=(0, 1, 1)).astype(np.float32)
    mask = np.clip(ndi.gaussian_filter((labels > 0).astype(np.float32), 1), 0.01, 0.99)
    cellprob = np.log(mask / (1 - mask)).astype(np.float32)
    methods = {}
    for flow_threshold, label in ((0.4, "flow check 0.4"), (0.0, "no flow check")):
        methods[f"Cellpose dynamics ({label})"] = lambda ft=flow_threshold: (
            dynamics.resize_and_compute_masks(
                dp, cellprob, niter=200, flow_threshold=ft, cellprob_threshold=0.0, min_size=15
            )
        )
    return methods


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[1024, 4096])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    try:
        require_peer("stardist")
        require_peer("cellpose")
    except PeerNotInstalledError as error:
        print(f"{error}\n(needs both peers: {INSTALL_HINT})", file=sys.stderr)
        return 2
    print(
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
        f"load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    rows = []
    for size in args.sizes:
        n = max(10, int(NUCLEI_PER_MP * size * size / 2**20))
        labels = synthetic_nuclei((size, size), n, seed=size).labels
        started = time.perf_counter()
        methods = {
            **toolkit_methods(labels),
            **stardist_methods(labels),
            **cellpose_methods(labels),
        }
        print(
            f"{size}²: {labels.max()} nuclei; outputs made in {time.perf_counter() - started:.0f} s",
            flush=True,
        )
        repeats = args.repeats if size <= 1024 else 1
        for name, run in methods.items():
            result = run()  # warm-up (numba, torch), and the result to score
            seconds = best_time(run, repeats)[0]
            score = dsb_score(labels, np.asarray(result))
            rows.append((size, name, seconds, score))
            print(f"  {name}: {seconds * 1e3:.0f} ms, score {score:.3f}", flush=True)
    print("\n| size | post-processing | ms | ms / MP | x toolkit unet | score vs truth |")
    print("|---|---|---|---|---|---|")
    for size, name, seconds, score in rows:
        base = next(s for z, n, s, _ in rows if z == size and n == "toolkit unet")
        mp = size * size / 1e6
        print(
            f"| {size}² | {name} | {seconds * 1e3:.0f} | {seconds / mp * 1e3:.0f} "
            f"| {seconds / base:.1f} | {score:.3f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
