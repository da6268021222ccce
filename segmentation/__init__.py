"""Nucleus instance segmentation toolkit.

>>> from segmentation import segment, load_model  # doctest: +SKIP
>>> labels = segment(image, model="runs/unet/model.pt")  # (H, W) int32, 0 = background

``segment``, ``SegmentOptions``, ``load_model`` and ``SegmentationModel`` are imported on first use, so that
``import segmentation.datasets`` stays light (no torch).
"""

__version__ = "0.1.0"

__all__ = ["SegmentOptions", "SegmentationModel", "load_model", "segment", "__version__"]


def __getattr__(name: str):
    if name in ("SegmentOptions", "SegmentationModel", "load_model", "segment"):
        from segmentation import inference

        return getattr(inference, name)
    raise AttributeError(f"module 'segmentation' has no attribute {name!r}")
