"""Settings of :func:`~segmentation.inference.segment` beyond its keyword arguments.

:class:`SegmentOptions` holds the rarely changed ones (channel choice and axis, rescaling, TTA
views, block decoding, instance merging; ``diameter``, ``channel`` and ``channel_axis`` are also
keyword arguments of ``segment()``, merged by :func:`merge_options`); :func:`pick_tile_size` chooses
a tile size from the device's memory when ``segment(..., tile_size=None)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import torch

from segmentation.datasets.nuclear_view import STAINED_VIEWS
from segmentation.inference.inputs import scaled_shape

#: Typical nucleus diameter (pixels) of the DSB2018 stage-1 training images, the scale the models
#: are trained at: the median over the 664 images of each image's median equivalent diameter
#: ``2 * sqrt(area / pi)`` (18.05 px; the median over all 28,986 nuclei is 19.6 px, 5-95 % of the
#: per-image medians lie in 9.6-49.5 px). Measured on ``cache/stage1_train.npz``.
REFERENCE_DIAMETER = 18.0

#: The resize factor a caller may ask for (``reference_diameter / diameter``, or ``scale``). The
#: automatic size never resizes by more than :data:`~.diameter.MAX_ZOOM` (3) either way; a stated
#: size is trusted further: up to 8x enlarged (nuclei of 18 / 8 = 2.25 px at the training diameter:
#: a pixel or two across, no shape left to segment, and 64x the pixels to predict; ``diameter=1``
#: on a 128 x 128 crop ran 28 s and returned 713 objects) and 32x shrunk (nuclei of 18 x 32 = 576
#: px, twice the largest nuclei of a 100x objective: 20 um at 0.065 um per pixel is about 300 px;
#: ``diameter=1e6`` returned no nuclei). A factor that shrinks the image itself below one nucleus
#: of the training size is refused for that image (:meth:`SegmentOptions.check_resized_shape`).
MIN_RESIZE, MAX_RESIZE = 1 / 32, 8.0

#: Names of the test-time augmentation views: ``rot<k>`` turns by ``k * 90`` degrees
#: (counter-clockwise, ``np.rot90``), ``flip`` then mirrors left-right.
TTA_VIEWS = ("rot0", "rot1", "rot2", "rot3", "rot0flip", "rot1flip", "rot2flip", "rot3flip")

#: Images with more pixels than this are decoded in blocks (see :mod:`.blocks`).
DECODE_LIMIT = 4096 * 4096


@dataclass(frozen=True)
class SegmentOptions:
    """Further settings of :func:`~segmentation.inference.segment`.

    Attributes:
        channel: ``None`` (default): gray images are replicated to the network's three input
            channels, RGB (3 channels last, or a file marked RGB) is used as is, alpha (the 4th
            of 4 channels last, when 8-bit or constant) is dropped; other channels (3 along a
            channel axis, 4 with a varying 4th of more than 8 bits, 2, 5...) are an error asking
            for ``channel``. An int ``c``: use channel ``c``
            (from 0) as a gray image (e.g. the DNA stain of a multi-channel fluorescence image);
            any number of channels is then accepted.
        channel_axis: ``None`` (default): arrays are channels last, ``(H, W, C)`` (a shape whose
            last axis is longer than its first and not 1, 3 or 4, such as ``(3, 512, 512)``, is
            refused as ambiguous), files have the channel axis their metadata names (RGB samples, an
            ImageJ/OME ``C`` axis). An int: the axis holding the channels, like Cellpose's
            ``channel_axis``: ``0`` for a ``(C, H, W)`` array or a multi-page TIFF (axes ``QYX``,
            ``CYX``; counted as stored), ``-1`` for ``(H, W, C)``. Ignored for 2-D images. With
            ``channel_axis`` and no ``channel``, 1 channel is gray; 3 are colour only channels
            last (``-1``) or in a file marked RGB; the rest need ``channel`` (see
            :func:`~segmentation.inference.inputs.as_image_array`).
        scale: resize factor applied before inference (``0.5`` halves each side); labels are
            resized back to the input's shape (nearest neighbour). Use it when the nuclei are far
            from the training size (see ``diameter``). Within :data:`MIN_RESIZE` ..
            :data:`MAX_RESIZE` (1/32 .. 8), and not shrinking an image below one nucleus of the
            training size (:meth:`SegmentOptions.check_resized_shape`); else a ``ValueError``.
        diameter: typical nucleus diameter in the input image, in pixels; sets
            ``scale = reference_diameter / diameter``, within the same range (2.25 .. 576 px at
            the default ``reference_diameter`` of 18; at most the image's shorter side). Give
            ``scale`` or ``diameter``, not both.
        reference_diameter: nucleus diameter (pixels) the model was trained at; default
            :data:`REFERENCE_DIAMETER` (DSB2018). Set it for models trained on other data.
        auto_diameter: with neither ``scale`` nor ``diameter`` given, estimate the nuclei's
            diameter from a first pass and segment again at the training scale when the nuclei
            are much smaller (or very much larger) than ``reference_diameter``
            (:mod:`.diameter`); ``False`` keeps the image's own scale.
        stained_view: how stained tissue (colour on a bright background) is shown to the network:
            ``"rgb"`` as it is, ``"hematoxylin"`` as its haematoxylin density from colour
            deconvolution (useful for IHC, where brown DAB hides the nuclei), ``None`` (default)
            the view the model was trained with. A model with a network of its own for stained
            tissue (``model.routes["stained"]``) sends stained tissue to it unless this names a
            view that network was not trained on, which goes to the model's main network.
            Without ``channel``, a colour image on a dark
            background (a fluorescence composite) is seen through its blue (DAPI) channel
            (:mod:`segmentation.datasets.nuclear_view`).
        tta_views: views averaged when ``segment(..., tta=True)``, names from :data:`TTA_VIEWS`
            (default all eight: four rotations, each with and without a mirror).
        decode_limit: images (after scaling) with more pixels than this are decoded in blocks of
            whole mask components, which bounds the decode's memory; ``None`` always decodes the
            whole image at once.
        decode_block: side (pixels) of the blocks of :mod:`.blocks`.
        merge_iou: Mask R-CNN: two instances from different tiles, views or ensemble members are
            one nucleus when their masks overlap by more than this (intersection over the smaller
            mask).
        thresholds: post-processing thresholds overriding the model's (a dict of the family's
            threshold fields, or its thresholds dataclass); ``None`` keeps the model's.
        progress: show a progress bar (tqdm, on stderr): over the images of a list or folder,
            over the tiles of a single image (each tile once per TTA view; a second pass at the
            estimated nucleus size adds its tiles). Off by default in Python; the CLI shows it
            when stderr is a terminal (``--no-progress`` hides it).
    """

    channel: int | None = None
    channel_axis: int | None = None
    scale: float | None = None
    diameter: float | None = None
    reference_diameter: float = REFERENCE_DIAMETER
    auto_diameter: bool = True
    stained_view: str | None = None
    tta_views: tuple[str, ...] = TTA_VIEWS
    decode_limit: int | None = DECODE_LIMIT
    decode_block: int = 2048
    merge_iou: float = 0.5
    thresholds: Any = None
    progress: bool = False

    def __post_init__(self) -> None:
        if self.channel is not None and (
            isinstance(self.channel, bool) or not isinstance(self.channel, int) or self.channel < 0
        ):
            raise ValueError(f"channel must be None or an integer >= 0, got {self.channel!r}")
        if self.channel_axis is not None and (
            isinstance(self.channel_axis, bool)
            or not isinstance(self.channel_axis, int)
            or not -3 <= self.channel_axis <= 2
        ):
            raise ValueError(
                f"channel_axis must be None or an axis of a 3-D image (0 for (C, H, W), -1 for "
                f"(H, W, C)), got {self.channel_axis!r}"
            )
        for name in ("scale", "diameter", "reference_diameter"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{name} must be a number, got {type(value).__name__}")
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if self.scale is not None and self.diameter is not None:
            raise ValueError(
                f"give scale ({self.scale}) or diameter ({self.diameter}), not both: diameter "
                "sets scale = reference_diameter / diameter"
            )
        if not MIN_RESIZE <= self.resize_factor <= MAX_RESIZE:
            raise ValueError(self._resize_error())
        if self.stained_view is not None and self.stained_view not in STAINED_VIEWS:
            raise ValueError(
                f"stained_view must be None (the model's) or one of {STAINED_VIEWS}, got "
                f"{self.stained_view!r}"
            )
        views = tuple(self.tta_views)
        unknown = [v for v in views if v not in TTA_VIEWS]
        if unknown or not views or len(set(views)) != len(views):
            raise ValueError(
                f"tta_views must be distinct names from {TTA_VIEWS}, got {self.tta_views!r}"
            )
        object.__setattr__(self, "tta_views", views)
        if self.decode_limit is not None and (
            not isinstance(self.decode_limit, int) or self.decode_limit < 1
        ):
            raise ValueError(f"decode_limit must be None or an int >= 1, got {self.decode_limit!r}")
        if not isinstance(self.decode_block, int) or self.decode_block < 64:
            raise ValueError(f"decode_block must be an int >= 64 pixels, got {self.decode_block!r}")
        if not 0.0 < float(self.merge_iou) <= 1.0:
            raise ValueError(f"merge_iou must lie in (0, 1], got {self.merge_iou!r}")

    def _resize_error(self) -> str:
        """Why the stated ``diameter`` or ``scale`` is refused, and the fix."""
        factor, ref = self.resize_factor, float(self.reference_diameter)
        if factor > MAX_RESIZE:
            why = (
                f"enlarging {factor:.3g}-fold leaves nuclei of a pixel or two, with no shape to "
                f"segment, and {factor**2:.3g}x the pixels to predict"
            )
        else:
            why = f"shrinking {1 / factor:.3g}-fold leaves nothing to segment"
        allowed = (
            f"the allowed factors are 1/{1 / MIN_RESIZE:g} .. {MAX_RESIZE:g} (nuclei of "
            f"{ref / MAX_RESIZE:.3g} .. {ref / MIN_RESIZE:.4g} px across)"
        )
        fix = (
            "give the nuclei's typical diameter in pixels of this image (segment(..., "
            "diameter=d), CLI --diameter d), or leave diameter and scale out to have it "
            "estimated from a first pass"
        )
        if self.diameter is not None:
            return (
                f"diameter={self.diameter:g} px gives a rescale factor of {factor:.3g} "
                f"(reference_diameter {ref:g} / diameter) and {why}; {allowed}: {fix}"
            )
        return f"scale={self.scale:g} is out of range: {why}; {allowed}: {fix}"

    def check_resized_shape(self, shape: tuple[int, ...]) -> None:
        """Refuse a stated ``diameter`` or ``scale`` that shrinks an image below one nucleus.

        The image resized by ``self.resize_factor`` must be at least ``reference_diameter``
        pixels on its shorter side (one nucleus at the model's training size): with
        ``diameter``, the nuclei must not be wider than the image. Only a shrinking factor is
        checked; ``segment()`` checks the caller's settings, not its automatic second pass
        (which resizes within :data:`~.diameter.MAX_ZOOM`).

        Args:
            shape: ``(H, W)`` or ``(H, W, C)`` of the image as segmented.

        Raises:
            ValueError: naming the diameter or scale, the rescale factor, the resized size and
                the largest diameter (smallest scale) this image allows.
        """
        factor, ref = self.resize_factor, float(self.reference_diameter)
        height, width = (int(s) for s in shape[:2])
        resized = scaled_shape((height, width), factor)
        if factor >= 1.0 or min(resized) >= ref:
            return
        shrinks = (
            f"shrinks the {height} x {width} image to {resized[0]} x {resized[1]} px, narrower "
            f"than one nucleus at the model's training size ({ref:g} px)"
        )
        if self.diameter is not None:
            raise ValueError(
                f"diameter={self.diameter:g} px (rescale factor {factor:.3g} = "
                f"reference_diameter {ref:g} / diameter) {shrinks}: the nuclei would be wider "
                f"than the image. Give the nuclei's typical diameter in pixels, at most "
                f"{min(height, width)} for this image (segment(..., diameter=d), CLI --diameter "
                "d), or leave it out to have it estimated"
            )
        raise ValueError(
            f"scale={self.scale:g} {shrinks}; use scale >= {ref / min(height, width):.4g} for "
            "this image, or give the nuclei's diameter instead (diameter=d, CLI --diameter d)"
        )

    @property
    def estimates_diameter(self) -> bool:
        """Whether :func:`segment` estimates the diameter (no ``scale`` or ``diameter`` given)."""
        return bool(self.auto_diameter) and self.scale is None and self.diameter is None

    @property
    def resize_factor(self) -> float:
        """The factor images are resized by before inference (1.0 = unchanged)."""
        if self.diameter is not None:
            return float(self.reference_diameter) / float(self.diameter)
        return 1.0 if self.scale is None else float(self.scale)


def merge_options(options: SegmentOptions | None, **keywords: Any) -> SegmentOptions:
    """``options`` with the fields given as keyword arguments of ``segment()`` filled in.

    ``segment(image, diameter=30)`` is ``segment(image, options=SegmentOptions(diameter=30))``.
    A keyword left at ``None`` changes nothing; a keyword and a different non-``None`` value of
    the same field in ``options`` are an error (the call would be read two ways).

    Args:
        options: a :class:`SegmentOptions` or ``None`` (the defaults).
        keywords: field names of :class:`SegmentOptions` and their values (``None``: not given).

    Returns:
        The merged :class:`SegmentOptions` (validated like any other).

    Raises:
        TypeError: ``options`` is not a :class:`SegmentOptions`.
        ValueError: a keyword conflicts with ``options``, or the merged options are invalid.
    """
    options = SegmentOptions() if options is None else options
    if not isinstance(options, SegmentOptions):
        raise TypeError(f"options must be a SegmentOptions, got {type(options).__name__}")
    given = {name: value for name, value in keywords.items() if value is not None}
    for name, value in given.items():
        current = getattr(options, name)
        if current is not None and current != value:
            raise ValueError(
                f"{name}={value!r} conflicts with options.{name}={current!r}: give {name} once, "
                f"as segment(..., {name}=...) or in SegmentOptions({name}=...)"
            )
    return replace(options, **given) if given else options


def _available_cpu_bytes() -> int:
    """MemAvailable from /proc/meminfo, or 8 GiB where that cannot be read."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 * 2**30


#: Peak bytes per input pixel of one forward pass, used to size tiles from free memory: about
#: 4x the 560 bytes measured for a resnet34 U-Net or FPN in float32 on a CPU (room for larger
#: encoders such as densenet121).
BYTES_PER_PIXEL = 2048


def pick_tile_size(device: torch.device, batch_size: int, multiple: int = 32) -> int:
    """Tile side (pixels) for a batch of ``batch_size`` tiles to fit in the device's memory.

    CUDA: half of the free GPU memory; CPU: half of the available RAM, capped at 1024 (larger
    tiles do not run faster on a CPU). The result is a multiple of ``multiple`` in ``[256, 2048]``.

    Args:
        device: where the network runs.
        batch_size: tiles per forward pass.
        multiple: the network's input multiple.

    Returns:
        The tile side in pixels (int).
    """
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        budget, cap = free / 2, 2048
    else:
        budget, cap = _available_cpu_bytes() / 2, 1024
    side = int(math.sqrt(budget / (BYTES_PER_PIXEL * max(1, batch_size))))
    return max(256, min(cap, side // multiple * multiple))
