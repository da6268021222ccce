"""CPU training throughput of the default model: precision, memory format, threads, crop size.

Times the training step alone (forward, loss, backward, AdamW step) on one fixed batch of real
crops from the bundled sample, for each setting, in interleaved rounds (so that a noisy shared
machine slows every setting alike), and prints crops/s with the ratio to float32 / contiguous /
the same thread count measured in the same run. ``bf16`` is ``torch.autocast("cpu",
dtype=torch.bfloat16)``, which the trainer uses on a CPU with native bfloat16 (AMX or
AVX512-BF16; :func:`segmentation.training.precision.cpu_bf16_supported`).

Usage:
  python benchmarks/bench_cpu_training.py [--threads 1 2] [--crops 128 256] [--batch 16]
      [--rounds 3] [--seconds 6]
"""

from __future__ import annotations

import argparse
import itertools
import time

import torch

from segmentation.models.registry import get_family
from segmentation.training.config import load_config
from segmentation.training.data import collate_batch, load_samples
from segmentation.training.optim import build_optimizer


def make_batch(config, family, crop: int, batch: int):
    from segmentation.datasets.torch_dataset import CropDataset

    samples = load_samples(config.data)
    dataset = CropDataset(samples, crop, family.encode_targets, seed=0)
    items = [dataset[i % len(dataset)] for i in range(batch)]
    return collate_batch(family)(items)


def step_rate(config, family, batch, *, bf16: bool, channels_last: bool, seconds: float) -> float:
    """Training steps of the given setting for about ``seconds``; crops per second."""
    torch.manual_seed(0)
    model = family.build(config.members()[0])
    images, targets = batch
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, config)
    model.train()

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            total = family.training_loss(model, images, targets)["total"]
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()

    step()  # warm-up (oneDNN primitive creation)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        steps += 1
    return steps * images.shape[0] / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default="configs/default_unet.yaml")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--crops", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6.0)
    args = parser.parse_args()
    config = load_config(args.recipe, ["data.root=sample", "data.extra_train=[]"])
    family = get_family(config.family)
    settings = list(itertools.product(args.crops, args.threads, (False, True), (False, True)))
    batches = {c: make_batch(config, family, c, args.batch) for c in args.crops}
    rates: dict[tuple, list[float]] = {s: [] for s in settings}
    for r in range(args.rounds):
        for crop, threads, bf16, cl in settings:
            torch.set_num_threads(threads)
            rate = step_rate(
                config, family, batches[crop], bf16=bf16, channels_last=cl, seconds=args.seconds
            )
            rates[(crop, threads, bf16, cl)].append(rate)
        print(f"round {r + 1}/{args.rounds} done", flush=True)
    print(f"\nbatch {args.batch}, median of {args.rounds} rounds of {args.seconds:.0f} s each")
    print("| crop | threads | precision | memory format | crops/s | vs float32 contiguous |")
    print("|---|---|---|---|---|---|")
    for crop, threads, bf16, cl in settings:
        rate = sorted(rates[(crop, threads, bf16, cl)])[args.rounds // 2]
        base = sorted(rates[(crop, threads, False, False)])[args.rounds // 2]
        print(
            f"| {crop} | {threads} | {'bfloat16' if bf16 else 'float32'} | "
            f"{'channels-last' if cl else 'contiguous'} | {rate:.1f} | {rate / base:.2f} |"
        )


if __name__ == "__main__":
    main()
