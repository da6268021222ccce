#!/usr/bin/env bash
# Real training runs of the three families on a CPU, side by side: same split (data.split_seed 0),
# same 128-pixel crops and augmentation, same wall-time budget, trained at the same time with one
# thread each. Small encoders (resnet18) so that a CPU gets through enough crops.
#
# Usage (repo root): MINUTES=55 OUT=runs/cpu bash benchmarks/cpu_real_runs.sh [DATA]
# DATA defaults to cache/stage1_train.npz (`segmentation pack ../shared/data/dsb2018/stage1_train
# --output cache/stage1_train.npz`).
set -uo pipefail
DATA=${1:-cache/stage1_train.npz}
MINUTES=${MINUTES:-55}
OUT=${OUT:-runs/cpu}
FAMILIES=${FAMILIES:-"unet fpn maskrcnn"}
PY=${PY:-.venv/bin/python}
mkdir -p "$OUT"
{ date -u; uname -m; nproc | sed 's/^/cpu cores: /'; git rev-parse --short HEAD; } > "$OUT/machine.txt"
COMMON=("data.root=$DATA" data.crop_size=128 data.samples_per_epoch=256 data.workers=0
        train.batch_size=8 train.device=cpu train.amp=false train.val_every=100000
        "train.max_minutes=$MINUTES" train.epochs=100000 train.progress=false)
for fam in $FAMILIES; do
  case $fam in
    unet) args=(configs/unet_ensemble.yaml train.member=0 "model.members=[{encoder: resnet18}]") ;;
    fpn) args=(configs/fpn_distance_angle.yaml model.encoder=resnet18) ;;
    # v1 heads and 128 RoIs per crop: the v2 box head's four convolutions over 512 RoIs cost
    # ~100 s per 8-crop step on one CPU thread (measured), leaving no training in an hour.
    maskrcnn) args=(configs/mask_rcnn.yaml model.backbone=resnet18 model.heads=v1
                    model.box_batch_size_per_image=128 model.rpn_batch_size_per_image=256) ;;
    *) echo "unknown family $fam" >&2; exit 2 ;;
  esac
  OMP_NUM_THREADS=1 $PY -m segmentation train "${args[@]}" "${COMMON[@]}" \
    "train.output=$OUT/$fam" > "$OUT/$fam.log" 2>&1 &
done
wait
for fam in $FAMILIES; do echo "== $fam"; tail -n 3 "$OUT/$fam.log"; done
