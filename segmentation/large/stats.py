"""Whole-image statistics of a large image, gathered block by block: the normalisation range.

``segment()`` normalises an image by the ``low``/``high`` percentiles of all its pixels
(:func:`segmentation.inference.inputs.intensity_range`); a large image must be normalised by the
same whole-image range, never per block, or blocks would be scaled differently. Each block
returns a summary (:class:`BlockStats`) and the summaries are added up:

- 8- and 16-bit images: a histogram of every value, from which :func:`histogram_percentiles`
  gives exactly what ``np.percentile`` gives on the whole image;
- other dtypes (float, 32-bit): a regular sample of every ``step``-th row and column (at most
  :data:`SAMPLE_VALUES` values over the image), whose percentiles estimate the image's.

Each summary also scores how much structure its block holds (the spread of a coarse thumbnail),
so that the automatic nucleus size is measured where there are nuclei.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from segmentation.large.grid import Box
from segmentation.large.source import ImageSource, read_window

#: Most values in the sample of float and 32-bit images.
SAMPLE_VALUES = 2**24
#: Side of the squares averaged into the thumbnail that scores a block's structure.
_POOL = 8


@dataclass
class BlockStats:
    """Summary of one block of the image (after the channel choice).

    Attributes:
        hist: for 8/16-bit images, counts of every value from the dtype's minimum, else ``None``.
        sample: for other dtypes, a regular sample of the values (1-D), else ``None``.
        low, high: the block's smallest and largest value.
        spread: standard deviation of the block's ``8 x 8``-averaged thumbnail (0 for a flat
            block): how much the block holds besides background.
    """

    hist: np.ndarray | None
    sample: np.ndarray | None
    low: float
    high: float
    spread: float


def uses_histogram(dtype: np.dtype) -> bool:
    """True for the dtypes whose statistics are exact histograms (8- and 16-bit integers)."""
    dtype = np.dtype(dtype)
    return dtype.kind in "ui" and dtype.itemsize <= 2


def sample_step(source: ImageSource, channels: int) -> int:
    """Stride of the regular sample: at most :data:`SAMPLE_VALUES` values over the image."""
    total = source.height * source.width * channels
    return max(1, math.ceil(math.sqrt(total / SAMPLE_VALUES)))


def block_stats(source: ImageSource, box: Box, channel: int | None, step: int) -> BlockStats:
    """Summarise one block (a Dask task).

    Args:
        source: the image.
        box: the block's core.
        channel: the channel choice (see :class:`~segmentation.inference.SegmentOptions`).
        step: sample stride for non-histogram dtypes (:func:`sample_step`), on the image's grid.

    Returns:
        The block's :class:`BlockStats`.
    """
    data = read_window(source, box, channel)
    hist = sample = None
    if uses_histogram(data.dtype):
        offset = int(np.iinfo(data.dtype).min)
        flat = data.ravel()
        values = flat if offset == 0 else flat.astype(np.int32) - offset
        hist = np.bincount(values, minlength=2 ** (8 * data.dtype.itemsize)).astype(np.int64)
    else:
        sample = data[(-box.y0) % step :: step, (-box.x0) % step :: step].ravel().copy()
    gray = data.astype(np.float32).mean(axis=2)
    h, w = gray.shape[0] // _POOL * _POOL, gray.shape[1] // _POOL * _POOL
    if h and w:
        thumb = gray[:h, :w].reshape(h // _POOL, _POOL, w // _POOL, _POOL).mean(axis=(1, 3))
    else:
        thumb = gray
    return BlockStats(hist, sample, float(data.min()), float(data.max()), float(thumb.std()))


def histogram_percentiles(hist: np.ndarray, offset: int, percentiles: list[float]) -> list[float]:
    """Percentiles of the values counted by a histogram, as ``np.percentile`` (linear) computes.

    Args:
        hist: ``(K,)`` counts; ``hist[i]`` counts the value ``offset + i``.
        offset: the value of the first bin.
        percentiles: values in ``[0, 100]``.

    Returns:
        One float per percentile, equal to ``np.percentile`` of the counted values.
    """
    cumulative = np.cumsum(hist)
    n = int(cumulative[-1])
    if n == 0:
        raise ValueError("the histogram is empty: no pixels were counted")

    def value(position: int) -> float:  # the value at this position of the sorted pixels
        return float(offset + int(np.searchsorted(cumulative, position, side="right")))

    out = []
    for p in percentiles:
        virtual = (n - 1) * (float(p) / 100.0)
        if virtual >= n - 1:
            out.append(value(n - 1))
            continue
        if virtual < 0:
            out.append(value(0))
            continue
        previous = math.floor(virtual)
        a, b = value(previous), value(previous + 1)
        gamma = virtual - previous
        diff = b - a
        out.append(b - diff * (1 - gamma) if gamma >= 0.5 else a + diff * gamma)
    return out


class ImageStats:
    """Adds up the blocks' summaries (in any order) into the whole image's statistics.

    Args:
        dtype: the image's dtype (after the channel choice).
    """

    def __init__(self, dtype: np.dtype):
        self.dtype = np.dtype(dtype)
        self.hist: np.ndarray | None = None
        self.samples: list[np.ndarray] = []
        self.low, self.high = math.inf, -math.inf
        self.spread: dict[tuple[int, int], float] = {}

    def add(self, index: tuple[int, int], stats: BlockStats) -> None:
        """Count the summary of block ``index``."""
        if stats.hist is not None:
            self.hist = stats.hist.copy() if self.hist is None else self.hist + stats.hist
        if stats.sample is not None:
            self.samples.append(stats.sample)
        self.low, self.high = min(self.low, stats.low), max(self.high, stats.high)
        self.spread[index] = stats.spread

    def intensity_range(self, low: float, high: float) -> tuple[float, float]:
        """The whole image's normalisation range.

        Same rule as :func:`segmentation.inference.inputs.intensity_range`: the ``low``/``high``
        percentiles over all pixels and channels, or ``min .. max`` when they coincide.

        Args:
            low, high: the model's normalisation percentiles.

        Returns:
            ``(lo, hi)`` floats; exact for 8/16-bit images, from the sample otherwise.
        """
        if self.hist is not None:
            offset = int(np.iinfo(self.dtype).min)
            lo, hi = histogram_percentiles(self.hist, offset, [low, high])
        elif self.samples:
            lo, hi = (float(v) for v in np.percentile(np.concatenate(self.samples), [low, high]))
        else:
            raise ValueError("no block statistics were added")
        if hi <= lo:
            lo, hi = self.low, self.high
        return float(lo), float(hi)

    def busiest(self, count: int) -> list[tuple[int, int]]:
        """The ``count`` blocks with the most structure (largest spread; ties row-major)."""
        return sorted(self.spread, key=lambda index: (-self.spread[index], index))[:count]
