"""The Mask R-CNN oracle: perfect network outputs at the mask head's resolution, decoded back."""

import numpy as np
import pytest
import torch
from torchvision.models.detection.roi_heads import paste_masks_in_image, project_masks_on_boxes

from segmentation.datasets.dsb import default_dsb_root, load_dsb
from segmentation.datasets.io import read_labels
from segmentation.datasets.synthetic import synthetic_nuclei
from segmentation.evaluation.matching import dsb_score
from segmentation.models.maskrcnn.decode import MaskRCNNThresholds, decode
from segmentation.models.maskrcnn.roundtrip import mask_roundtrip, oracle_raw
from segmentation.models.maskrcnn.targets import encode_targets
from tests.paths import REPO


@pytest.fixture(scope="module")
def nuclei() -> np.ndarray:
    return synthetic_nuclei((160, 160), 40, seed=0, radius_range=(3, 20)).labels


def test_oracle_masks_are_torchvisions_mask_targets(nuclei):
    raw = oracle_raw(nuclei, 28)
    t = encode_targets(nuclei)
    n = len(t["boxes"])
    expected = project_masks_on_boxes(
        torch.from_numpy(t["masks"]), torch.from_numpy(t["boxes"]), torch.arange(n), 28
    )
    np.testing.assert_allclose(raw["masks"], expected.numpy(), atol=1e-4)
    np.testing.assert_array_equal(raw["boxes"], t["boxes"])
    assert raw["scores"].dtype == np.float32 and (raw["scores"] == 1).all()
    assert raw["masks"].shape == (n, 28, 28) and raw["image_shape"] == nuclei.shape


@pytest.mark.parametrize("mask_size", [28, 56])
def test_round_trip_on_synthetic_nuclei_scores_above_0_9(nuclei, mask_size):
    out = mask_roundtrip(nuclei, mask_size)
    assert out.dtype == np.int32 and out.shape == nuclei.shape
    assert dsb_score(nuclei, out) > 0.9


def test_coarse_masks_cost_accuracy(nuclei):
    """The round trip measures the resolution: 4x4 masks lose shape detail, 28x28 do not."""
    assert dsb_score(nuclei, mask_roundtrip(nuclei, 4)) < dsb_score(nuclei, mask_roundtrip(nuclei))


def test_exact_inverse_paste_beats_torchvisions_paste(nuclei):
    """Why decode pastes itself: torchvision's paste shifts masks by about half a pixel."""
    raw = oracle_raw(nuclei, 28)
    full = paste_masks_in_image(
        torch.from_numpy(raw["masks"])[:, None], torch.from_numpy(raw["boxes"]), nuclei.shape
    )[:, 0].numpy()
    t = MaskRCNNThresholds(nms_iou=1.0, min_size=0)
    ours = dsb_score(nuclei, decode(raw, t))
    theirs = dsb_score(
        nuclei, decode({k: raw[k] for k in ("boxes", "scores")} | {"masks": full}, t)
    )
    assert ours > theirs + 0.05


def test_dense_image_keeps_hundreds_of_nuclei():
    labels = synthetic_nuclei((512, 512), 450, seed=1, radius_range=(4, 9)).labels
    n = labels.max()
    assert n >= 400
    out = mask_roundtrip(labels)
    assert out.max() > 100 and out.max() >= 0.95 * n


def test_empty_labels_and_input_not_modified(nuclei):
    raw = oracle_raw(np.zeros((12, 20), dtype=np.uint8))
    assert raw["boxes"].shape == (0, 4) and raw["masks"].shape == (0, 28, 28)
    assert decode(raw).shape == (12, 20) and decode(raw).max() == 0
    before = nuclei.copy()
    mask_roundtrip(nuclei)
    np.testing.assert_array_equal(nuclei, before)


@pytest.mark.parametrize(("size", "error"), [(27, ValueError), (0, ValueError), (28.0, TypeError)])
def test_mask_size_must_be_an_even_integer(size, error):
    with pytest.raises(error, match="mask_size"):
        oracle_raw(np.zeros((4, 4), np.int32), size)


def test_oracle_on_the_bundled_sample():
    files = sorted((REPO / "segmentation" / "sample" / "labels").glob("*.png"))
    assert len(files) >= 5, "the bundled sample is missing"
    scores = [dsb_score(lab, mask_roundtrip(lab)) for lab in map(read_labels, files)]
    assert min(scores) > 0.97 and np.mean(scores) > 0.99, scores


@pytest.mark.dsb
def test_oracle_on_dsb_images():
    root = default_dsb_root()
    if not root.is_dir():
        pytest.skip(f"DSB2018 stage1_train not found at {root}; set $SEGMENTATION_DSB_ROOT")
    ids = sorted(p.name for p in root.iterdir() if (p / "images").is_dir())[::66]
    samples, _ = load_dsb(root, ids)
    scores = [dsb_score(s.labels, mask_roundtrip(s.labels)) for s in samples]
    assert np.mean(scores) > 0.99, scores  # measured 0.9998 on all 664 images (28x28)
