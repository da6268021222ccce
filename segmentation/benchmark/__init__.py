"""Side-by-side comparison of the architectures under one budget (``segmentation benchmark``).

:func:`run_benchmark` trains (or loads) every architecture of a benchmark file on the same split,
crops, augmentation and budget, tunes each on the validation split, segments the test split and
writes tables (Markdown, CSV, JSON), plots and the run record. See
:mod:`segmentation.benchmark.config` for the file format.
"""

from segmentation.benchmark.config import BenchmarkConfig, load_benchmark_config
from segmentation.benchmark.runner import run_benchmark

__all__ = ["BenchmarkConfig", "load_benchmark_config", "run_benchmark"]
