#!/usr/bin/env bash
# Peak memory of the default model on an 8192 x 8192 image, as a new user meets it: through the
# Python API (`segment(image)`) and through the CLI (`segmentation segment big.tif`), each in a
# fresh process; the peak is the process's maximum resident set (GNU time, "Maximum resident set
# size"). The image: a 2048 x 2048 synthetic image with 5,000 nuclei, tiled 4 x 4, as a uint8
# TIFF. Usage (repo root): bash benchmarks/bench_peak_memory.sh [SIZE]
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${1:-8192}
PY=${PYTHON:-.venv/bin/python}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$PY" - "$WORK/big.tif" "$SIZE" << 'PY'
import sys
import numpy as np
import tifffile
from segmentation.datasets.synthetic import synthetic_nuclei
size = int(sys.argv[2])
tile = synthetic_nuclei((2048, 2048), 5000, seed=0).image[..., 0]
reps = -(-size // 2048)
tifffile.imwrite(sys.argv[1], np.tile(tile, (reps, reps))[:size, :size])
PY
peak() { grep "Maximum resident" "$1" | awk '{printf "%.2f GiB", $NF / 1048576}'; }
/usr/bin/time -v "$PY" -c "
import sys, time, tifffile
from segmentation.inference import segment
image = tifffile.imread('$WORK/big.tif')
start = time.perf_counter()
labels = segment(image)
print(f'api: {labels.max()} nuclei in {time.perf_counter() - start:.0f} s')
" 2> "$WORK/api.time"
/usr/bin/time -v "$PY" -m segmentation segment "$WORK/big.tif" --output "$WORK/out" --no-progress \
  2> "$WORK/cli.time" | tail -1
echo "${SIZE}x${SIZE}: API peak $(peak "$WORK/api.time"), CLI peak $(peak "$WORK/cli.time")"
