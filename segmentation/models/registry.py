"""One registry of model families; a wrong name lists the valid ones."""

from __future__ import annotations

import importlib

from segmentation.models.base import Family

# name -> "module:attribute" of the family object. Imported lazily so that importing the package
# stays cheap and one family's optional pieces never break another.
_FAMILIES: dict[str, str] = {
    "unet": "segmentation.models.unet.family:FAMILY",
    "fpn": "segmentation.models.fpn.family:FAMILY",
    "maskrcnn": "segmentation.models.maskrcnn.family:FAMILY",
}


def available_families() -> list[str]:
    """Names accepted by :func:`get_family`, sorted."""
    return sorted(_FAMILIES)


def get_family(name: str) -> Family:
    """Return the family object registered as ``name``.

    Raises:
        ValueError: the name is unknown; the message lists the valid names.
    """
    if not isinstance(name, str) or name not in _FAMILIES:
        raise ValueError(
            f"unknown model family {name!r}; choose one of: {', '.join(available_families())}"
        )
    module_name, attr = _FAMILIES[name].split(":")
    return getattr(importlib.import_module(module_name), attr)
