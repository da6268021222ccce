#!/usr/bin/env bash
# One training run on a lent GPU machine (or, for CI, on the CPU), from the repository root:
#
#   OUT=$OUT bash scripts/device_run.sh RECIPE --minutes M [--name NAME] [--measure S] [--speed] \
#       [section.key=value ...]
#
# Installs the wheels of .kit/wheels (made by `make device-kit`) when the packages they hold are
# missing (on the GPU machine), then runs
# `python -m segmentation.training.device_run` (see its docstring), which writes NAME.pt (float16
# model), NAME.json (measurements, scores, epoch log) under $OUT; the whole output is also kept in
# $OUT/NAME.log. PYTHON picks the interpreter (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/device_out}
mkdir -p "$OUT"
source scripts/device_env.sh || exit 1
name=model
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  [ "${args[$i]}" = "--name" ] && name=${args[$((i + 1))]}
done
"$PYTHON" -m segmentation.training.device_run "$@" --output "$OUT" 2>&1 | tee "$OUT/$name.log"
