"""Crops cut on the training device (TensorCrops): shapes, alignment of image and targets under
every geometric transform, reproducibility, image-type balance, photometric ranges."""

import numpy as np
import pytest
import torch

from segmentation.datasets.normalize import CLIP_HIGH, CLIP_LOW
from segmentation.datasets.sample_type import Sample
from segmentation.datasets.synthetic import synthetic_nuclei
from segmentation.models.unet.targets import encode_targets
from segmentation.training.tensor_crops import Photometric, TensorCrops


def _samples():
    out = [synthetic_nuclei((96, 120), 12, seed=i, touching=False) for i in range(3)]
    out.append(synthetic_nuclei((48, 40), 3, seed=7, touching=False))  # smaller than the crop
    out.append(synthetic_nuclei((80, 80), 8, seed=8, modality="histology"))
    out.append(synthetic_nuclei((80, 80), 8, seed=9, modality="brightfield"))
    return out


def test_batch_shapes_dtypes_and_ranges():
    crops = TensorCrops(_samples(), encode_targets, 64, photometric=Photometric(), seed=1)
    images, targets = crops.batch(16)
    assert images.shape == (16, 3, 64, 64) and images.dtype == torch.float32
    assert targets.shape == (16, 3, 64, 64) and targets.dtype == torch.float32
    assert CLIP_LOW - 1e-6 <= float(images.min()) and float(images.max()) <= CLIP_HIGH + 1e-6
    assert set(torch.unique(targets).tolist()) <= {0.0, 1.0}
    assert crops.binary_targets


def test_image_and_targets_stay_aligned_under_zoom_rotation_and_flips():
    # fluorescence without noise: a pixel is bright exactly where the body target is 1 (up to the
    # half-pixel that bilinear and nearest sampling disagree on at nucleus edges)
    samples = [synthetic_nuclei((128, 128), 15, seed=i, touching=False) for i in range(4)]
    for s in samples:
        s.image = np.where(s.labels > 0, 200, 10).astype(np.uint8)[..., None]
    crops = TensorCrops(samples, encode_targets, 64, scale=(0.7, 1.4), seed=3)
    images, targets = crops.batch(32)
    bright = images[:, 0] > (images[:, 0].amax(dim=(1, 2), keepdim=True) + CLIP_LOW) / 2
    body = targets[:, 0] > 0.5
    agreement = (bright == body).float().mean().item()
    assert agreement > 0.97
    # a misaligned transform (targets flipped against the image) agrees far less
    assert (bright == body.flip(-1)).float().mean().item() < agreement - 0.03


def test_batches_are_reproducible_and_differ_by_step_and_epoch():
    a = TensorCrops(_samples(), encode_targets, 64, photometric=Photometric(), seed=5)
    b = TensorCrops(_samples(), encode_targets, 64, photometric=Photometric(), seed=5)
    x1, y1 = a.batch(8, step=2)
    x2, y2 = b.batch(8, step=2)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(a.batch(8, step=3)[0], x1)
    a.set_epoch(1)
    assert not torch.equal(a.batch(8, step=2)[0], x1)
    assert len(list(a.epoch_batches(4, steps=3))) == 3


def test_type_balance_weights_each_image_type_alike():
    samples = _samples()  # 4 fluorescence, 1 histology, 1 brightfield
    flat = TensorCrops(samples, encode_targets, 32, type_balance=0.0)
    balanced = TensorCrops(samples, encode_targets, 32, type_balance=1.0)
    assert np.allclose(flat.weights.numpy(), 1 / 6)
    w = balanced.weights.numpy()
    assert np.isclose(w[:4].sum(), 1 / 3) and np.isclose(w[4], 1 / 3) and np.isclose(w[5], 1 / 3)
    assert balanced.type_counts == {"fluorescence": 4, "histology": 1, "brightfield": 1}


def test_only_bright_background_images_are_inverted():
    samples = [synthetic_nuclei((64, 64), 6, seed=1), synthetic_nuclei((64, 64), 6, seed=2)]
    samples[1] = synthetic_nuclei((64, 64), 6, seed=2, modality="brightfield")
    off = Photometric(p=0.0, blur_sigma=(0, 0), noise_std=(0, 0), invert_bright=1.0)
    crops = TensorCrops(samples, encode_targets, 32, scale=(1, 1), photometric=off, seed=0)
    images, targets = crops.batch(64)
    body = targets[:, 0] > 0.5
    for i in range(64):
        inside = images[i, 0][body[i]].mean() if body[i].any() else None
        outside = images[i, 0][~body[i]].mean()
        if inside is not None:  # nuclei bright on dark, also for the inverted brightfield crops
            assert inside > outside


def test_colour_jitter_touches_colour_images_only():
    gray = synthetic_nuclei((64, 64), 6, seed=1)
    colour = synthetic_nuclei((64, 64), 6, seed=2, modality="histology")
    quiet = dict(p=0.0, blur_sigma=(0, 0), noise_std=(0, 0), invert_bright=0.0)
    plain = TensorCrops([gray, colour], encode_targets, 32, photometric=Photometric(**quiet))
    jitter = TensorCrops(
        [gray, colour],
        encode_targets,
        32,
        photometric=Photometric(**quiet, grayscale=0.5, stain=0.3),
    )
    x0, _ = plain.batch(32)
    x1, _ = jitter.batch(32)
    k = torch.multinomial(plain.weights, 32, replacement=True, generator=plain._generator(0))
    is_colour = k == 1
    assert torch.equal(x0[~is_colour], x1[~is_colour])
    assert not torch.allclose(x0[is_colour], x1[is_colour])


def test_hematoxylin_view_turns_stained_crops_gray_and_keeps_their_type():
    samples = _samples()  # 4 fluorescence, 1 histology, 1 brightfield
    quiet = Photometric(p=0.0, blur_sigma=(0, 0), noise_std=(0, 0), invert_bright=0.0)
    rgb = TensorCrops(samples, encode_targets, 32, photometric=quiet, type_balance=1.0)
    hem = TensorCrops(
        samples, encode_targets, 32, photometric=quiet, type_balance=1.0, stained_view="hematoxylin"
    )
    assert hem.type_counts == rgb.type_counts  # types come from the images as given
    images, targets = hem.batch(64)
    k = torch.multinomial(hem.weights, 64, replacement=True, generator=hem._generator(0))
    stained = images[k == 4]
    assert len(stained) and torch.equal(stained[:, 0], stained[:, 2])
    body = targets[k == 4, 0] > 0.5  # haematoxylin: nuclei bright on a dark background
    assert stained[:, 0][body].mean() > stained[:, 0][~body].mean() + 0.5
    rgb_images, _ = rgb.batch(64)
    assert not torch.equal(rgb_images[k == 4][:, 0], rgb_images[k == 4][:, 2])


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="at least one sample"):
        TensorCrops([], encode_targets, 32)
    with pytest.raises(ValueError, match="without labels"):
        TensorCrops([Sample("x", np.zeros((8, 8, 1), np.uint8))], encode_targets, 32)
    with pytest.raises(ValueError, match="type_balance"):
        TensorCrops(_samples(), encode_targets, 32, type_balance=2.0)
    with pytest.raises(ValueError, match=r"\(K, H, W\) maps"):
        TensorCrops(_samples(), lambda labels: {"maps": labels}, 32)
