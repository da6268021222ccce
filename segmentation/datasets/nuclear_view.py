"""What the network sees of an image: its nuclear signal, whatever the modality.

The rule (:func:`nuclear_view`), on the two numbers of :func:`~.image_types.appearance`:

- gray images (fluorescence, brightfield) are left as they are;
- colour images with a bright background are stained tissue (H&E, IHC with a haematoxylin
  counterstain, the purple-stained images of DSB2018): they are seen either as they are
  (``stained_view="rgb"``) or as their haematoxylin optical density from colour deconvolution
  (``"hematoxylin"``: :func:`hematoxylin`, nuclei bright on a dark background like a nuclear
  stain in fluorescence; the brown DAB and the pink eosin drop out);
- colour images with a dark background are fluorescence composites: by the DAPI/Hoechst
  convention the nuclear stain is the blue channel, which is used alone when it carries signal
  (its 99.9th percentile at least :data:`MIN_BLUE` of the brightest channel's); otherwise the
  image is left as it is. ``channel=`` in :class:`~segmentation.inference.SegmentOptions` picks
  another channel.

A model records the ``stained_view`` it was trained with; inference applies the same.
"""

from __future__ import annotations

import numpy as np

from segmentation.datasets.image_types import BRIGHT_BACKGROUND, COLOUR_SPREAD, appearance

STAINED_VIEWS = ("rgb", "hematoxylin")

#: A composite's blue channel is its nuclear channel when its 99.9th percentile reaches this
#: fraction of the brightest channel's.
MIN_BLUE = 0.1


def hematoxylin(image: np.ndarray, offset: float | None = None) -> np.ndarray:
    """Haematoxylin optical density of an RGB image (Ruifrok & Johnston colour deconvolution).

    Args:
        image: ``(H, W, 3)`` RGB array, uint8, uint16 or float in ``[0, 1]``.
        offset: density subtracted so that the background is 0; ``None``: the image's own 1st
            percentile (a window of a larger image passes the whole image's,
            :func:`hematoxylin_offset`).

    Returns:
        ``(H, W)`` float32, >= 0: high where haematoxylin (nuclei) absorbs, 0 on a white
        background.
    """
    density = raw_hematoxylin(image)
    if offset is None:
        offset = hematoxylin_offset(density)
    return np.clip(density - np.float32(offset), 0.0, None)


def hematoxylin_offset(density: np.ndarray) -> float:
    """The background level :func:`hematoxylin` subtracts: the 1st percentile of a raw
    haematoxylin density (any shape, float)."""
    return float(np.percentile(density, 1.0))


def raw_hematoxylin(image: np.ndarray) -> np.ndarray:
    """``(H, W)`` float32 haematoxylin density of an ``(H, W, 3)`` RGB image (uint8, uint16 or
    float in ``[0, 1]``), before the offset of :func:`hematoxylin`."""
    from skimage.color import rgb2hed

    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"hematoxylin() needs an (H, W, 3) RGB image, got shape {image.shape}")
    rgb = image.astype(np.float32)
    if image.dtype.kind in "ui":
        rgb /= float(np.iinfo(image.dtype).max)
    return rgb2hed(np.clip(rgb, 0.0, 1.0))[..., 0].astype(np.float32)


def view_kind(image: np.ndarray) -> str:
    """``"gray"``, ``"stained"`` (colour, bright background) or ``"composite"`` (colour, dark).

    Args:
        image: ``(H, W)`` or ``(H, W, C)`` array, any real dtype; only ``C == 3`` has colour.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        return "gray"
    spread, background = appearance(image)
    if spread <= COLOUR_SPREAD:
        return "gray"
    return "stained" if background > BRIGHT_BACKGROUND else "composite"


def nuclear_view(image: np.ndarray, stained_view: str = "rgb") -> np.ndarray:
    """The image as the network should see it, by the rule in the module docstring.

    Args:
        image: ``(H, W, C)`` array, ``C`` in ``{1, 3}`` (alpha already dropped), any real dtype.
        stained_view: ``"rgb"`` or ``"hematoxylin"``: how stained tissue is seen.

    Returns:
        ``image`` itself (gray, stained tissue with ``"rgb"``, a composite without blue signal),
        or an ``(H, W, 3)`` float32 gray image (haematoxylin density, or the blue channel)
        replicated to three channels.
    """
    if stained_view not in STAINED_VIEWS:
        raise ValueError(f"stained_view must be one of {STAINED_VIEWS}, got {stained_view!r}")
    kind = view_kind(image)
    if kind == "stained" and stained_view == "hematoxylin":
        gray = hematoxylin(image)
    elif kind == "composite":
        peaks = np.percentile(image.reshape(-1, 3)[:: max(1, image.size // 196_608)], 99.9, axis=0)
        if peaks[2] < MIN_BLUE * max(float(peaks.max()), 1e-12):
            return image
        gray = image[..., 2].astype(np.float32)
    else:
        return image
    return np.repeat(gray[..., None], 3, axis=2)


def recipe_stained_view(recipe: dict | None) -> str:
    """The ``data.stained_view`` a model was trained with, from its stored recipe (``"rgb"`` for
    models trained before the option existed)."""
    data = (recipe or {}).get("data") or {}
    view = data.get("stained_view", "rgb") if isinstance(data, dict) else "rgb"
    if view not in STAINED_VIEWS:
        raise ValueError(
            f"the model's recipe names data.stained_view {view!r}, not one of {STAINED_VIEWS}: "
            "the model file comes from a newer toolkit; upgrade segmentation"
        )
    return view
