"""Nucleus instance segmentation toolkit.

>>> from segmentation import finetune, segment, load_model  # doctest: +SKIP
>>> labels = segment(image)  # doctest: +SKIP
>>> labels = segment(image, model="runs/unet/model.pt")  # doctest: +SKIP
>>> model = finetune("my_images/", "my_masks/", minutes=10, output="mine.pt")  # doctest: +SKIP

``labels`` is an ``(H, W)`` int32 image, 0 = background; with no ``model`` the default model that
ships inside the package is used (see :func:`segmentation.inference.load_default_model`).

``segment``, ``SegmentOptions``, ``load_model``, ``load_default_model`` and ``SegmentationModel``
are imported on first use, so that ``import segmentation.datasets`` stays light (no torch).
"""

from segmentation._version import __version__

__all__ = [
    "SegmentOptions",
    "SegmentationModel",
    "finetune",
    "load_default_model",
    "load_model",
    "segment",
    "segment_large",
    "__version__",
]
_LAZY = ("SegmentOptions", "SegmentationModel", "load_default_model", "load_model", "segment")


def __getattr__(name: str):
    if name == "finetune":  # adapt a model to a few annotated images
        from segmentation.training.finetune import finetune

        return finetune
    if name == "segment_large":  # images larger than memory, on Dask
        from segmentation.large import segment_large

        return segment_large
    if name in _LAZY:
        from segmentation import inference

        return getattr(inference, name)
    raise AttributeError(f"module 'segmentation' has no attribute {name!r}")
