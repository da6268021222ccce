"""Build torchvision's Mask R-CNN for nuclei, compute its training losses and run inference.

The network is torchvision's ``MaskRCNN`` composed from public parts (a ResNet, ``BackboneWithFPN``,
``AnchorGenerator``, the RPN/box/mask heads of ``maskrcnn_resnet50_fpn`` or ``_v2``), configured by
:mod:`segmentation.models.maskrcnn.config`. Nothing is downloaded unless the config names published
weights.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torchvision.models import get_model_weights, resnet
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection import mask_rcnn as tv_mask_rcnn
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import (
    FastRCNNConvFCHead,
    FastRCNNPredictor,
    TwoMLPHead,
)
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.rpn import RPNHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform, resize_boxes
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool
from torchvision.ops.misc import FrozenBatchNorm2d

from segmentation.models.maskrcnn.config import resolve_config
from segmentation.models.maskrcnn.targets import collate

_FEATURE_MAPS = ["0", "1", "2", "3"]  # FPN levels the RoI heads pool from (strides 4-32)
_STAGES = ["layer4", "layer3", "layer2", "layer1", "conv1"]


class KeepSizeTransform(GeneralizedRCNNTransform):
    """torchvision's input transform without the resize: normalise and pad to a multiple of 32."""

    def resize(self, image, target=None):
        """Return ``(image, target)`` unchanged."""
        return image, target


def _norm_layer(name: str):
    if name == "group":
        return lambda channels: nn.GroupNorm(math.gcd(32, channels), channels)
    return {"batch": nn.BatchNorm2d, "frozen": FrozenBatchNorm2d}[name]


def _weights(enum_cls: Any, name: str | None, key: str) -> Any:
    if name is None:
        return None
    try:
        return enum_cls.verify(name)
    except (KeyError, TypeError) as err:
        valid = [f"{enum_cls.__name__}.{m}" for m in enum_cls.__members__]
        raise ValueError(f"model.{key} {name!r} is not a known weight; valid: {valid}") from err


def _backbone(cfg: dict[str, Any], norm: str) -> BackboneWithFPN:
    weights = _weights(
        get_model_weights(cfg["backbone"]), cfg["weights_backbone"], "weights_backbone"
    )
    body = resnet.__dict__[cfg["backbone"]](weights=weights, norm_layer=_norm_layer(norm))
    trainable = cfg["trainable_backbone_layers"]
    if trainable is None:
        trainable = 3 if weights is not None or cfg["weights"] is not None else 5
    train_prefixes = tuple(_STAGES[:trainable]) + (("bn1",) if trainable == 5 else ())
    for name, parameter in body.named_parameters():
        if not name.startswith(train_prefixes):
            parameter.requires_grad_(False)
    stage2 = body.inplanes // 8  # 64 for resnet18/34, 256 for resnet50+
    return BackboneWithFPN(
        body,
        return_layers={f"layer{k}": str(k - 1) for k in (1, 2, 3, 4)},
        in_channels_list=[stage2 * 2**i for i in range(4)],
        out_channels=cfg["fpn_channels"],
        extra_blocks=LastLevelMaxPool(),
        norm_layer=_norm_layer("group" if norm == "group" else "batch")
        if cfg["heads"] == "v2"
        else None,
    )


def _load_published(model: MaskRCNN, cfg: dict[str, Any]) -> None:
    enum_cls = (
        tv_mask_rcnn.MaskRCNN_ResNet50_FPN_V2_Weights
        if cfg["heads"] == "v2"
        else tv_mask_rcnn.MaskRCNN_ResNet50_FPN_Weights
    )
    weights = _weights(enum_cls, cfg["weights"], "weights")
    state = weights.get_state_dict(progress=True, check_hash=True)
    own = model.state_dict()
    predictors = ("roi_heads.box_predictor.", "roi_heads.mask_predictor.")  # 91 COCO classes
    misfits = [
        k
        for k, v in state.items()
        if not k.startswith(predictors) and (k not in own or own[k].shape != v.shape)
    ]
    if misfits:
        raise ValueError(
            f"{weights} does not fit this architecture ({len(misfits)} tensors, e.g. "
            f"{misfits[:3]}); keep fpn_channels 256, box_representation_size 1024, "
            "mask_head_channels 256 and mask_head_layers 4 to load it"
        )
    model.load_state_dict({k: v for k, v in state.items() if not k.startswith(predictors)}, False)


