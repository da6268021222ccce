"""The ``model:`` section of a Mask R-CNN recipe: its keys, nucleus-sized defaults and validation.

Keys follow torchvision's ``MaskRCNN`` arguments (``rpn_*``, ``box_*``, ``mask_*``) so that each one
maps to the torchvision parameter of the same name. The defaults differ from torchvision's COCO
ones where nuclei need it: anchors of 8-128 px instead of 32-512, up to 1000 detections instead of
100, more RPN proposals and RoI samples per image, and no resizing of the input.
"""

from __future__ import annotations

from typing import Any

from segmentation.models.maskrcnn.roundtrip import DEFAULT_MASK_SIZE, check_mask_size

#: ResNet depths torchvision builds with an FPN.
BACKBONES = (
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "resnext101_32x8d",
    "wide_resnet50_2",
    "wide_resnet101_2",
)
NORMS = ("batch", "group", "frozen")
HEADS = ("v1", "v2")

#: key -> (default, help text).
MODEL_KEYS: dict[str, tuple[Any, str]] = {
    "backbone": ("resnet50", "ResNet of the FPN backbone: " + ", ".join(BACKBONES)),
    "heads": ("v1", "v1: maskrcnn_resnet50_fpn heads; v2: maskrcnn_resnet50_fpn_v2 heads"),
    "weights": (None, "null (default, nothing downloaded) or COCO Mask R-CNN weights: DEFAULT"),
    "weights_backbone": (None, "null (default) or ImageNet weights of the ResNet: DEFAULT"),
    "trainable_backbone_layers": (None, "0-5 ResNet stages trained; null: 5 from scratch, else 3"),
    "norm": (None, "batch | group | frozen; null: frozen with pretrained weights, else batch"),
    "fpn_channels": (256, "FPN width (also the RPN/box/mask head input width)"),
    "min_size": (None, "null: keep the input size; int or list: torchvision's resize"),
    "max_size": (None, "cap of the longer side when min_size is set"),
    "image_mean": ([0.485, 0.456, 0.406], "per-channel mean subtracted inside the model"),
    "image_std": ([0.229, 0.224, 0.225], "per-channel std divided inside the model"),
    "anchor_sizes": ([8, 16, 32, 64, 128], "one anchor size (px) per FPN level, 5 levels"),
    "anchor_aspect_ratios": ([0.5, 1.0, 2.0], "anchor height/width ratios, same on every level"),
    "rpn_pre_nms_top_n_train": (4000, "RPN proposals kept per level before NMS, training"),
    "rpn_post_nms_top_n_train": (2000, "RPN proposals kept after NMS, training"),
    "rpn_pre_nms_top_n_test": (4000, "RPN proposals kept per level before NMS, inference"),
    "rpn_post_nms_top_n_test": (2000, "RPN proposals kept after NMS, inference"),
    "rpn_nms_thresh": (0.7, "IoU of the RPN's NMS"),
    "rpn_batch_size_per_image": (512, "anchors sampled per image for the RPN loss"),
    "box_score_thresh": (0.05, "detections below this score are not returned"),
    "box_nms_thresh": (0.5, "IoU of the per-class NMS on detections"),
    "box_detections_per_img": (1000, "maximum detections per image"),
    "box_batch_size_per_image": (512, "RoIs sampled per image for the box and mask losses"),
    "box_positive_fraction": (0.25, "fraction of positive RoIs in that sample"),
    "box_representation_size": (1024, "width of the box head's fully connected layers"),
    "mask_size": (DEFAULT_MASK_SIZE, "mask head output resolution M (even): RoI features M/2"),
    "mask_head_channels": (256, "width of the mask head's convolutions"),
    "mask_head_layers": (4, "number of 3x3 convolutions in the mask head"),
}

_INT_KEYS = {
    "fpn_channels": 1,
    "rpn_pre_nms_top_n_train": 1,
    "rpn_post_nms_top_n_train": 1,
    "rpn_pre_nms_top_n_test": 1,
    "rpn_post_nms_top_n_test": 1,
    "rpn_batch_size_per_image": 1,
    "box_detections_per_img": 1,
    "box_batch_size_per_image": 1,
    "box_representation_size": 1,
    "mask_head_channels": 1,
    "mask_head_layers": 1,
}
_UNIT_KEYS = ("rpn_nms_thresh", "box_score_thresh", "box_nms_thresh", "box_positive_fraction")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_choice(config: dict[str, Any], key: str, choices: tuple[str, ...]) -> None:
    if config[key] not in choices:
        raise ValueError(f"model.{key} must be one of {list(choices)}, got {config[key]!r}")


