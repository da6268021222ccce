"""Images larger than memory (whole slides, mosaics): :func:`segment_large` on Dask.

The image is read lazily (Zarr, OME-Zarr, tiled TIFF) and segmented block by block on a
``dask.distributed`` cluster; each block runs the same pipeline as ``segment()`` with the whole
image's normalisation and nucleus size, and only the stitching is new.

- :mod:`.source`: :func:`open_image_source`, :class:`ImageSource` (lazy windows of the image).
- :mod:`.grid`: :class:`BlockGrid` (cores, windows = core + halo, neighbours).
- :mod:`.stats`: the whole image's normalisation range, gathered block by block.
- :mod:`.tiles`: the tiles of a block's window, fitted to it.
- :mod:`.block`: segmenting one block's window; its candidate nuclei saved per block.
- :mod:`.stitch`: one id per nucleus across block faces and corners, the label chunks.
- :mod:`.output`: the output array (plain or OME-Zarr labels), table, parts and manifest.
- :mod:`.identity`: the settings fingerprint that lets a killed job resume.
- :mod:`.cluster`: the cluster the passes run on (one local worker in-process).
- :mod:`.plan`: the defaults, the checks of the settings, the blocks' settings at a scale.
- :mod:`.passes`: the passes on the cluster (statistics, first blocks, blocks, stitching).
- :mod:`.result`: :class:`LargeResult`.
- :mod:`.run`: :func:`segment_large`, the job from its settings to its result.
"""

from segmentation.large.grid import BlockGrid, Box
from segmentation.large.result import LargeResult
from segmentation.large.run import segment_large
from segmentation.large.source import ImageSource, open_image_source

__all__ = [
    "BlockGrid",
    "Box",
    "ImageSource",
    "LargeResult",
    "open_image_source",
    "segment_large",
]
