"""The Mask R-CNN oracle on DSB2018 and the speed of its decode.

1. Oracle: every nucleus of every stage1_train image goes through the mask head's resolution
   (``oracle_raw``: torchvision's ``roi_align`` mask target on its box, score 1.0) and back
   (``decode``: exact inverse paste, score-ordered painting, default thresholds). Reported for mask
   sizes 28 and 56, plus, as a same-run baseline, 28x28 masks pasted with torchvision's own
   ``paste_masks_in_image`` (what ``model(images)`` returns in eval mode). The worst images are
   listed with the nuclei the round trip loses (IoU < 0.95) and their shapes.
2. Decode speed on synthetic nuclei (~1,700 per megapixel) at 256², 1024², 4096²: ms per megapixel,
   and the ratio to ``skimage.measure.label`` on the same foreground (a linear-time reference
   timed in the same run).
3. Optional (``--train-steps N``): a small Mask R-CNN trained for N steps on synthetic 128x128
   images (CPU), then its validation predictions decoded with this family's paste and with
   torchvision's, same raw outputs: does the paste convention hold for real network outputs?

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_maskrcnn_oracle.py [--root PATH]
[--no-dsb] [--sizes 256 1024 4096] [--train-steps 600]``. ``--root`` takes a stage1_train folder
or a packed ``.npz``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage as ndi
from skimage.draw import ellipse
from skimage.measure import label as cc_label

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from segmentation.datasets.dsb import default_dsb_root, load_dsb  # noqa: E402
from segmentation.datasets.pack import load_packed  # noqa: E402
from segmentation.evaluation.matching import dsb_score  # noqa: E402
from segmentation.models.maskrcnn.decode import MaskRCNNThresholds, decode  # noqa: E402
from segmentation.models.maskrcnn.roundtrip import oracle_raw  # noqa: E402


def torchvision_paste_roundtrip(labels: np.ndarray) -> np.ndarray:
    """28x28 oracle masks pasted by torchvision (half-pixel convention), then painted."""
    from torchvision.models.detection.roi_heads import paste_masks_in_image

    raw = oracle_raw(labels, 28)
    if not len(raw["scores"]):
        return np.zeros(labels.shape, np.int32)
    out = np.zeros(labels.shape, np.int32)
    next_id = 1
    for start in range(0, len(raw["scores"]), 64):  # chunks keep full-image masks small
        sl = slice(start, start + 64)
        full = paste_masks_in_image(
            torch.from_numpy(raw["masks"][sl])[:, None],
            torch.from_numpy(raw["boxes"][sl]),
            labels.shape,
        )[:, 0].numpy()
        for probs in full:
            free = (probs >= 0.5) & (out == 0)
            if free.sum() and free.sum() >= 0.5 * (probs >= 0.5).sum():
                out[free] = next_id
                next_id += 1
    return out


def lost_nuclei(gt: np.ndarray, pred: np.ndarray, iou: float = 0.95) -> list[tuple[int, int, int]]:
    """``(area, longest box side, connected pieces)`` of gt nuclei matched below ``iou``."""
    out = []
    for k, box in enumerate(ndi.find_objects(gt), start=1):
        if box is None:
            continue
        g = gt[box] == k
        p_ids, counts = np.unique(pred[box][g], return_counts=True)
        best = 0.0
        for j, c in zip(p_ids, counts, strict=True):
            if j:
                best = max(best, c / (g.sum() + (pred == j).sum() - c))
        if best < iou:
            side = max(box[0].stop - box[0].start, box[1].stop - box[1].start)
            out.append((int(g.sum()), side, int(cc_label(g).max())))
    return out


def dsb_oracle(root: str | None, worst: int) -> None:
    path = Path(root) if root else default_dsb_root()
    t0 = time.perf_counter()
    samples = load_packed(path) if path.suffix == ".npz" else load_dsb(path)[0]
    print(f"read {len(samples)} images from {path} in {time.perf_counter() - t0:.0f} s")
    variants = {
        "28 (exact paste)": lambda lab: decode(oracle_raw(lab, 28), MaskRCNNThresholds()),
        "56 (exact paste)": lambda lab: decode(oracle_raw(lab, 56), MaskRCNNThresholds()),
        "28 (torchvision paste)": torchvision_paste_roundtrip,
    }
    scores: dict[str, list[float]] = {}
    outputs: dict[str, list[np.ndarray]] = {}
    print("| mask size (paste) | mean DSB score | min | images < 0.99 | seconds |")
    print("|---|---|---|---|---|")
    for name, fn in variants.items():
        t0 = time.perf_counter()
        outputs[name] = [fn(s.labels) for s in samples]
        seconds = time.perf_counter() - t0
        scores[name] = [dsb_score(s.labels, o) for s, o in zip(samples, outputs[name], strict=True)]
        v = np.array(scores[name])
        print(f"| {name} | {v.mean():.4f} | {v.min():.3f} | {(v < 0.99).sum()} | {seconds:.0f} |")
    for name in list(variants)[:2]:
        print(f"\nworst {worst} images, mask size {name}:")
        print("| image | size | nuclei | score | lost at IoU 0.95: (area, longest side, pieces) |")
        print("|---|---|---|---|---|")
        for i in np.argsort(scores[name], kind="stable")[:worst]:
            s = samples[i]
            lost = lost_nuclei(s.labels, outputs[name][i])
            shape = "x".join(map(str, s.labels.shape))
            n = len(np.unique(s.labels)) - 1
            print(f"| {s.name[:12]} | {shape} | {n} | {scores[name][i]:.3f} | {lost[:6]} |")


def synthetic_labels(
    size: int, rng: np.random.Generator, per_mp: float = 1700, radii: tuple = (3, 9)
) -> np.ndarray:
    """Random ellipses at ``per_mp`` attempts per megapixel, drawn where at least 80 % free."""
    labels = np.zeros((size, size), np.int32)
    k = 0
    for _ in range(int(per_mp * size * size / 2**20)):
        rr, cc = ellipse(*rng.uniform(0, size, 2), *rng.uniform(*radii, 2), shape=labels.shape,
                         rotation=rng.uniform(0, np.pi))  # fmt: skip
        free = labels[rr, cc] == 0
        if rr.size and free.mean() >= 0.8:
            k += 1
            labels[rr[free], cc[free]] = k
    return labels


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def decode_speed(sizes: list[int]) -> None:
    rng = np.random.default_rng(0)
    print(
        "\n| size | nuclei | decode ms | ms/MP | with NMS 0.5, ms/MP | skimage label ms "
        "| decode/label | score |"
    )
    print("|---|---|---|---|---|---|---|---|")
    per_mp = {}
    nms = MaskRCNNThresholds(nms_iou=0.5)
    for size in sizes:
        labels = synthetic_labels(size, rng)
        raw = oracle_raw(labels)
        repeats = 3 if size <= 1024 else 1
        t_decode = best_of(lambda raw=raw: decode(raw), repeats)
        t_nms = best_of(lambda raw=raw: decode(raw, nms), repeats)
        t_label = best_of(lambda labels=labels: cc_label(labels > 0), repeats)
        score = dsb_score(labels, decode(raw))
        per_mp[size] = t_decode * 1e3 / (size * size / 1e6)
        print(
            f"| {size}² | {labels.max():,} | {t_decode * 1e3:.1f} | {per_mp[size]:.1f} | "
            f"{t_nms * 1e3 / (size * size / 1e6):.1f} | "
            f"{t_label * 1e3:.1f} | {t_decode / t_label:.1f} | {score:.4f} |"
        )
    if 1024 in per_mp and 4096 in per_mp:
        print(f"\n4096² time / 1024² time = {16 * per_mp[4096] / per_mp[1024]:.1f} (linear: 16)")


def synthetic_image(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``(3, H, W)`` float32: bright nuclei, darker rims (so touching nuclei can be told apart)."""
    from skimage.segmentation import find_boundaries

    image = (labels > 0) * 0.6 + 0.2 + rng.normal(0, 0.05, labels.shape)
    image -= 0.3 * find_boundaries(labels, mode="inner")
    return np.repeat(image[None].astype(np.float32), 3, axis=0)


