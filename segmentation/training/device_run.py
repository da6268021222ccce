"""One training run on a lent GPU, measured end to end: ``python -m segmentation.training.device_run``.

What ``scripts/device_run.sh`` runs on the device machine (and CI, on the CPU, with a budget of
seconds). In order:

1. ``--measure S`` seconds each: crops/s of the data pipeline alone (the recipe's: ``tensor`` crops
   cut on the device, or the ``loader``'s CPU workers), and of the training step alone on one batch
   already on the device (bf16 autocast and channels-last where the device has them, as the
   trainer runs it);
2. trains the recipe (:func:`segmentation.training.fit.fit`) for ``--minutes`` of wall time,
   tunes the post-processing thresholds on the validation split;
3. scores the model on the test split (``data.test_fraction``: e.g. the held-out acquisition
   groups of ``data.split group``), overall and per image type;
4. writes ``<output>/<name>.pt`` (float16, unused weights dropped) and ``<output>/<name>.json``
   (every number above, the epoch log, the GPU's peak memory, the machine) and prints a summary;
5. ``--speed``: ``segment()`` megapixels per second of the trained model at 1024x1024 and
   4096x4096 (synthetic nuclei).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import torch

from segmentation.evaluation.by_type import score_by_image_type
from segmentation.modelfile import (
    atomic_save,
    drop_unused_weights,
    half_precision,
    read_checkpoint,
)
from segmentation.training.config import Config, load_config

MAX_MODEL_MIB = 16.0


def machine() -> dict[str, Any]:
    """The machine and library versions, for the record."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_cores": os.cpu_count(),
        "cuda": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1))
    try:
        import segmentation_models_pytorch as smp

        info["smp"] = smp.__version__
    except ImportError:
        info["smp"] = "not installed"
    return info


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rate(step, device: torch.device, seconds: float, per_call: int) -> float:
    """Calls of ``step()`` per second (times ``per_call`` items) over about ``seconds``, after
    two warm-up calls."""
    for _ in range(2):
        step()
    _sync(device)
    start, calls = time.perf_counter(), 0
    while calls < 3 or time.perf_counter() - start < seconds:
        step()
        calls += 1
        if calls % 8 == 0:
            _sync(device)
    _sync(device)
    return calls * per_call / (time.perf_counter() - start)


def _cpu_loader_rate(config: Config, train: list, workers: int, seconds: float) -> float:
    """Crops/s of the CPU pipeline (:class:`CropDataset`, targets per crop) with ``workers``."""
    from segmentation.datasets.torch_dataset import CropDataset
    from segmentation.models.registry import get_family
    from segmentation.training.data import make_loader

    family, d, t = get_family(config.family), config.data, config.train
    dataset = CropDataset(
        train, d.crop_size, family.encode_targets, length=10**7, stained_view=d.stained_view
    )
    loader = iter(
        make_loader(dataset, family, batch_size=t.batch_size, workers=workers, epoch=0, seed=0)
    )
    return _rate(lambda: next(loader), torch.device("cpu"), seconds, t.batch_size)


