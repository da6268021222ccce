"""Compare the architectures side by side under one budget (the same as `segmentation benchmark`).

Usage (repo root):
  python benchmarks/compare_architectures.py configs/benchmark_tiny.yaml            # CI-sized
  python benchmarks/compare_architectures.py configs/benchmark_dsb2018_cpu.yaml     # the full run
  python benchmarks/compare_architectures.py CONFIG train.epochs=3 output=runs/b    # overrides
  .venv-peers/bin/python benchmarks/compare_architectures.py configs/benchmark_peers_cpu.yaml
                                  # with StarDist and Cellpose (the peers extras, docs/benchmarks.md)

Writes results.md/.csv/.json, threshold_curves.png, speed_accuracy.png and examples.png into the
config's `output` folder; see segmentation/benchmark/config.py for the file format.
"""

import sys

from segmentation.cli import main

if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(["benchmark", *sys.argv[1:]]))