def trained_paste(steps: int) -> None:
    import yaml
    from torchvision.models.detection.roi_heads import paste_masks_in_image

    from segmentation.models.registry import get_family

    family = get_family("maskrcnn")
    config = yaml.safe_load((Path(__file__).parents[1] / "configs/tiny_maskrcnn.yaml").read_text())
    config = {**config["model"], "mask_size": 28, "fpn_channels": 64, "mask_head_channels": 64}
    config.update(mask_head_layers=4, box_representation_size=256)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = family.build(config)
    pairs = []
    for _ in range(208):
        labels = synthetic_labels(128, rng, per_mp=2500, radii=(3, 10))
        pairs.append((labels, synthetic_image(labels, rng)))
    train, val = pairs[:200], pairs[200:]
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-4)
    t0 = time.perf_counter()
    model.train()
    for _ in range(steps):
        batch = [train[i] for i in rng.choice(len(train), 4, replace=False)]
        images = torch.from_numpy(np.stack([b[1] for b in batch]))
        losses = family.training_loss(model, images, [family.encode_targets(b[0]) for b in batch])
        optimizer.zero_grad()
        losses["total"].backward()
        torch.nn.utils.clip_grad_norm_(params, 10.0)
        optimizer.step()
    print(f"\ntrained {steps} steps (batch 4, 128x128) in {time.perf_counter() - t0:.0f} s")
    model.eval()
    ours, theirs = [], []
    for labels, image in val:
        raw = family.predict(model, torch.from_numpy(image[None]))[0]
        ours.append(dsb_score(labels, family.decode(raw)))
        full = paste_masks_in_image(
            torch.from_numpy(raw["masks"])[:, None], torch.from_numpy(raw["boxes"]), labels.shape
        )[:, 0].numpy()
        pasted = {"boxes": raw["boxes"], "scores": raw["scores"], "masks": full}
        theirs.append(dsb_score(labels, family.decode(pasted)))
    print("| paste | mean DSB score, 8 validation images |\n|---|---|")
    print(f"| exact inverse of roi_align (decode) | {np.mean(ours):.3f} |")
    print(f"| torchvision paste_masks_in_image | {np.mean(theirs):.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="stage1_train folder or packed .npz (default: DSB root)")
    parser.add_argument("--no-dsb", action="store_true", help="skip the DSB oracle")
    parser.add_argument("--worst", type=int, default=10)
    parser.add_argument("--sizes", type=int, nargs="*", default=[256, 1024, 4096])
    parser.add_argument("--train-steps", type=int, default=0, help="also train a tiny network")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if not args.no_dsb:
        dsb_oracle(args.root, args.worst)
    decode_speed(args.sizes)
    if args.train_steps:
        trained_paste(args.train_steps)


if __name__ == "__main__":
    main()