def measure_throughput(
    config: Config, seconds: float, cpu_loader_workers: int = 0
) -> dict[str, float]:
    """Crops/s of the data pipeline alone and of the training step alone (data on the device).

    Args:
        config: the recipe (its data pipeline, crop and batch size, network).
        seconds: time per measurement.
        cpu_loader_workers: also time the CPU pipeline (``data.pipeline loader``) with this many
            workers, for comparison (0: not measured).

    Returns:
        ``loader_crops_per_s`` (the recipe's pipeline), ``step_crops_per_s``, their ratio
        ``loader_over_step``, and ``cpu_loader_crops_per_s`` / ``cpu_loader_workers`` when asked.
    """
    from segmentation.inference import resolve_device
    from segmentation.models.registry import get_family
    from segmentation.training.data import training_split
    from segmentation.training.engine import _to_device
    from segmentation.training.optim import build_optimizer, seed_everything
    from segmentation.training.precision import autocast, uses_channels_last
    from segmentation.training.tensor_crops import crops_from_recipe

    d, t = config.data, config.train
    family = get_family(config.family)
    device = resolve_device(t.device)
    seed_everything(t.seed)
    train, _, _ = training_split(d)
    out: dict[str, float] = {"batch_size": t.batch_size, "crop_size": d.crop_size}
    if d.pipeline == "tensor":
        crops = crops_from_recipe(d, family.encode_targets, train, device, seed=t.seed)
        steps = iter(range(10**9))
        out["loader_crops_per_s"] = _rate(
            lambda: crops.batch(t.batch_size, next(steps)), device, seconds, t.batch_size
        )
        images, targets = crops.batch(t.batch_size, 0)
    else:
        out["loader_crops_per_s"] = _cpu_loader_rate(config, train, d.workers, seconds)
        out["workers"] = d.workers
        images, targets = _first_batch(config, train)
        images, targets = images.to(device), _to_device(targets, device)
    if cpu_loader_workers > 0:
        rate = _cpu_loader_rate(config, train, cpu_loader_workers, seconds)
        out.update(cpu_loader_crops_per_s=rate, cpu_loader_workers=cpu_loader_workers)
    model = family.build(config.members()[0]).to(device)
    if uses_channels_last(device, t.channels_last, t.amp):
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, config)
    model.train()

    def train_step() -> None:
        with autocast(device, t.amp):
            total = family.training_loss(model, images, targets)["total"]
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()

    out["step_crops_per_s"] = _rate(train_step, device, seconds, t.batch_size)
    out["loader_over_step"] = out["loader_crops_per_s"] / out["step_crops_per_s"]
    return out


def _first_batch(config: Config, train: list) -> tuple[torch.Tensor, Any]:
    """One batch of the CPU pipeline (images and collated targets, on the CPU)."""
    from segmentation.datasets.torch_dataset import CropDataset
    from segmentation.models.registry import get_family
    from segmentation.training.data import collate_batch

    family = get_family(config.family)
    dataset = CropDataset(
        train, config.data.crop_size, family.encode_targets, stained_view=config.data.stained_view
    )
    items = [dataset[i % len(dataset)] for i in range(config.train.batch_size)]
    return collate_batch(family)(items)