def build_model(config: dict[str, Any] | None = None) -> MaskRCNN:
    """Build a Mask R-CNN for one class (nucleus) from a model config.

    Args:
        config: the YAML ``model:`` section; keys and defaults in
            :data:`segmentation.models.maskrcnn.config.MODEL_KEYS`. Not modified.

    Returns:
        torchvision ``MaskRCNN``. In train mode ``model(images, targets)`` returns its losses; use
        :func:`training_loss` and :func:`predict` with ``(B, 3, H, W)`` float32 batches. The
        resolved config is kept as ``model.maskrcnn_config``.

    Raises:
        ValueError: unknown config keys (listing the valid ones) or invalid values.
    """
    cfg = resolve_config(config)
    pretrained = cfg["weights"] is not None or cfg["weights_backbone"] is not None
    norm = cfg["norm"] or ("frozen" if pretrained else "batch")
    backbone = _backbone(cfg, norm)
    channels = cfg["fpn_channels"]
    anchors = AnchorGenerator(
        sizes=tuple((int(s),) for s in cfg["anchor_sizes"]),
        aspect_ratios=(tuple(float(r) for r in cfg["anchor_aspect_ratios"]),) * 5,
    )
    n_anchors = anchors.num_anchors_per_location()[0]
    rep, mask_ch, v2 = (
        cfg["box_representation_size"],
        cfg["mask_head_channels"],
        cfg["heads"] == "v2",
    )
    head_norm = _norm_layer("group" if norm == "group" else "batch") if v2 else None
    if v2:
        box_head = FastRCNNConvFCHead((channels, 7, 7), [channels] * 4, [rep], norm_layer=head_norm)
    else:
        box_head = TwoMLPHead(channels * 7 * 7, rep)
    resize = cfg["min_size"] is not None
    model = MaskRCNN(
        backbone,
        num_classes=None,
        min_size=cfg["min_size"] if resize else 1,
        max_size=cfg["max_size"] if resize else 1,
        image_mean=list(cfg["image_mean"]),
        image_std=list(cfg["image_std"]),
        rpn_anchor_generator=anchors,
        rpn_head=RPNHead(channels, n_anchors, conv_depth=2 if v2 else 1),
        rpn_pre_nms_top_n_train=cfg["rpn_pre_nms_top_n_train"],
        rpn_pre_nms_top_n_test=cfg["rpn_pre_nms_top_n_test"],
        rpn_post_nms_top_n_train=cfg["rpn_post_nms_top_n_train"],
        rpn_post_nms_top_n_test=cfg["rpn_post_nms_top_n_test"],
        rpn_nms_thresh=cfg["rpn_nms_thresh"],
        rpn_batch_size_per_image=cfg["rpn_batch_size_per_image"],
        box_roi_pool=MultiScaleRoIAlign(_FEATURE_MAPS, output_size=7, sampling_ratio=2),
        box_head=box_head,
        box_predictor=FastRCNNPredictor(rep, 2),
        box_score_thresh=cfg["box_score_thresh"],
        box_nms_thresh=cfg["box_nms_thresh"],
        box_detections_per_img=cfg["box_detections_per_img"],
        box_batch_size_per_image=cfg["box_batch_size_per_image"],
        box_positive_fraction=cfg["box_positive_fraction"],
        mask_roi_pool=MultiScaleRoIAlign(_FEATURE_MAPS, cfg["mask_size"] // 2, sampling_ratio=2),
        mask_head=MaskRCNNHeads(channels, [mask_ch] * cfg["mask_head_layers"], 1, head_norm),
        mask_predictor=MaskRCNNPredictor(mask_ch, mask_ch, 2),
    )
    if not resize:
        model.transform = KeepSizeTransform(1, 1, list(cfg["image_mean"]), list(cfg["image_std"]))
    if cfg["weights"] is not None:
        _load_published(model, cfg)
    model.maskrcnn_config = cfg
    return model


def _check_images(images: Any) -> torch.Tensor:
    if not isinstance(images, torch.Tensor):
        raise TypeError(
            f"images must be a torch.Tensor (B, 3, H, W) float32, got {type(images).__name__}; "
            "convert with torch.from_numpy(batch)"
        )
    if images.ndim != 4 or images.shape[1] != 3 or not images.is_floating_point():
        raise ValueError(
            f"images must be a (B, 3, H, W) float tensor, got {images.dtype} with shape "
            f"{tuple(images.shape)}; add a batch axis with images[None] or convert with .float()"
        )
    return images


def training_loss(
    model: nn.Module, images: torch.Tensor, targets: list[dict[str, Any]]
) -> dict[str, torch.Tensor]:
    """Forward a batch in train mode and return torchvision's losses plus their sum.

    Args:
        model: a network from :func:`build_model` (or wrapped in DistributedDataParallel), in train
            mode.
        images: ``(B, 3, H, W)`` float32 tensor.
        targets: ``B`` dicts from ``encode_targets`` or ``collate`` (masks ``(N, H, W)``).

    Returns:
        ``{"loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg",
        "total"}``: scalar tensors; ``total`` is their sum, ready for ``backward()``.
    """
    if not model.training:
        raise ValueError(
            "Mask R-CNN returns losses only in train mode (in eval mode torchvision returns "
            "detections); call model.train() before training_loss"
        )
    images = _check_images(images)
    batch = collate(targets)
    if len(batch) != len(images):
        raise ValueError(f"got {len(images)} images but {len(batch)} targets; pass one per image")
    for i, target in enumerate(batch):
        if target["masks"].shape[0] and target["masks"].shape[-2:] != images.shape[-2:]:
            raise ValueError(
                f"target {i} masks are {tuple(target['masks'].shape[-2:])} but the images are "
                f"{tuple(images.shape[-2:])}; encode the targets from the same crop"
            )
    device = images.device
    batch = [{k: v.to(device) for k, v in t.items()} for t in batch]
    losses = dict(model(list(images), batch))
    losses["total"] = sum(losses.values())
    return losses


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor) -> list[dict[str, Any]]:
    """Detect nuclei in a batch; masks stay at the mask head's resolution (pasted in ``decode``).

    Runs torchvision's pipeline (transform, backbone, RPN, RoI heads) without its final pasting
    of every mask into a full-image float32 array.

    Args:
        model: a network from :func:`build_model` (or DDP-wrapped), in eval mode.
        images: ``(B, 3, H, W)`` float32 tensor.

    Returns:
        One dict per image, sorted by decreasing score: ``boxes`` ``(N, 4)`` float32 ``[x1, y1,
        x2, y2]`` in input pixel coordinates, ``scores`` ``(N,)`` float32, ``masks`` ``(N, M, M)``
        float32 probabilities over each box, ``image_shape`` ``(H, W)``.
    """
    net = getattr(model, "module", model)
    if net.training:
        raise ValueError("predict needs the model in eval mode; call model.eval() first")
    images = _check_images(images)
    original = (int(images.shape[-2]), int(images.shape[-1]))
    image_list, _ = net.transform(list(images))
    features = net.backbone(image_list.tensors)
    proposals, _ = net.rpn(image_list, features)
    detections, _ = net.roi_heads(features, proposals, image_list.image_sizes)
    out = []
    for det, size in zip(detections, image_list.image_sizes, strict=True):
        boxes = resize_boxes(det["boxes"], size, original)
        out.append(
            {
                "boxes": boxes.float().cpu().numpy(),
                "scores": det["scores"].float().cpu().numpy(),
                "masks": det["masks"][:, 0].float().cpu().numpy(),
                "image_shape": original,
            }
        )
    return out
