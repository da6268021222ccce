"""Post-processing shared by the families: pure NumPy/scikit-image, inputs never modified.

- :mod:`~segmentation.postprocess.cleanup`: remove small objects, fill holes, relabel 1..N.
- :mod:`~segmentation.postprocess.watershed`: seed labelling and the seeded watershed.
- :mod:`~segmentation.postprocess.merge`: merging regions split inside one nucleus.
- :mod:`~segmentation.postprocess.instances`: the whole seeds -> watershed -> clean-up pipeline.
- :mod:`~segmentation.postprocess.tiles`: decoding large images group by group of components.
- :mod:`~segmentation.postprocess.geometry`: per-nucleus distances, contacts, centroids (targets).
- :mod:`~segmentation.postprocess.checks`: input validation of maps and masks.
"""

from segmentation.postprocess.checks import check_maps
from segmentation.postprocess.cleanup import fill_holes, object_sizes, relabel, remove_small_objects
from segmentation.postprocess.instances import watershed_instances
from segmentation.postprocess.merge import merge_converging, merge_weak_boundaries
from segmentation.postprocess.tiles import decode_by_components
from segmentation.postprocess.watershed import add_unseeded, label_seeds, seeded_watershed

__all__ = [
    "add_unseeded",
    "check_maps",
    "decode_by_components",
    "fill_holes",
    "label_seeds",
    "merge_converging",
    "merge_weak_boundaries",
    "object_sizes",
    "relabel",
    "remove_small_objects",
    "seeded_watershed",
    "watershed_instances",
]
