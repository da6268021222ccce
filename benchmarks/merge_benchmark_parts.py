"""Join the parts of a benchmark run split over processes or machines with ``--only``.

    segmentation benchmark configs/benchmark_peers_cpu.yaml output=runs/a --only "U-Net (resnet18)"
    segmentation benchmark configs/benchmark_peers_cpu.yaml output=runs/b --only "FPN ..."
    python benchmarks/merge_benchmark_parts.py runs/a runs/b --output runs/merged

Writes results.md/.csv/.json and speed_accuracy.png of all rows in ``--output``; the parts keep
their own threshold curves and example figures. Parts with another split or shared section
(data, train, seed, device, test) are refused (:mod:`segmentation.benchmark.merge`).
"""

from __future__ import annotations

import argparse

from segmentation.benchmark.merge import merge_parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="+", help="output folders of the finished parts")
    parser.add_argument("--output", required=True, help="folder of the merged tables")
    args = parser.parse_args()
    out = merge_parts(args.parts, args.output)
    print(f"wrote {out}/results.md (and .csv, .json, speed_accuracy.png)")


if __name__ == "__main__":
    main()
