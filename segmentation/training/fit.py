"""``fit(config)``: train every ensemble member, tune thresholds, write one model file.

Run folder layout (``train.output``)::

    member_0/last.pt      full training state, rewritten each epoch (``--resume`` reads it)
    member_0/best.pt      best validation score so far
    member_0/metrics.csv  one row per epoch (also TensorBoard events when tensorboard is installed)
    model.pt              the ensemble of the members' best weights, with tuned thresholds

A fresh run refuses a folder that holds another run unless told to ``overwrite`` it or to
``resume`` it (:mod:`segmentation.training.run_folder`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from segmentation.inference import SegmentationModel, resolve_device
from segmentation.modelfile import atomic_save, make_checkpoint, read_checkpoint
from segmentation.models.registry import get_family
from segmentation.training import distributed
from segmentation.training.config import Config
from segmentation.training.data import make_loader, prepared_images, training_split
from segmentation.training.engine import predict_validation, score_raw, train_one_epoch
from segmentation.training.init_weights import initial_state, load_initial_weights
from segmentation.training.optim import (
    build_optimizer,
    build_scheduler,
    rng_state,
    seed_everything,
    set_rng_state,
)
from segmentation.training.precision import uses_channels_last
from segmentation.training.run_folder import EpochLog, check_run_folder, clean_run_folder
from segmentation.training.tensor_crops import TensorCrops, crops_from_recipe
from segmentation.training.tuning import tune_thresholds

EpochCallback = Callable[[dict[str, Any]], None]


def fit_member(
    config: Config,
    index: int,
    train_samples: list,
    val_samples: list,
    *,
    resume: bool,
    callbacks: list[EpochCallback],
    device: torch.device,
    info: distributed.DistInfo,
) -> tuple[Path, list | None]:
    """Train ensemble member ``index``.

    Returns:
        The path of its ``best.pt``, and the validation raw outputs of that best epoch when it
        was validated in this call (None otherwise, e.g. when the best came before a resume).
    """
    from segmentation.datasets.torch_dataset import CropDataset

    family = get_family(config.family)
    t, d = config.train, config.data
    member_config = config.members()[index]
    folder = Path(t.output) / f"member_{index}"
    folder.mkdir(parents=True, exist_ok=True)
    seed = t.seed + 1000 * index
    seed_everything(seed)
    model = family.build(member_config).to(device)
    if uses_channels_last(device, t.channels_last, t.amp):
        model = model.to(memory_format=torch.channels_last)
    if d.pipeline == "tensor":
        seed_rank = seed + 7919 * info.rank  # each DDP rank draws its own crops
        dataset = crops_from_recipe(d, family.encode_targets, train_samples, device, seed_rank)
    else:
        dataset = CropDataset(
            train_samples,
            d.crop_size,
            family.encode_targets,
            augment=True,
            seed=seed,
            length=d.samples_per_epoch,
            stained_view=d.stained_view,
        )
    steps_per_epoch = max(1, d.samples_per_epoch // (t.batch_size * info.world_size))
    optimizer = build_optimizer(model, config)
    scheduler = build_scheduler(optimizer, config, steps_per_epoch)
    start_epoch, best_score, history = 0, -1.0, []
    last_path, best_path = folder / "last.pt", folder / "best.pt"
    if resume and last_path.exists():  # checked by check_run_folder: same network, whole file
        ckpt = read_checkpoint(last_path)
        state = ckpt["training_state"]
        model.load_state_dict(ckpt["members"][0]["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        start_epoch, best_score, history = state["epoch"] + 1, state["best_score"], state["history"]
        if info.is_main:
            print(f"member {index}: resuming {last_path} after epoch {start_epoch}", flush=True)
    elif resume and info.is_main:
        print(f"member {index}: no {last_path} yet, training it from epoch 1", flush=True)
    if t.init and not (resume and last_path.exists()):
        members = len(config.members())
        source = load_initial_weights(
            model, t.init, config.family, member_config, index, members, t.init_route
        )
        if info.is_main:
            route = f" ({t.init_route} route)" if t.init_route else ""
            print(f"member {index}: starting from the weights of {source}{route}", flush=True)
    train_model = model
    if info.enabled:
        ids = [device.index] if device.type == "cuda" else None
        # Mask R-CNN's mask head gets no gradient from a crop without nuclei, and a shallow
        # smp encoder keeps stages it never runs: DDP must then look for unused parameters.
        find_unused = not family.dense or has_unused_parameters(model, device)
        train_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=ids, find_unused_parameters=find_unused
        )
    val_images = prepared_images(val_samples, d.stained_view) if info.is_main else []
    logger = EpochLog(folder, info.is_main)
    started = time.perf_counter()
    best_raws = None
    for epoch in range(start_epoch, t.epochs):
        if isinstance(dataset, TensorCrops):
            dataset.set_epoch(epoch)
            loader = dataset.epoch_batches(t.batch_size, steps_per_epoch)
        else:
            loader = make_loader(
                dataset,
                family,
                batch_size=t.batch_size,
                workers=d.workers,
                epoch=epoch,
                seed=seed,
                rank=info.rank,
                world_size=info.world_size,
            )
        stats = train_one_epoch(
            family,
            train_model,
            loader,
            optimizer,
            scheduler,
            device=device,
            amp=t.amp,
            channels_last=t.channels_last,
            grad_clip=t.grad_clip,
            progress=t.progress and info.is_main,
            desc=f"member {index} epoch {epoch + 1}/{t.epochs}",
        )
        out_of_time = (
            t.max_minutes is not None and (time.perf_counter() - started) > 60 * t.max_minutes
        )
        last_epoch = epoch == t.epochs - 1 or out_of_time
        row: dict[str, Any] = {
            "member": index,
            "epoch": epoch + 1,
            "lr": optimizer.param_groups[0]["lr"],
            **stats,
        }
        if info.is_main:
            if (epoch + 1) % t.val_every == 0 or last_epoch:
                predictor = SegmentationModel(config.family, [model], device=device)
                raws = predict_validation(predictor, val_images)
                metrics = score_raw(family, raws, val_samples)
                row.update({f"val_{k}": v for k, v in metrics.items() if k != "images"})
                if metrics["score"] > best_score:
                    best_score, best_raws = metrics["score"], raws
                    atomic_save(
                        _member_checkpoint(config, member_config, model, metrics, None), best_path
                    )
            history.append(row)
            state = {
                "epoch": epoch,
                "best_score": best_score,
                "history": history,
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": rng_state(),
            }
            atomic_save(_member_checkpoint(config, member_config, model, {}, state), last_path)
            logger.log(history)
            elapsed = time.perf_counter() - started
            print(_format_row(index, row, t.epochs, elapsed), flush=True)
        for callback in callbacks:
            callback(row)
        distributed.barrier(info)
        if out_of_time:
            break
    sums = distributed.parameter_checksums(model, info)
    if info.is_main and info.enabled:
        (folder / "ddp_replicas.json").write_text(json.dumps({"checksums": sums}))
    return best_path, best_raws


def has_unused_parameters(model: torch.nn.Module, device: torch.device) -> bool:
    """True when a forward/backward pass of a small dummy batch leaves a parameter without a
    gradient (dense networks only). Gradients and batch-norm statistics are restored."""
    saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.train()
    model(torch.zeros(2, 3, 64, 64, device=device)).float().sum().backward()
    unused = any(p.requires_grad and p.grad is None for p in model.parameters())
    model.zero_grad(set_to_none=True)
    model.load_state_dict(saved)
    return unused


def _member_checkpoint(config, member_config, model, metrics, state) -> dict[str, Any]:
    return make_checkpoint(
        family=config.family,
        members=[{"config": member_config, "state_dict": model.state_dict()}],
        thresholds={},
        metrics=metrics,
        recipe=config.to_dict(),
        training_state=state,
    )


def _format_row(index: int, row: dict[str, Any], epochs: int, elapsed: float) -> str:
    parts = [
        f"member {index} epoch {row['epoch']}/{epochs}",
        f"loss {row.get('total', float('nan')):.4f}",
        f"{row['crops_per_s']:.1f} crops/s",
        f"{elapsed:.0f} s",
    ]
    if "val_score" in row:
        parts.append(f"val score {row['val_score']:.4f} F1@0.7 {row['val_f1_0.7']:.4f}")
    return " | ".join(parts)


def assemble_ensemble(
    config: Config,
    member_paths: list[Path],
    val_samples: list,
    device: torch.device,
    raws: list | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Combine members' best weights, tune thresholds on the validation split, write model.pt.

    ``raws``: the ensemble's validation raw outputs when already known (a one-member run that
    just validated its best epoch); otherwise the members predict the validation images."""
    family = get_family(config.family)
    members = []
    for path in member_paths:
        ckpt = read_checkpoint(path)
        members.append(ckpt["members"][0])
    predictor = SegmentationModel.from_checkpoint(
        make_checkpoint(
            family=config.family, members=members, thresholds={}, metrics={}, recipe={}
        ),
        device,
    )
    if raws is None:
        raws = predict_validation(predictor, prepared_images(val_samples, config.data.stained_view))
    default_metrics = score_raw(family, raws, val_samples)
    if config.train.tune_thresholds and family.threshold_grid():
        thresholds, metrics = tune_thresholds(family, raws, val_samples)
    else:
        thresholds, metrics = predictor.thresholds_dict(), default_metrics
    summary = {
        "val_score": metrics["score"],
        "val_f1_0.7": metrics["f1_0.7"],
        "val_f1_mean": metrics["f1_mean"],
        "val_images": metrics["images"],
        "val_score_default_thresholds": default_metrics["score"],
    }
    path = Path(config.train.output) / "model.pt"
    ckpt = make_checkpoint(
        family=config.family,
        members=members,
        thresholds=thresholds,
        metrics=summary,
        recipe=config.to_dict(),
    )
    atomic_save(ckpt, path)
    return path, summary


