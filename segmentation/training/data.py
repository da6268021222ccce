"""From a recipe's ``data`` section to samples, splits and data loaders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from segmentation.datasets.sample_type import Sample
from segmentation.training.config import DataConfig


def load_samples(data: DataConfig) -> list[Sample]:
    """Read every annotated image named by ``data.root``, sorted by name.

    ``root`` may be ``"sample"`` (bundled), ``"synthetic"``, a packed ``.npz`` cache, a DSB2018
    Kaggle-layout folder, or an image folder (with ``data.labels``). Images whose names match a
    ``data.holdout`` pattern are left out.
    """
    root = data.root
    if root == "sample":
        from segmentation.datasets.sample_data import load_sample

        samples = load_sample()
    elif root == "synthetic":
        from segmentation.datasets.synthetic import synthetic_nuclei

        modalities = ("fluorescence", "brightfield", "histology")
        samples = [
            synthetic_nuclei((256, 256), 30, seed=i, modality=modalities[i % 3])
            for i in range(data.synthetic_images)
        ]
        for i, s in enumerate(samples):
            s.name = f"synthetic_{i:03d}"
    else:
        path = Path(root)
        if path.is_file():
            from segmentation.datasets.pack import load_packed

            samples = load_packed(path)
        elif data.labels is not None:
            from segmentation.datasets.folders import load_folder_pairs

            samples = load_folder_pairs(path, data.labels)
        else:
            from segmentation.datasets.dsb import load_dsb

            samples, _ = load_dsb(path)
    samples = sorted((s for s in samples if s.labels is not None), key=lambda s: s.name)
    if data.holdout:
        from segmentation.datasets.split import matches_any

        samples = [s for s in samples if not matches_any(s.name, data.holdout)]
    if data.max_images is not None:
        samples = samples[: data.max_images]
    if not samples:
        held = f" outside data.holdout {data.holdout}" if data.holdout else ""
        raise ValueError(f"data.root {root!r} holds no annotated images{held}")
    return samples


def load_extra_samples(data: DataConfig) -> list[Sample]:
    """The annotated images of every ``data.extra_train`` data set (training only), in order.

    Each entry is a packed ``.npz``, a DSB2018 Kaggle-layout folder, ``"sample"``, or a folder
    holding ``images/`` and ``labels/`` (label files named like the images).
    """
    from dataclasses import replace

    extra: list[Sample] = []
    for root in data.extra_train:
        path = Path(root)
        labels = None
        if path.is_dir() and (path / "images").is_dir() and (path / "labels").is_dir():
            path, labels = path / "images", str(path / "labels")
        sub = replace(data, root=str(path), labels=labels, max_images=None, extra_train=[])
        extra.extend(load_samples(sub))
    return extra


def training_split(data: DataConfig) -> tuple[list[Sample], list[Sample], list[Sample]]:
    """The recipe's data, read and split as the trainer uses it.

    Returns:
        ``(train, val, test)``: :func:`split_three` of :func:`load_samples`, with the
        ``data.extra_train`` samples (:func:`load_extra_samples`) appended to ``train``.
    """
    extra = load_extra_samples(data)
    train, val, test = split_three(load_samples(data), data, extra)
    return train + extra, val, test


def split_samples(samples: list[Sample], data: DataConfig) -> tuple[list[Sample], list[Sample]]:
    """Deterministic train/validation split, stratified by image type (the test split, when
    ``data.test_fraction > 0``, is left out of both; see :func:`split_three`).

    With ``val_fraction == 0`` or fewer than 2 images, the validation split reuses the training
    images (so that thresholds can still be tuned; the metrics then are training metrics).
    """
    train, val, _ = split_three(samples, data)
    return train, val


def split_three(
    samples: list[Sample], data: DataConfig, extra: list[Sample] | None = None
) -> tuple[list[Sample], list[Sample], list[Sample]]:
    """Deterministic train/validation/test split, stratified by image type.

    ``data.split == "random"``: the images held out from training are those that
    ``val_fraction + test_fraction`` alone would hold out (so a model trained with
    ``val_fraction=v+t`` and no test split never saw the test images); they are then cut, again
    stratified and seeded, into validation and test.

    ``data.split == "group"``: the test split is whole acquisition groups
    (:func:`~segmentation.datasets.groups.group_split` with ``test_fraction``), the validation
    split ``val_fraction`` of the remaining images, stratified by image type. Never held out: with
    a ``data.groups`` table, a group that also holds images outside ``samples`` (e.g. BBBC039's,
    whether or not they train), else a group of the ``extra`` samples (default: the
    ``data.extra_train`` data sets).

    Returns:
        ``(train, val, test)`` lists of the input samples, each sorted by name; ``test`` is empty
        when ``data.test_fraction == 0``.
    """
    from segmentation.datasets.split import train_val_split

    if data.split == "group":
        return _split_groups(samples, data, extra)
    held_out = data.val_fraction + data.test_fraction
    if held_out == 0 or len(samples) < 2:
        return samples, samples, []
    train, held = train_val_split(samples, val_fraction=held_out, seed=data.split_seed)
    if data.test_fraction == 0:
        return train, held, []
    if data.val_fraction == 0:
        return train, train, held
    val, test = train_val_split(held, data.test_fraction / held_out, seed=data.split_seed)
    if not val or not test:
        raise ValueError(
            f"{len(held)} held-out image(s) cannot make both a validation and a test split; "
            "raise data.val_fraction / data.test_fraction or use more images"
        )
    return train, val, test


def _split_groups(
    samples: list[Sample], data: DataConfig, extra: list[Sample] | None
) -> tuple[list[Sample], list[Sample], list[Sample]]:
    """The ``data.split == "group"`` case of :func:`split_three`."""
    from segmentation.datasets.groups import acquisition_groups, group_split, read_group_table
    from segmentation.datasets.split import train_val_split

    if data.groups is not None:
        groups = read_group_table(data.groups)
        # extra data sets only train: those outside the table join no split
        missing = [s.name for s in samples if s.name not in groups]
        if missing:
            raise ValueError(
                f"data.groups {data.groups!r} has no group for {len(missing)} image(s), e.g. "
                f"{missing[:3]}; remake it with scripts/figure_groups.py --table, or set "
                "data.groups null to compute the groups"
            )
        # groups with images outside this data set (e.g. BBBC039's) are never held out, with or
        # without extra_train: the test split is then the same for every recipe on the table
        names = {s.name for s in samples}
        keep = sorted({g for name, g in groups.items() if name not in names})
    else:
        extra = load_extra_samples(data) if extra is None else extra
        groups = acquisition_groups(samples + extra)
        keep = sorted({groups[s.name] for s in extra})
    rest, test = group_split(samples, data.test_fraction, data.split_seed, groups, keep=keep)
    if not test:
        raise ValueError(
            "data.split group held out no image: every image type has a single acquisition "
            "group, or only groups that other data share (with a group table, data.max_images "
            "leaves most of it outside the data set); use data.split random"
        )
    if data.val_fraction == 0 or len(rest) < 2:
        return rest, rest, test
    train, val = train_val_split(rest, data.val_fraction, seed=data.split_seed)
    return train, val, test


def collate_batch(family: Any):
    """Collate function: ``(B, 3, H, W)`` float32 images and the family's batched targets."""

    def collate(batch: list[tuple[torch.Tensor, Any]]) -> tuple[torch.Tensor, Any]:
        images = torch.stack([torch.as_tensor(b[0]) for b in batch])
        return images, family.collate([b[1] for b in batch])

    return collate


def make_loader(
    dataset: Dataset,
    family: Any,
    *,
    batch_size: int,
    workers: int,
    epoch: int,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
) -> DataLoader:
    """A loader for one epoch: seeded shuffling (``seed + epoch``), sharded across DDP ranks."""
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch)
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed + epoch))
    per_rank = len(order) // world_size  # equal shards: DDP ranks must take equal step counts
    indices = order[rank : per_rank * world_size : world_size].tolist()
    return DataLoader(
        torch.utils.data.Subset(dataset, indices),
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        collate_fn=collate_batch(family),
        drop_last=len(indices) >= batch_size,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=False,
    )


def prepared_images(samples: list[Sample], stained_view: str = "rgb") -> list[np.ndarray]:
    """Normalised ``(3, H, W)`` float32 inputs of whole images (for validation), stained tissue
    seen as ``stained_view`` (:func:`~segmentation.datasets.nuclear_view.nuclear_view`)."""
    from segmentation.datasets.normalize import prepare_image
    from segmentation.datasets.nuclear_view import nuclear_view

    return [prepare_image(nuclear_view(s.image, stained_view)) for s in samples]
