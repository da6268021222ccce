"""Running trained models on images: :func:`segment` and the pieces it is built from.

- :mod:`.api`: :func:`segment` (one image, a list or a folder), :func:`segment_files`.
- :mod:`.batches`: the loop behind them: inputs read and predicted in groups, routed, resized.
- :mod:`.model`: :class:`SegmentationModel`, :func:`load_model`, :func:`resolve_device`,
  :func:`available_devices`.
- :mod:`.default`: :func:`load_default_model`, the model shipped inside the package.
- :mod:`.options`: :class:`SegmentOptions` (channel choice, rescaling, TTA views, block decoding).
- :mod:`.inputs`: validation, channel choice, whole-image normalisation, resizing.
- :mod:`.tiling`: overlapping tiles and the blending of their raw maps.
- :mod:`.transforms`: test-time augmentation views (rotations and mirrors).
- :mod:`.instances`: merging Mask R-CNN instances across tiles, views and members.
- :mod:`.blocks`: decoding large images block by block with a bounded memory.
- :mod:`.details`: the per-nucleus table and :class:`SegmentDetails`.
- :mod:`.engine`: the pipeline that ties them together.
- :mod:`.reference_nets`: fixed, training-free filter networks for tests and benchmarks.
"""

from segmentation.inference.api import TILE_OVERLAP, list_images, segment, segment_files
from segmentation.inference.batches import SegmentResult
from segmentation.inference.default import (
    default_model_path,
    load_default_model,
    model_card_summary,
)
from segmentation.inference.details import NUCLEUS_DTYPE, SegmentDetails, nucleus_table
from segmentation.inference.inputs import as_image_array
from segmentation.inference.model import (
    INPUT_MULTIPLE,
    SegmentationModel,
    available_devices,
    load_model,
    resolve_device,
)
from segmentation.inference.options import REFERENCE_DIAMETER, TTA_VIEWS, SegmentOptions

__all__ = [
    "INPUT_MULTIPLE",
    "NUCLEUS_DTYPE",
    "REFERENCE_DIAMETER",
    "TILE_OVERLAP",
    "TTA_VIEWS",
    "SegmentDetails",
    "SegmentOptions",
    "SegmentResult",
    "SegmentationModel",
    "as_image_array",
    "available_devices",
    "default_model_path",
    "list_images",
    "load_default_model",
    "load_model",
    "model_card_summary",
    "nucleus_table",
    "resolve_device",
    "segment",
    "segment_files",
]
