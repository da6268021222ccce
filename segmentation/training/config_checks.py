"""Checking recipe values: types (with lossless conversions), choices and ranges, with errors
that name the key (``train.lr``) and the fix. Used by :mod:`segmentation.training.config`."""

from __future__ import annotations

import types
import typing
from typing import Any


class ConfigError(ValueError):
    """A recipe is invalid; the message names the offending key and how to fix it."""


#: Smallest valid value of the numeric keys that have one (``None`` stays allowed where typed so).
_MINIMUM = {
    "data.samples_per_epoch": 1,
    "data.crop_size": 32,
    "data.workers": 0,
    "data.max_images": 1,
    "data.synthetic_images": 1,
    "train.epochs": 1,
    "train.batch_size": 1,
    "train.val_every": 1,
    "train.step_epochs": 1,
    "train.warmup_epochs": 0.0,
    "train.weight_decay": 0.0,
    "train.momentum": 0.0,
}
#: Numeric keys that must be above 0, with what ``null`` means where it is allowed.
_POSITIVE = {
    "train.lr": "",
    "train.step_gamma": "",
    "train.grad_clip": "; null turns clipping off",
    "train.max_minutes": "; null sets no time limit",
}

_CHOICES = {
    "data.pipeline": ("loader", "tensor"),
    "data.stained_view": ("rgb", "hematoxylin"),
    "data.split": ("random", "group"),
    "train.optimizer": ("adamw", "sgd"),
    "train.schedule": ("cosine", "step", "constant"),
}


def _check_type(key: str, value: Any, annotation: Any) -> Any:
    """Return ``value`` converted to ``annotation`` where lossless, else raise ConfigError."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _check_type(key, value, option)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0])
    if annotation is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if annotation is float and isinstance(value, str):  # YAML 1.1 reads 1e-4 as a string
        try:
            return float(value)
        except ValueError:
            pass
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {type(value).__name__} {value!r}")
        (item,) = typing.get_args(annotation)
        return [_check_type(f"{key}[{i}]", v, item) for i, v in enumerate(value)]
    if annotation is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if annotation in (str, bool) and type(value) is annotation:
        return value
    name = getattr(annotation, "__name__", str(annotation))
    raise ConfigError(f"{key}: expected {name}, got {type(value).__name__} {value!r}")


def parse_section(cls: type, values: Any, prefix: str) -> Any:
    """Validate a mapping into the dataclass ``cls``; errors name ``prefix.key`` and the fix."""
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"{prefix}: expected a mapping of keys, got {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(values) - set(hints))
    if unknown:
        raise ConfigError(
            f"unknown key {prefix}.{unknown[0]}; valid keys in {prefix}: {', '.join(sorted(hints))}"
        )
    checked = {}
    for key, value in values.items():
        full = f"{prefix}.{key}"
        checked[key] = _check_type(full, value, hints[key])
        if full in _CHOICES and checked[key] not in _CHOICES[full]:
            raise ConfigError(f"{full}: {value!r} is not one of {', '.join(_CHOICES[full])}")
        _check_range(full, checked[key])
    return cls(**checked)


def _check_range(key: str, value: Any) -> None:
    """ConfigError when the numeric ``value`` of ``key`` is below its minimum (see _MINIMUM)."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return
    if key in _MINIMUM and value < _MINIMUM[key]:
        raise ConfigError(f"{key} must be at least {_MINIMUM[key]}, got {value}")
    if key in _POSITIVE and not value > 0:
        raise ConfigError(f"{key} must be above 0, got {value}{_POSITIVE[key]}")
