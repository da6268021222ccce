"""The oracle round trip of each family on the DSB2018 stage1_train images.

For every image: ``segmentation.evaluation.oracle(labels, family)`` (perfect raw outputs decoded
with the family's default thresholds) scored against the truth with the competition's score. Prints
the mean score per family and the worst images, each with the reason its nuclei were lost, sorted
by how many nuclei it explains:

- ``multi-part annotation``: one annotated nucleus made of pieces that are not 4-connected (the
  decoders return 4-connected objects);
- ``thin (<= 2 px wide)``: a sliver with no core for a seed, absorbed by a neighbour or dropped;
- ``tiny (< 30 px)``: a small nucleus lost or cut by a neighbour;
- ``split``: one nucleus decoded as several objects;
- ``merged``: one object covers several nuclei;
- ``boundary``: matched but with IoU 0.5-0.9 (the contact line moved);
- ``missing``: nothing decoded there.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/oracle_dsb.py --family unet|fpn|maskrcnn|all
[--root PATH] [--workers 2] [--limit N] [--worst 10] [--set NAME=VALUE ...] [--blur SIGMA]``. ``--root`` takes a stage1_train folder or a
packed ``.npz`` (default: ``cache/stage1_train.npz`` when present, else the DSB folder).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import yaml
from scipy import ndimage as ndi

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from segmentation.datasets.dsb import default_dsb_root, load_dsb  # noqa: E402
from segmentation.datasets.pack import load_packed  # noqa: E402
from segmentation.evaluation.matching import dsb_score  # noqa: E402
from segmentation.evaluation.oracles import oracle  # noqa: E402
from segmentation.models.registry import available_families, get_family  # noqa: E402
from segmentation.postprocess.geometry import boundary_distance  # noqa: E402


def load_labels(root: Path | None, limit: int | None) -> list[tuple[str, np.ndarray]]:
    """``(image id, labels)`` of every annotated image, from a packed ``.npz`` or the DSB folder."""
    if root is None:
        cache = REPO / "cache" / "stage1_train.npz"
        root = cache if cache.is_file() else default_dsb_root()
    if root.suffix == ".npz":
        samples = load_packed(root)
    else:
        samples, _ = load_dsb(root)
    pairs = [(s.name, s.labels) for s in samples if s.labels is not None]
    return pairs[:limit] if limit else pairs


def _overlap_table(gt: np.ndarray, pred: np.ndarray):
    """Sparse (gt, pred, intersection) triples plus the areas of both."""
    both = (gt > 0) & (pred > 0)
    keys = gt[both].astype(np.int64) * (int(pred.max()) + 1) + pred[both]
    pairs, inter = np.unique(keys, return_counts=True)
    g, p = pairs // (int(pred.max()) + 1), pairs % (int(pred.max()) + 1)
    return g, p, inter, np.bincount(gt.ravel()), np.bincount(pred.ravel())


def diagnose(gt: np.ndarray, pred: np.ndarray) -> Counter:
    """Count the nuclei of ``gt`` that ``pred`` gets wrong, by reason (see the module docstring)."""
    reasons: Counter = Counter()
    g, p, inter, area_g, area_p = _overlap_table(gt, pred)
    iou = inter / (area_g[g] + area_p[p] - inter)
    best = np.zeros(len(area_g))
    np.maximum.at(best, g, iou)
    # Predictions covering > 30% of several nuclei, nuclei with > 15% in several predictions.
    big_of_g = inter / area_g[g] > 0.15
    n_parts = np.bincount(g[big_of_g], minlength=len(area_g))
    merged_pred = np.bincount(p[big_of_g & (inter / area_g[g] > 0.3)], minlength=len(area_p)) > 1
    width = np.zeros(len(area_g))
    np.maximum.at(width, gt.ravel(), boundary_distance(gt).ravel())
    comps = _components_per_label(gt)
    for k in np.flatnonzero(area_g):
        if k == 0 or best[k] >= 0.9:
            continue
        preds_of_k = p[(g == k) & big_of_g]
        if comps[k] > 1:
            reasons["multi-part annotation"] += 1
        elif width[k] <= 2.0:
            reasons["thin (<= 2 px wide)"] += 1
        elif area_g[k] < 30:
            reasons["tiny (< 30 px)"] += 1
        elif n_parts[k] > 1:
            reasons["split"] += 1
        elif any(merged_pred[q] for q in preds_of_k):
            reasons["merged"] += 1
        elif best[k] > 0.5:
            reasons["boundary"] += 1
        else:
            reasons["missing"] += 1
    return reasons


def _components_per_label(gt: np.ndarray) -> np.ndarray:
    """Number of 4-connected pieces of every label value."""
    counts = np.zeros(int(gt.max()) + 1, dtype=np.int64)
    boxes = ndi.find_objects(gt)
    for k, box in enumerate(boxes, start=1):
        if box is not None:
            counts[k] = ndi.label(gt[box] == k)[1]
    return counts


def _score_one(args: tuple[str, str, np.ndarray, dict, float]) -> tuple[str, float, int, Counter]:
    family, name, labels, thresholds, blur = args
    if blur > 0:  # soft maps, as a network would give: the perfect maps smoothed
        fam = get_family(family)
        raw = ndi.gaussian_filter(fam.oracle_raw(labels), sigma=(0, blur, blur))
        pred = fam.decode(raw, thresholds or None)
    else:
        pred = oracle(labels, family, thresholds or None)
    score = dsb_score(labels, pred)
    reasons = diagnose(labels, pred) if score < 1.0 else Counter()
    return name, float(score), int(len(np.unique(labels)) - 1), reasons


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--family", default="all", help="family name or 'all'")
    parser.add_argument("--root", type=Path, default=None, help="stage1_train folder or .npz")
    parser.add_argument("--workers", type=int, default=2, help="processes (at most 2)")
    parser.add_argument("--limit", type=int, default=None, help="first N images only")
    parser.add_argument("--worst", type=int, default=10, help="worst images to list")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a threshold of the family's defaults, e.g. --set merge_flow=-1",
    )
    parser.add_argument(
        "--blur",
        type=float,
        default=0.0,
        help="dense families: smooth the perfect maps with a Gaussian of this sigma (pixels) "
        "before decoding, to mimic a network's soft outputs",
    )
    args = parser.parse_args(argv)
    thresholds = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set takes NAME=VALUE, got {item!r}")
        thresholds[key] = yaml.safe_load(value)
    families = available_families() if args.family == "all" else [args.family]
    unknown = [f for f in families if f not in available_families()]
    if unknown:
        parser.error(f"unknown family {unknown}; choose from {available_families()} or 'all'")
    if args.blur > 0:
        sparse = [f for f in families if not get_family(f).dense]
        if sparse:
            parser.error(f"--blur applies to dense families only, not {sparse}")
    workers = max(1, min(2, args.workers))
    t0 = time.perf_counter()
    data = load_labels(args.root, args.limit)
    print(
        f"{len(data)} images, {sum(int(lab.max() > 0) for _, lab in data)} with nuclei, "
        f"loaded in {time.perf_counter() - t0:.1f} s; {workers} worker(s)"
    )
    summary = []
    for family in families:
        t0 = time.perf_counter()
        jobs = [(family, name, labels, thresholds, args.blur) for name, labels in data]
        with Pool(workers) as pool:
            results = pool.map(_score_one, jobs, chunksize=4)
        elapsed = time.perf_counter() - t0
        scores = np.array([r[1] for r in results])
        totals: Counter = sum((r[3] for r in results), Counter())
        summary.append((family, scores.mean(), np.median(scores), (scores < 0.9).sum(), elapsed))
        blurred = f" (maps blurred, sigma {args.blur})" if args.blur else ""
        print(
            f"\n## {family}{blurred}: mean DSB score {scores.mean():.4f} over {len(scores)} "
            f"images ({elapsed:.1f} s)"
        )
        print(
            "lost or poorly matched nuclei (IoU < 0.9) by reason, all images: "
            + (", ".join(f"{k} {v}" for k, v in totals.most_common()) or "none")
        )
        print("\n| rank | image | nuclei | score | reasons (nuclei with IoU < 0.9) |")
        print("|---|---|---|---|---|")
        for rank, (name, score, n, reasons) in enumerate(
            sorted(results, key=lambda r: r[1])[: args.worst], start=1
        ):
            why = ", ".join(f"{k} {v}" for k, v in reasons.most_common()) or "-"
            print(f"| {rank} | {name[:16]} | {n} | {score:.3f} | {why} |")
    print("\n| family | mean score | median | images < 0.9 | time (s) |")
    print("|---|---|---|---|---|")
    for family, mean, median, low, elapsed in summary:
        print(f"| {family} | {mean:.4f} | {median:.4f} | {low} | {elapsed:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
