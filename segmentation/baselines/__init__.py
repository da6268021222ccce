"""Classical (non-learned) baselines that every trained model must beat."""

from segmentation.baselines.otsu import otsu_watershed

__all__ = ["otsu_watershed"]
