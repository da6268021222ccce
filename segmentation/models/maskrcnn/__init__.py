"""The ``maskrcnn`` family: torchvision's Mask R-CNN tuned for small, dense nuclei.

- :mod:`.targets`: label image -> boxes, labels, masks (torchvision's format); batching.
- :mod:`.config`: the ``model:`` keys with nucleus-sized defaults.
- :mod:`.model`: ``build_model``, ``training_loss``, ``predict`` (box-level masks).
- :mod:`.decode`: score-ordered painting into one label image, ``MaskRCNNThresholds``.
- :mod:`.roundtrip`: the oracle (``oracle_raw``) and ``mask_roundtrip`` at the mask resolution.
- :mod:`.family`: ``FAMILY``, the object the registry returns.
"""

from segmentation.models.maskrcnn.decode import MaskRCNNThresholds, decode
from segmentation.models.maskrcnn.paste import paste_box_mask
from segmentation.models.maskrcnn.roundtrip import mask_roundtrip, oracle_raw
from segmentation.models.maskrcnn.targets import collate, encode_targets

__all__ = [
    "MaskRCNNThresholds",
    "collate",
    "decode",
    "encode_targets",
    "mask_roundtrip",
    "oracle_raw",
    "paste_box_mask",
]
