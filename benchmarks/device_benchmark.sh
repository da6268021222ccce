#!/usr/bin/env bash
# The architecture benchmark (issue 9) on a lent GPU in one call (issue 15, item 5): every family
# trained from scratch under one shared GPU budget on the kit's DSB2018, tuned, tested, from the
# repository root after `make device-kit`, carrying .kit:
#
#   OUT=$OUT MINUTES=1.2 bash benchmarks/device_benchmark.sh
#
# MINUTES is each architecture's training budget (an ensemble's members share it): the default
# 1.2 fits 4 trained architectures plus testing in about 9 minutes. CONFIG (default
# configs/benchmark_dsb2018_gpu.yaml) and DATA (default .kit/dsb2018_stage1_train.npz) override;
# further arguments are benchmark overrides (section.key=value). $OUT receives results.md,
# results.json, results.csv, the three plots and benchmark.log.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/device_benchmark_out}
CONFIG=${CONFIG:-configs/benchmark_dsb2018_gpu.yaml}
DATA=${DATA:-.kit/dsb2018_stage1_train.npz}
MINUTES=${MINUTES:-1.2}
WORK=${WORK:-runs/device_benchmark}
mkdir -p "$OUT"
rm -rf "$WORK"
source scripts/device_env.sh || exit 1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2> /dev/null
"$PYTHON" -m segmentation benchmark "$CONFIG" "data.root=$DATA" "train.max_minutes=$MINUTES" \
  "data.workers=$(($(nproc) - 1))" "output=$WORK" "$@" 2>&1 | tee "$OUT/benchmark.log"
for f in results.md results.json results.csv threshold_curves.png speed_accuracy.png examples.png; do
  [ -f "$WORK/$f" ] && cp "$WORK/$f" "$OUT/"
done
cat "$WORK/results.md" 2> /dev/null | head -40
