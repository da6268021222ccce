"""Mask R-CNN network: config, no downloads, training steps on CPU, prediction, family object."""

import numpy as np
import pytest
import torch
import yaml
from torchvision.models._api import WeightsEnum
from torchvision.models.detection.transform import GeneralizedRCNNTransform

from segmentation.datasets.synthetic import synthetic_nuclei
from segmentation.models.base import Family
from segmentation.models.maskrcnn.config import MODEL_KEYS, resolve_config
from segmentation.models.maskrcnn.family import FAMILY, MaskRCNNThresholds
from segmentation.models.maskrcnn.model import KeepSizeTransform, build_model
from segmentation.models.registry import get_family
from tests.paths import CONFIG_DIR

TINY = yaml.safe_load((CONFIG_DIR / "tiny_maskrcnn.yaml").read_text())["model"]


def _labels(seed: int, n: int, size: int = 64) -> np.ndarray:
    return synthetic_nuclei((size, size), n, seed=seed, radius_range=(3, 6)).labels


def _images(labels: list[np.ndarray]) -> torch.Tensor:
    """Bright nuclei on a dark background, ``(B, 3, H, W)`` float32 in [0.1, 0.9]."""
    fg = np.stack([(lab > 0).astype(np.float32) for lab in labels])
    return torch.from_numpy(np.repeat(fg[:, None], 3, axis=1) * 0.8 + 0.1)


@pytest.fixture
def no_downloads(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a weight download was requested")

    monkeypatch.setattr(WeightsEnum, "get_state_dict", refuse)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)


def test_defaults_are_sized_for_nuclei_and_download_nothing(no_downloads):
    model = build_model({})
    cfg = model.maskrcnn_config
    assert cfg["backbone"] == "resnet50" and cfg["weights"] is None
    assert cfg["weights_backbone"] is None
    assert model.roi_heads.detections_per_img >= 500
    assert model.rpn.anchor_generator.sizes == ((8,), (16,), (32,), (64,), (128,))
    assert model.rpn._post_nms_top_n["testing"] >= 1000
    assert model.roi_heads.fg_bg_sampler.batch_size_per_image >= 300
    assert isinstance(model.transform, KeepSizeTransform)  # no hidden upscaling
    assert model.roi_heads.mask_roi_pool.output_size == (14, 14)  # 28x28 masks
    assert all(p.requires_grad for p in model.backbone.body.parameters())  # from scratch


def test_tiny_recipe_builds_without_downloads(no_downloads):
    model = build_model(TINY)
    assert model.roi_heads.detections_per_img >= 500
    assert model.roi_heads.mask_roi_pool.output_size == (7, 7)
    v2 = build_model({**TINY, "heads": "v2", "norm": "group"})
    assert any(isinstance(m, torch.nn.GroupNorm) for m in v2.modules())


def test_unknown_key_is_named_with_the_valid_ones():
    with pytest.raises(ValueError, match=r"backbon'\].*\n.*backbone:") as err:
        build_model({"backbon": "resnet18"})
    assert all(key in str(err.value) for key in MODEL_KEYS)


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"backbone": "resnet9"}, "resnet18"),
        ({"mask_size": 27}, "even"),
        ({"anchor_sizes": [8, 16, 32, 64]}, "5 integers"),
        ({"min_size": 512}, "max_size"),
        ({"max_size": 512}, "min_size"),
        ({"box_nms_thresh": 1.5}, r"\[0, 1\]"),
        ({"box_detections_per_img": 0}, ">= 1"),
        ({"weights": "DEFAULT", "backbone": "resnet18"}, "resnet50 only"),
        ({"weights": "DEFAULT", "weights_backbone": "DEFAULT"}, "not both"),
        ({"norm": "group", "weights_backbone": "DEFAULT"}, "group"),
        ({"norm": "layer"}, "batch"),
    ],
)
def test_invalid_values_are_refused(config, match):
    with pytest.raises(ValueError, match=match):
        resolve_config(config)


def test_unknown_weight_name_is_refused_before_any_download(no_downloads):
    with pytest.raises(ValueError, match="IMAGENET1K_V1"):
        build_model({**TINY, "weights_backbone": "IMAGENET"})


def test_published_weights_load_everything_but_the_class_predictors(monkeypatch):
    """The COCO weights path, with the download replaced by a local state dict."""
    reference = build_model({"norm": "frozen"}).state_dict()
    published = {
        k: torch.full_like(v, 0.5) if v.is_floating_point() else v for k, v in reference.items()
    }
    published["roi_heads.box_predictor.cls_score.weight"] = torch.zeros(91, 1024)
    requested = []

    def fake_download(self, *args, **kwargs):
        requested.append(str(self))
        return published

    monkeypatch.setattr(WeightsEnum, "get_state_dict", fake_download)
    model = build_model({"weights": "DEFAULT"})
    assert requested == ["MaskRCNN_ResNet50_FPN_Weights.COCO_V1"]
    state = model.state_dict()
    assert torch.all(state["backbone.fpn.layer_blocks.0.0.weight"] == 0.5)
    assert state["roi_heads.box_predictor.cls_score.weight"].shape == (2, 1024)
    assert not model.backbone.body.conv1.weight.requires_grad  # 3 trainable stages by default


