"""CropDataset and the augmentation: reproducibility, identical geometry for image and labels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segmentation.datasets.augment import build_augmentation, window_size
from segmentation.datasets.normalize import CLIP_HIGH, CLIP_LOW, normalize_image
from segmentation.datasets.sample_type import Sample
from segmentation.datasets.synthetic import synthetic_nuclei
from segmentation.datasets.torch_dataset import CropDataset

CROP = 64


def _flat_nuclei(seed=0, shape=(160, 200), dark=False, n=30):
    """Nuclei of one flat intensity on a flat background, so that the image shows the labels."""
    labels = synthetic_nuclei(shape, n, seed=seed).labels
    image = np.where(labels > 0, 200, 20).astype(np.uint8)
    if dark:  # brightfield-like: dark nuclei on a bright background
        image = 255 - image
    return Sample(f"flat{seed}{'d' if dark else ''}", image[..., None], labels)


def _identity(labels):
    return labels


def _items(dataset, indices):
    return [dataset[i] for i in indices]


def _same(items_a, items_b):
    return all(
        torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])
        for a, b in zip(items_a, items_b, strict=True)
    )


def test_items_have_the_documented_types_and_ranges():
    dataset = CropDataset([_flat_nuclei()], CROP, _identity, length=8)
    assert len(dataset) == 8
    for image, labels in _items(dataset, range(8)):
        assert image.dtype == torch.float32 and image.shape == (3, CROP, CROP)
        assert CLIP_LOW <= float(image.min()) and float(image.max()) <= CLIP_HIGH
        assert labels.dtype == np.int32 and labels.shape == (CROP, CROP)
        present = np.unique(labels)
        np.testing.assert_array_equal(present, np.arange(present.size))  # relabelled 0..N


def test_same_seed_same_items_other_seed_or_epoch_other_items():
    samples = [_flat_nuclei(0), _flat_nuclei(1)]
    a = CropDataset(samples, CROP, _identity, seed=3, length=6)
    b = CropDataset(samples, CROP, _identity, seed=3, length=6)
    c = CropDataset(samples, CROP, _identity, seed=4, length=6)
    assert _same(_items(a, range(6)), _items(b, range(6)))
    assert _same(_items(a, range(6)), _items(a, range(6)))  # repeated access: same item
    assert not _same(_items(a, range(6)), _items(c, range(6)))
    first = _items(a, range(6))
    a.set_epoch(1)
    assert not _same(first, _items(a, range(6)))
    a.set_epoch(0)
    assert _same(first, _items(a, range(6)))


def test_dataloader_workers_give_the_same_items():
    dataset = CropDataset([_flat_nuclei(0), _flat_nuclei(1)], CROP, _identity, seed=9, length=8)
    loader = torch.utils.data.DataLoader(dataset, batch_size=2, num_workers=2)
    images = torch.cat([batch[0] for batch in loader])
    expected = torch.stack([dataset[i][0] for i in range(8)])
    assert torch.equal(images, expected)


def _foreground_iou(image, labels):
    fg_image = image[0].numpy() > 0.5
    fg_labels = labels > 0
    return (fg_image & fg_labels).sum() / max(1, (fg_image | fg_labels).sum())


def test_geometric_transforms_are_identical_for_image_and_labels():
    dataset = CropDataset([_flat_nuclei(0), _flat_nuclei(1)], CROP, _identity, seed=1, length=24)
    ious, flipped = [], []
    for image, labels in _items(dataset, range(24)):
        if (labels > 0).sum() < 200:
            continue
        ious.append(_foreground_iou(image, labels))
        flipped.append(_foreground_iou(image, labels[::-1].copy()))
    assert len(ious) >= 10
    assert min(ious) > 0.85, ious  # blur and noise only blur the edge
    assert np.mean(flipped) < 0.7  # the check would notice a transform applied to one side only


def test_encode_output_is_passed_through_unchanged():
    seen = []

    def encode(labels):
        seen.append(labels.copy())
        return {"count": int(labels.max()), "labels": labels}

    dataset = CropDataset([_flat_nuclei()], CROP, encode, augment=False)
    _, targets = dataset[0]
    assert set(targets) == {"count", "labels"} and targets["count"] == seen[0].max()
    np.testing.assert_array_equal(targets["labels"], seen[0])


def test_without_augmentation_the_crop_is_a_window_of_the_normalised_image():
    sample = synthetic_nuclei((100, 120), 20, seed=5)
    dataset = CropDataset([sample], CROP, _identity, augment=False, seed=2)
    image, labels = dataset[0]
    normalised = normalize_image(sample.image)[..., 0]
    windows = np.lib.stride_tricks.sliding_window_view(normalised, (CROP, CROP))
    match = np.argwhere((windows == image[0].numpy()).all(axis=(2, 3)))
    assert len(match) >= 1
    y, x = match[0]
    from segmentation.datasets.labels import relabel_sequential

    np.testing.assert_array_equal(
        labels, relabel_sequential(sample.labels[y : y + CROP, x : x + CROP])
    )


def test_small_images_are_padded_with_labels_zero():
    sample = _flat_nuclei(0, shape=(30, 40), n=3)
    dataset = CropDataset([sample], CROP, _identity, augment=False)
    image, labels = dataset[0]
    assert image.shape == (3, CROP, CROP) and labels.shape == (CROP, CROP)
    assert (labels > 0).sum() == (sample.labels > 0).sum()  # all nuclei inside, nothing invented


def test_only_brightfield_like_images_are_inverted():
    def fg_brighter(dataset):
        out = []
        for image, labels in _items(dataset, range(16)):
            if (labels > 0).sum() > 50 and (labels == 0).sum() > 50:
                values = image[0].numpy()
                out.append(values[labels > 0].mean() > values[labels == 0].mean())
        return out

    fluo = fg_brighter(CropDataset([_flat_nuclei(0)], CROP, _identity, length=16))
    bright = fg_brighter(CropDataset([_flat_nuclei(0, dark=True)], CROP, _identity, length=16))
    assert all(fluo)
    assert any(bright) and not all(bright)


def test_bad_arguments_are_refused():
    sample = _flat_nuclei()
    with pytest.raises(ValueError, match="without labels"):
        CropDataset([Sample("x", sample.image)], CROP, _identity)
    with pytest.raises(ValueError, match="at least one"):
        CropDataset([], CROP, _identity)
    with pytest.raises(ValueError, match="crop_size"):
        CropDataset([sample], 4, _identity)
    with pytest.raises(TypeError, match="callable"):
        CropDataset([sample], CROP, "nope")
    with pytest.raises(IndexError):
        CropDataset([sample], CROP, _identity)[5]


def test_build_augmentation_maps_windows_to_crops():
    size = window_size(CROP, (0.75, 1.33))
    assert size == 86 and size * 0.75 >= CROP
    pipeline = build_augmentation(CROP, invert=True)
    rng = np.random.default_rng(0)
    out = pipeline(
        image=rng.random((size, size, 3), dtype=np.float32),
        mask=rng.integers(0, 5, (size, size)).astype(np.int32),
    )
    assert out["image"].shape == (CROP, CROP, 3) and out["mask"].shape == (CROP, CROP)
    assert set(np.unique(out["mask"])) <= set(range(5))  # nearest neighbour: no mixed labels
    with pytest.raises(ValueError, match="scale"):
        build_augmentation(CROP, scale=(1.2, 0.8))