def fit(
    config: Config,
    *,
    resume: bool = False,
    overwrite: bool = False,
    callbacks: list[EpochCallback] | None = None,
) -> Path | None:
    """Train the recipe's members and write ``<train.output>/model.pt``.

    Args:
        config: a validated recipe (:func:`segmentation.training.config.load_config`).
        resume: continue each member from its ``last.pt`` (optimizer, scheduler, epoch, RNG); a
            member without one (not reached before the run stopped) starts from scratch.
        overwrite: remove the run that ``train.output`` holds (``model.pt``, ``member_N/``)
            before training; without it (or ``resume``) such a folder is refused.
        callbacks: called with each epoch's log row (a dict), on every rank.

    Returns:
        Path of the model file on the main rank (None on other DDP ranks).

    Raises:
        ValueError: the run folder does not allow this start (see
            :func:`segmentation.training.run_folder.check_run_folder`): it holds a run and
            neither flag is given, ``resume`` finds no ``last.pt``, a damaged one, or one
            trained with another network config (the changed keys are named);
            ``train.init`` names a file that is missing, of another family, member count or
            network (:mod:`segmentation.training.init_weights`).
    """
    family = get_family(config.family)
    device = resolve_device(config.train.device)
    if device.type == "cuda" and "LOCAL_RANK" in os.environ:
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    info = distributed.init_distributed(device)
    try:
        if len(config.members()) > 1 and not family.dense:
            raise ValueError(f"family {config.family!r} does not support ensembles (model.members)")
        n = len(config.members())
        indices = [config.train.member] if config.train.member is not None else list(range(n))
        for i in indices:
            if not 0 <= i < n:
                raise ValueError(f"train.member={i} but the recipe has {n} member(s)")
        check_run_folder(config, indices, resume=resume, overwrite=overwrite)
        if config.train.init:  # a file that does not fit fails now, not after a member's training
            for i in indices:
                initial_state(
                    config.train.init,
                    config.family,
                    config.members()[i],
                    i,
                    n,
                    config.train.init_route,
                )
        distributed.barrier(info)  # every rank has looked before the main one removes anything
        if info.is_main:
            only = indices if config.train.member is not None else None
            removed = clean_run_folder(
                config.train.output, overwrite=overwrite and not resume, members=only
            )
            if overwrite and removed:
                print(f"--overwrite: removed the previous run in {config.train.output}", flush=True)
        distributed.barrier(info)
        train_samples, val_samples, _ = training_split(config.data)
        trained = {}
        for i in indices:
            trained[i] = fit_member(
                config,
                i,
                train_samples,
                val_samples,
                resume=resume,
                callbacks=callbacks or [],
                device=device,
                info=info,
            )
        if not info.is_main:
            return None
        out = Path(config.train.output)
        paths = [out / f"member_{i}" / "best.pt" for i in range(n)]
        paths = [p for p in paths if p.exists()]
        # a one-member model is the member's best epoch, whose validation outputs are known
        known = [raws for best, raws in trained.values() if [best] == paths]
        raws = known[0] if known else None
        path, summary = assemble_ensemble(config, paths, val_samples, device, raws)
        print(
            f"wrote {path} ({len(paths)} member(s)): validation score {summary['val_score']:.4f}, "
            f"F1@0.7 {summary['val_f1_0.7']:.4f} on {summary['val_images']} images",
            flush=True,
        )
        return path
    finally:
        distributed.cleanup(info)
