#!/usr/bin/env bash
# Real training runs of the three families on one GPU, side by side: same split (data.split_seed),
# same crops, same augmentation, same wall-time budget per family, trained concurrently on one card.
#
# Usage (repo root, on a CUDA machine):
#   MINUTES=6 OUT=runs/gpu bash benchmarks/gpu_real_runs.sh [DATA]
# DATA defaults to cache/stage1_train.npz (see `segmentation pack`). FAMILIES="unet fpn maskrcnn".
set -uo pipefail
DATA=${1:-cache/stage1_train.npz}
MINUTES=${MINUTES:-6}
OUT=${OUT:-runs/gpu}
FAMILIES=${FAMILIES:-"unet fpn maskrcnn"}
WORKERS=${WORKERS:-5}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/machine.txt"
python3 -c "import torch, torchvision, segmentation_models_pytorch as smp, albumentations as A; \
print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'smp', smp.__version__, \
'albumentations', A.__version__)" | tee -a "$OUT/machine.txt"
nproc | sed 's/^/cpu cores: /' | tee -a "$OUT/machine.txt"

declare -A RECIPE=([unet]=configs/unet_ensemble.yaml [fpn]=configs/fpn_distance_angle.yaml
                   [maskrcnn]=configs/mask_rcnn.yaml)
declare -A EXTRA=([unet]="train.member=0" [fpn]="" [maskrcnn]="")
for fam in $FAMILIES; do
  python3 -m segmentation train "${RECIPE[$fam]}" ${EXTRA[$fam]} "data.root=$DATA" \
    "data.workers=$WORKERS" "train.max_minutes=$MINUTES" train.progress=false \
    "train.output=$OUT/$fam" > "$OUT/$fam.log" 2>&1 &
done
wait
for fam in $FAMILIES; do
  echo "== $fam"; tail -n 4 "$OUT/$fam.log"
done
