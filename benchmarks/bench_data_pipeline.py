"""Crops per second of the training data pipeline alone (read -> crop -> augment -> targets),
through a DataLoader with N workers, for each family's targets.

Usage: python benchmarks/bench_data_pipeline.py [DATA] [--workers 0 2] [--families unet fpn]
DATA: a packed cache (default cache/stage1_train.npz) or "sample".
"""

from __future__ import annotations

import argparse
import time

from segmentation.models.registry import get_family
from segmentation.training.config import DataConfig
from segmentation.training.data import load_samples, make_loader


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data", nargs="?", default="cache/stage1_train.npz")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--families", nargs="+", default=["unet", "fpn", "maskrcnn"])
    parser.add_argument("--crops", type=int, default=256)
    parser.add_argument("--crop-size", type=int, default=256)
    args = parser.parse_args()
    from segmentation.datasets.torch_dataset import CropDataset

    samples = load_samples(DataConfig(root=args.data))
    print(f"{len(samples)} images from {args.data}")
    print(f"{'family':<10} {'workers':>7} {'crops/s':>9}")
    for name in args.families:
        family = get_family(name)
        dataset = CropDataset(
            samples, args.crop_size, family.encode_targets, seed=0, length=args.crops
        )
        for workers in args.workers:
            loader = make_loader(dataset, family, batch_size=16, workers=workers, epoch=0, seed=0)
            start = time.perf_counter()
            n = sum(images.shape[0] for images, _ in loader)
            rate = n / (time.perf_counter() - start)
            print(f"{name:<10} {workers:>7} {rate:>9.1f}", flush=True)


if __name__ == "__main__":
    main()