def segment_speed(model: Any, sizes: tuple[int, ...] = (1024, 4096)) -> dict[str, float]:
    """``segment()`` megapixels per second on synthetic fluorescence nuclei of each size (the
    second of two calls)."""
    from segmentation.datasets.synthetic import synthetic_nuclei
    from segmentation.inference import segment

    out = {}
    for size in sizes:
        sample = synthetic_nuclei((size, size), max(10, size * size // 2500), seed=0)
        segment(sample.image, model)
        start = time.perf_counter()
        segment(sample.image, model)
        out[f"segment_mp_per_s_{size}"] = round(
            size * size / 1e6 / (time.perf_counter() - start), 2
        )
    return out


def _epoch_log(run_dir: Path) -> list[dict[str, str]]:
    rows = []
    for path in sorted(run_dir.glob("member_*/metrics.csv")):
        with path.open() as f:
            rows.extend(csv.DictReader(f))
    return rows


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Steps 1-5 of the module docstring; returns the record written to ``<name>.json``."""
    from segmentation.inference import SegmentationModel, segment
    from segmentation.training.data import load_samples, split_three
    from segmentation.training.fit import fit

    out_dir = Path(args.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    run_dir = Path(args.run_dir or f"runs/device/{args.name}")
    overrides = [
        *args.overrides,
        f"train.max_minutes={args.minutes}",
        f"train.output={run_dir}",
        "train.progress=false",
    ]
    config = load_config(args.recipe, overrides)
    record: dict[str, Any] = {
        "name": args.name,
        "recipe": args.recipe,
        "overrides": args.overrides,
        "minutes": args.minutes,
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    print(f"[{args.name}] {json.dumps(record['machine'])}", flush=True)
    if args.measure > 0:
        record["throughput"] = measure_throughput(config, args.measure, args.cpu_loader_workers)
        print(f"[{args.name}] throughput {json.dumps(record['throughput'])}", flush=True)
    if args.measure_only:
        (out_dir / f"{args.name}.json").write_text(json.dumps(record, indent=1, default=str))
        return record
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    model_path = fit(config, overwrite=True)  # a device run starts its run folder afresh
    record["train_seconds"] = round(time.perf_counter() - started, 1)
    if torch.cuda.is_available():
        record["gpu_peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    full = read_checkpoint(model_path)
    record["validation"] = full["metrics"]
    record["thresholds"] = full["thresholds"]
    rows = _epoch_log(run_dir)
    record["epochs"] = rows
    crops = sum(int(r["crops"]) for r in rows)
    seconds = sum(float(r["seconds"]) for r in rows)
    record["train_crops"] = crops
    record["train_crops_per_s"] = round(crops / max(seconds, 1e-9), 1)
    waits = [float(r["loader_wait"]) * float(r["seconds"]) for r in rows if r.get("loader_wait")]
    record["loader_wait_share"] = round(sum(waits) / max(seconds, 1e-9), 4)
    half = half_precision(drop_unused_weights(full))
    model_file = out_dir / f"{args.name}.pt"
    atomic_save(half, model_file)
    size_mib = model_file.stat().st_size / 2**20
    record["model_file_mib"] = round(size_mib, 2)
    if size_mib > MAX_MODEL_MIB:
        raise SystemExit(f"{model_file} is {size_mib:.1f} MiB, over {MAX_MODEL_MIB} MiB")
    model = SegmentationModel.from_checkpoint(half, config.train.device)
    if config.data.test_fraction > 0:
        _, _, test = split_three(load_samples(config.data), config.data)
        record["test"] = score_by_image_type(test, partial(segment, model=model))
    if args.speed:
        record["speed"] = segment_speed(model)
    (out_dir / f"{args.name}.json").write_text(json.dumps(record, indent=1, default=str))
    print(summary(record), flush=True)
    return record


def summary(record: dict[str, Any]) -> str:
    """A few lines with the run's numbers."""
    lines = [f"== {record['name']}: {record['recipe']} {' '.join(record['overrides'])}"]
    if "throughput" in record:
        th = record["throughput"]
        lines.append(
            f"   loader {th['loader_crops_per_s']:.0f} crops/s, step {th['step_crops_per_s']:.0f} "
            f"crops/s (loader/step {th['loader_over_step']:.2f})"
        )
        if "cpu_loader_crops_per_s" in th:
            lines.append(
                f"   CPU loader ({th['cpu_loader_workers']} workers) "
                f"{th['cpu_loader_crops_per_s']:.0f} crops/s"
            )
    lines.append(
        f"   trained {record['train_crops']} crops in {record['train_seconds']:.0f} s "
        f"({record['train_crops_per_s']} crops/s, loader wait {record['loader_wait_share']:.1%})"
        + (
            f", GPU peak {record['gpu_peak_memory_gib']} GiB"
            if "gpu_peak_memory_gib" in record
            else ""
        )
    )
    v = record["validation"]
    lines.append(f"   validation score {v['val_score']:.4f}, F1@0.7 {v['val_f1_0.7']:.4f}")
    for name, row in (record.get("test") or {}).items():
        lines.append(
            f"   test {name:<13} score {row['score']:.4f} F1@0.7 {row['f1_0.7']:.4f} "
            f"({row['images']} images)"
        )
    for key, value in (record.get("speed") or {}).items():
        lines.append(f"   {key}: {value}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line (see ``--help``) and run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recipe", help="YAML recipe, e.g. configs/default_unet.yaml")
    parser.add_argument("overrides", nargs="*", help="section.key=value overrides")
    parser.add_argument("--minutes", type=float, default=1.0, help="training wall time")
    parser.add_argument("--output", required=True, help="folder for <name>.pt and <name>.json")
    parser.add_argument("--name", default="model", help="name of the output files")
    parser.add_argument("--run-dir", default=None, help="run folder (default runs/device/NAME)")
    parser.add_argument("--measure", type=float, default=0.0, help="seconds per throughput test")
    parser.add_argument(
        "--cpu-loader-workers",
        type=int,
        default=0,
        help="with --measure: also time the CPU pipeline with this many workers",
    )
    parser.add_argument("--measure-only", action="store_true", help="measure, write, stop")
    parser.add_argument("--speed", action="store_true", help="time segment() at 1024 and 4096 px")
    args = parser.parse_intermixed_args(argv)
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