def test_two_training_steps_on_cpu_including_an_empty_crop():
    torch.manual_seed(0)
    labels = [_labels(0, 8), np.zeros((64, 64), dtype=np.int32)]
    images = _images(labels)
    model = FAMILY.build(TINY).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    targets = FAMILY.collate([FAMILY.encode_targets(lab) for lab in labels])
    before = model.roi_heads.mask_predictor.mask_fcn_logits.weight.detach().clone()
    for _ in range(2):
        losses = FAMILY.training_loss(model, images, targets)
        assert set(losses) == {
            "loss_classifier",
            "loss_box_reg",
            "loss_mask",
            "loss_objectness",
            "loss_rpn_box_reg",
            "total",
        }
        assert all(torch.isfinite(v) for v in losses.values())
        optimizer.zero_grad()
        losses["total"].backward()
        optimizer.step()
    after = model.roi_heads.mask_predictor.mask_fcn_logits.weight
    assert not torch.equal(before, after)
    empty_only = FAMILY.training_loss(model, images[1:], targets[1:])
    assert torch.isfinite(empty_only["total"]) and empty_only["loss_mask"] == 0


def test_modes_and_inputs_are_checked():
    model = FAMILY.build(TINY)
    labels = _labels(1, 3)
    images = _images([labels])
    targets = [FAMILY.encode_targets(labels)]
    with pytest.raises(ValueError, match="model.train()"):
        FAMILY.training_loss(model.eval(), images, targets)
    with pytest.raises(ValueError, match="model.eval()"):
        FAMILY.predict(model.train(), images)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        FAMILY.training_loss(model, images[0], targets)
    with pytest.raises(TypeError, match="torch.from_numpy"):
        FAMILY.training_loss(model, images.numpy(), targets)
    with pytest.raises(ValueError, match="one per image"):
        FAMILY.training_loss(model, images, targets * 2)
    with pytest.raises(ValueError, match="same crop"):
        FAMILY.training_loss(model, images[..., :32, :32], targets)


def test_predict_returns_box_level_masks_matching_torchvision():
    torch.manual_seed(0)
    model = FAMILY.build(TINY).eval()
    images = _images([_labels(2, 6), _labels(3, 6)])
    raws = FAMILY.predict(model, images)
    with torch.no_grad():
        reference = model(list(images))
    assert len(raws) == 2
    for raw, ref in zip(raws, reference, strict=True):
        n = len(raw["scores"])
        assert 0 < n <= model.roi_heads.detections_per_img
        assert raw["boxes"].dtype == np.float32 and raw["boxes"].shape == (n, 4)
        assert raw["scores"].dtype == np.float32 and np.all(np.diff(raw["scores"]) <= 0)
        assert raw["masks"].dtype == np.float32 and raw["masks"].shape == (n, 14, 14)
        assert raw["masks"].min() >= 0 and raw["masks"].max() <= 1
        assert raw["image_shape"] == (64, 64)
        np.testing.assert_allclose(raw["boxes"], ref["boxes"].numpy(), atol=1e-4)
        np.testing.assert_allclose(raw["scores"], ref["scores"].numpy(), atol=1e-6)
        labels = FAMILY.decode(raw, {"score_threshold": 0.0})
        assert labels.shape == (64, 64) and labels.dtype == np.int32


def test_resize_is_torchvisions_when_configured():
    model = FAMILY.build({**TINY, "min_size": 96, "max_size": 128}).eval()
    assert type(model.transform) is GeneralizedRCNNTransform
    raw = FAMILY.predict(model, _images([_labels(4, 4, size=48)]))[0]
    assert raw["image_shape"] == (48, 48)
    assert raw["boxes"].size and raw["boxes"].max() <= 48 + 1e-3  # back in input coordinates


def test_family_object_fulfils_the_contract():
    assert get_family("maskrcnn") is FAMILY and isinstance(FAMILY, Family)
    assert FAMILY.name == "maskrcnn" and FAMILY.dense is False
    assert FAMILY.Thresholds is MaskRCNNThresholds
    grid = FAMILY.threshold_grid()
    for name, values in grid.items():
        for value in values:
            MaskRCNNThresholds(**{name: value})  # every candidate is a valid threshold
    grid["score_threshold"].append(2.0)
    assert 2.0 not in FAMILY.threshold_grid()["score_threshold"]
    empty = {"boxes": np.zeros((0, 4)), "scores": np.zeros(0), "masks": np.zeros((0, 8, 8))}
    with pytest.raises(ValueError, match="scor_threshold"):
        FAMILY.decode(empty, {"scor_threshold": 0.5})
    labels = _labels(5, 5)
    assert FAMILY.decode(FAMILY.oracle_raw(labels)).max() == labels.max()
