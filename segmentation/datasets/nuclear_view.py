"""What the network sees of an image: its nuclear signal, whatever the modality.

The rule (:func:`nuclear_view`, :func:`view_kind`), on the colour spread of
:func:`~.image_types.appearance` and the channel floor of :func:`channel_floor`:

- gray images (fluorescence, brightfield) are left as they are;
- colour images whose every channel carries light (by absorption) are stained tissue (H&E, IHC with a haematoxylin
  counterstain, the purple-stained images of DSB2018): they are seen either as they are
  (``stained_view="rgb"``) or as their haematoxylin optical density from colour deconvolution
  (``"hematoxylin"``: :func:`hematoxylin`, nuclei bright on a dark background like a nuclear
  stain in fluorescence; the brown DAB and the pink eosin drop out);
- colour images added on black (:data:`COMPOSITE_FLOOR`) are fluorescence composites: by the DAPI/Hoechst
  convention the nuclear stain is the blue channel, which is used alone when it carries signal
  (its 99.9th percentile at least :data:`MIN_BLUE` of the brightest channel's); otherwise the
  image is left as it is. ``channel=`` in :class:`~segmentation.inference.SegmentOptions` picks
  another channel.

A model records the ``stained_view`` it was trained with; inference applies the same.
"""

from __future__ import annotations

import numpy as np

from segmentation.datasets.image_types import COLOUR_SPREAD, appearance

STAINED_VIEWS = ("rgb", "hematoxylin")

#: A colour image is a fluorescence composite when the median of its pixels' smallest channel sits
#: at or below this position of its range (:func:`channel_floor`): additive colours on black leave
#: some channel dark almost everywhere, while stained tissue lets light through every channel but
#: where a stain absorbs it. Measured: stained tissue at 0.27-0.90 in DSB2018 (107 images), 0.28-
#: 0.33 in the TCGA tiles and 0.25-0.46 in the GBM40 tiles of ``gbm40_tcga`` (dense tiles without
#: any bright background included); composites made of pairs of DSB2018 fluorescence images 0.03 at
#: most, one with a bright cytoplasm channel between the nuclei 0.05. The background position of
#: gray images is no guide here: it put 4 of 28 dense TCGA tiles among the composites (0.47-0.49)
#: and that cytoplasm composite at 0.44.
COMPOSITE_FLOOR = 0.15

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


def channel_floor(image: np.ndarray) -> float:
    """Position of the median of each pixel's smallest channel within the image's range.

    Args:
        image: ``(H, W, C)`` array, any real dtype (at most 65,536 pixels sampled on a grid).

    Returns:
        ``(median(min over channels) - p0.1) / (p99.9 - p0.1)`` of the sampled values: near 0 for
        colours added on black (fluorescence composites), well above for stained tissue; 0.0 for
        a constant image.
    """
    step = max(1, int(np.ceil(np.sqrt(image.shape[0] * image.shape[1] / 65_536))))
    pixels = image[::step, ::step].reshape(-1, image.shape[2]).astype(np.float32)
    low, high = np.percentile(pixels, [0.1, 99.9])
    if high <= low:
        return 0.0
    return float((np.median(pixels.min(axis=1)) - low) / (high - low))


def view_kind(image: np.ndarray) -> str:
    """``"gray"``, ``"stained"`` (colour by absorption: H&E, IHC) or ``"composite"`` (colours
    added on black: fluorescence), by :data:`COLOUR_SPREAD` and :data:`COMPOSITE_FLOOR`.

    Args:
        image: ``(H, W)`` or ``(H, W, C)`` array, any real dtype; only ``C == 3`` has colour.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        return "gray"
    spread, _ = appearance(image)
    if spread <= COLOUR_SPREAD:
        return "gray"
    return "stained" if channel_floor(image) > COMPOSITE_FLOOR else "composite"


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