def _check_numbers(config: dict[str, Any]) -> None:
    for key, low in _INT_KEYS.items():
        if not _is_int(config[key]) or config[key] < low:
            raise ValueError(f"model.{key} must be an integer >= {low}, got {config[key]!r}")
    for key in _UNIT_KEYS:
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ValueError(f"model.{key} must be a number in [0, 1], got {value!r}")
    layers = config["trainable_backbone_layers"]
    if layers is not None and (not _is_int(layers) or not 0 <= layers <= 5):
        raise ValueError(f"model.trainable_backbone_layers must be null or 0-5, got {layers!r}")
    sizes = config["anchor_sizes"]
    if (
        not isinstance(sizes, (list, tuple))
        or len(sizes) != 5
        or not all(_is_int(s) for s in sizes)
    ):
        raise ValueError(
            f"model.anchor_sizes must list 5 integers, one per FPN level (strides 4-64), got {sizes!r}"
        )
    ratios = config["anchor_aspect_ratios"]
    if not isinstance(ratios, (list, tuple)) or not ratios or not all(r > 0 for r in ratios):
        raise ValueError(f"model.anchor_aspect_ratios must be positive numbers, got {ratios!r}")
    for key in ("image_mean", "image_std"):
        if not isinstance(config[key], (list, tuple)) or len(config[key]) != 3:
            raise ValueError(f"model.{key} must list 3 numbers (R, G, B), got {config[key]!r}")
    if not all(s > 0 for s in config["image_std"]):
        raise ValueError(f"model.image_std must be positive, got {config['image_std']!r}")


def _check_resize(config: dict[str, Any]) -> None:
    min_size, max_size = config["min_size"], config["max_size"]
    if min_size is None:
        if max_size is not None:
            raise ValueError(
                "model.max_size needs model.min_size; set both, or neither to keep sizes"
            )
        return
    sizes = list(min_size) if isinstance(min_size, (list, tuple)) else [min_size]
    if not sizes or not all(_is_int(s) and s > 0 for s in sizes):
        raise ValueError(f"model.min_size must be null, a positive int or a list, got {min_size!r}")
    if not _is_int(max_size) or max_size < max(sizes):
        raise ValueError(
            f"model.max_size must be an integer >= min_size when min_size is set, got {max_size!r}"
        )


def resolve_config(config: dict[str, Any] | None) -> dict[str, Any]:
    """Validate a model config and fill in the defaults.

    Args:
        config: the YAML ``model:`` section (``None`` or ``{}`` for all defaults). Not modified.

    Returns:
        A new dict holding every key of :data:`MODEL_KEYS`.

    Raises:
        ValueError: an unknown key (the message lists the valid ones) or an invalid value.
    """
    config = {} if config is None else config
    if not isinstance(config, dict):
        raise TypeError(f"the model config must be a dict, got {type(config).__name__}")
    unknown = sorted(set(config) - set(MODEL_KEYS))
    if unknown:
        valid = "\n".join(f"  {k}: {help_} (default {d!r})" for k, (d, help_) in MODEL_KEYS.items())
        raise ValueError(
            f"unknown model key(s) {unknown} for family 'maskrcnn'; valid keys:\n{valid}"
        )
    out = {key: config.get(key, default) for key, (default, _) in MODEL_KEYS.items()}
    _check_choice(out, "backbone", BACKBONES)
    _check_choice(out, "heads", HEADS)
    if out["norm"] is not None:
        _check_choice(out, "norm", NORMS)
    _check_numbers(out)
    _check_resize(out)
    check_mask_size(out["mask_size"])
    pretrained = out["weights"] is not None or out["weights_backbone"] is not None
    if out["norm"] == "group" and pretrained:
        raise ValueError(
            "model.norm 'group' cannot load pretrained BatchNorm weights; use norm: frozen or "
            "batch with weights/weights_backbone, or set both weights to null"
        )
    if out["weights"] is not None and out["weights_backbone"] is not None:
        raise ValueError(
            "set model.weights (the whole network) or model.weights_backbone (the ResNet only), "
            "not both: the published Mask R-CNN weights already include the backbone"
        )
    if out["weights"] is not None and out["backbone"] != "resnet50":
        raise ValueError(
            f"published Mask R-CNN weights exist for backbone resnet50 only, got "
            f"{out['backbone']!r}; use weights_backbone for ImageNet weights of other depths"
        )
    return out
