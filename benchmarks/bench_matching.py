"""Time `segmentation.evaluation.match` against per-object reference loops, in the same run.

Synthetic label images of 256², 1024² and 4096² pixels hold ~1,000 nuclei per megapixel (disks of
radius 6-14 px, ~35% foreground); the prediction jitters, resizes, drops (5%) and adds (5%) nuclei.
Two references compute the same IoUs object by object:

- naive: for each gt object a full-image mask, then IoU with each prediction it overlaps (full-image
  masks too); skipped when its projected time (timed on the first objects) exceeds a minute.
- bbox: the same loop on each object's bounding box (``scipy.ndimage.find_objects``).

Both must give the same TP counts as ``match`` at all 10 thresholds (checked). With the DSB data
available, also scores the truth against itself (must be exactly 1.0) and against perturbed copies,
checking ``match`` against the bbox reference on every image.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_matching.py [--no-dsb] [--sizes ...]``
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

from segmentation.evaluation import DSB_THRESHOLDS, dsb_score, match  # noqa: E402

NAIVE_BUDGET_S = 60.0


def random_disks(size: int, n: int, rng, centers=None, radii=None) -> np.ndarray:
    """Paint ``n`` disks into a ``(size, size)`` int32 label image; earlier disks keep their pixels."""
    labels = np.zeros((size, size), np.int32)
    ys, xs = centers if centers is not None else rng.uniform(0, size, (2, n))
    radii = radii if radii is not None else rng.uniform(6, 14, n)
    for i in range(n):
        y, x, r = ys[i], xs[i], radii[i]
        y0, y1 = int(max(0, y - r)), int(min(size, y + r + 1))
        x0, x1 = int(max(0, x - r)), int(min(size, x + r + 1))
        yy, xx = np.ogrid[y0:y1, x0:x1]
        sub = labels[y0:y1, x0:x1]
        sub[((yy - y) ** 2 + (xx - x) ** 2 <= r * r) & (sub == 0)] = i + 1
    return labels


def make_pair(size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = round(1000 * size * size / 1e6)
    ys, xs = rng.uniform(0, size, (2, n))
    radii = rng.uniform(6, 14, n)
    gt = random_disks(size, n, rng, (ys, xs), radii)
    keep = rng.random(n) > 0.05
    n_extra = n // 20
    pys = np.concatenate([ys[keep] + rng.normal(0, 1.5, keep.sum()), rng.uniform(0, size, n_extra)])
    pxs = np.concatenate([xs[keep] + rng.normal(0, 1.5, keep.sum()), rng.uniform(0, size, n_extra)])
    prad = np.concatenate(
        [radii[keep] * rng.uniform(0.85, 1.15, keep.sum()), rng.uniform(6, 14, n_extra)]
    )
    pred = random_disks(size, pys.size, rng, (pys, pxs), prad)
    return gt, pred


def _tp_from_ious(ious: list[float]) -> list[int]:
    ious = np.asarray(ious)
    return [int((ious > t).sum()) for t in DSB_THRESHOLDS]  # unique matches above IoU 0.5


def reference_naive(gt: np.ndarray, pred: np.ndarray, max_objects: int | None = None):
    ious = []
    ids = [i for i in np.unique(gt) if i][:max_objects]
    for i in ids:
        g = gt == i
        for j in np.unique(pred[g]):
            if j:
                p = pred == j
                ious.append((g & p).sum() / (g | p).sum())
    return _tp_from_ious(ious), len(ids)


def reference_bbox(gt: np.ndarray, pred: np.ndarray):
    pred_area = np.bincount(pred.ravel())
    ious = []
    for i, sl in enumerate(ndi.find_objects(gt), start=1):
        if sl is None:
            continue
        g = gt[sl] == i
        pred_crop = pred[sl]
        area = int(g.sum())
        for j in np.unique(pred_crop[g]):
            if j:
                inter = int((g & (pred_crop == j)).sum())
                ious.append(inter / (area + pred_area[j] - inter))
    return _tp_from_ious(ious)


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def bench_synthetic(sizes: list[int]) -> None:
    print(
        f"{'size':>6} {'nuclei':>7} {'match ms':>9} {'ms/MP':>7} {'bbox ms':>9} {'naive ms':>11} "
        f"{'bbox/match':>10} {'naive/match':>11}  TP@0.5/0.75/0.9 (all agree)"
    )
    for size in sizes:
        gt, pred = make_pair(size)
        mp = size * size / 1e6
        result = match(gt, pred)
        t_match = best_of(lambda gt=gt, pred=pred: match(gt, pred), 5 if size <= 1024 else 3)
        t0 = time.perf_counter()
        tp_bbox = reference_bbox(gt, pred)
        t_bbox = time.perf_counter() - t0
        # naive: time the first objects, extrapolate, run fully only within the budget
        t0 = time.perf_counter()
        _, k = reference_naive(gt, pred, max_objects=20)
        projected = (time.perf_counter() - t0) / k * result.n_true
        if projected <= NAIVE_BUDGET_S:
            t0 = time.perf_counter()
            tp_naive, _ = reference_naive(gt, pred)
            t_naive = time.perf_counter() - t0
            naive_txt, ratio_txt = f"{t_naive * 1e3:11.0f}", f"{t_naive / t_match:11.0f}"
            assert tp_naive == result.tp.tolist(), (tp_naive, result.tp.tolist())
        else:
            naive_txt, ratio_txt = f"~{projected:9.0f}s", f"~{projected / t_match:10.0f}"
        assert tp_bbox == result.tp.tolist(), (tp_bbox, result.tp.tolist())
        tps = "/".join(str(result.at(t).tp) for t in (0.5, 0.75, 0.9))
        print(
            f"{size:>5}² {result.n_true:>7} {t_match * 1e3:9.1f} {t_match * 1e3 / mp:7.1f} "
            f"{t_bbox * 1e3:9.0f} {naive_txt} {t_bbox / t_match:10.0f} {ratio_txt}  {tps}"
        )
    print("naive '~Ns' = skipped: projected from the first 20 objects (over the one-minute budget)")


def load_dsb_labels() -> list[tuple[str, np.ndarray]] | None:
    from segmentation.datasets.dsb import default_dsb_root, load_dsb

    cache = Path(__file__).resolve().parents[1] / "cache" / "stage1_train.npz"
    t0 = time.perf_counter()
    if cache.is_file():
        from segmentation.datasets.pack import load_packed

        samples, source = load_packed(cache), str(cache)
    elif default_dsb_root().is_dir():
        samples, source = load_dsb()[0], str(default_dsb_root())
    else:
        return None
    print(f"loaded {len(samples)} DSB images from {source} in {time.perf_counter() - t0:.1f} s")
    return [(s.name, s.labels) for s in samples if s.labels is not None]


def perturbations(labels: np.ndarray) -> dict[str, np.ndarray]:
    from skimage.segmentation import find_boundaries

    eroded = np.where(find_boundaries(labels, mode="inner"), 0, labels)
    shifted = np.zeros_like(labels)
    shifted[:, 2:] = labels[:, :-2]
    return {"eroded 1 px": eroded, "shifted 2 px": shifted}


def bench_dsb() -> None:
    data = load_dsb_labels()
    if data is None:
        print("DSB data not found: skipping the DSB sanity check")
        return
    pixels = sum(lab.size for _, lab in data) / 1e6
    t0 = time.perf_counter()
    self_scores = [dsb_score(lab, lab) for _, lab in data]
    t_self = time.perf_counter() - t0
    assert all(s == 1.0 for s in self_scores), "truth vs itself must score exactly 1.0"
    print(
        f"\nDSB stage1_train, {len(data)} images, {pixels:.1f} MP, "
        f"{sum(int(lab.max()) for _, lab in data)} nuclei"
    )
    print(
        f"{'prediction':>14} {'DSB score':>9} {'F1@0.7':>7} {'match s':>8} {'ms/MP':>6} "
        f"{'bbox ref s':>10}  TP agree"
    )
    print(
        f"{'truth itself':>14} {1.0:9.4f} {1.0:7.4f} {t_self:8.2f} {t_self * 1e3 / pixels:6.1f} "
        f"{'-':>10}  -"
    )
    per_kind: dict[str, list] = {}
    for _, lab in data:
        for kind, pert in perturbations(lab).items():
            per_kind.setdefault(kind, []).append((lab, pert))
    for kind, pairs in per_kind.items():
        t0 = time.perf_counter()
        results = [match(g, p) for g, p in pairs]
        t_match = time.perf_counter() - t0
        t0 = time.perf_counter()
        refs = [reference_bbox(g, p) for g, p in pairs]
        t_ref = time.perf_counter() - t0
        agree = all(ref == r.tp.tolist() for ref, r in zip(refs, results, strict=True))
        score = np.mean([r.mean_score for r in results])
        tp, fp, fn = (sum(int(getattr(r.at(0.7), k)) for r in results) for k in ("tp", "fp", "fn"))
        f1 = 2 * tp / (2 * tp + fp + fn)
        print(
            f"{kind:>14} {score:9.4f} {f1:7.4f} {t_match:8.2f} {t_match * 1e3 / pixels:6.1f} "
            f"{t_ref:10.2f}  {agree}"
        )
        assert agree, f"match and the bbox reference disagree on {kind}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--no-dsb", action="store_true", help="skip the DSB sanity check")
    args = parser.parse_args(argv)
    print(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, numpy {np.__version__}")
    bench_synthetic(args.sizes)
    if not args.no_dsb:
        bench_dsb()
    return 0


if __name__ == "__main__":
    sys.exit(main())
