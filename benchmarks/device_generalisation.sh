#!/usr/bin/env bash
# The generalisation comparison of issue 14 in one call on a lent GPU (issue 15): four variants of
# the default-model recipe trained side by side on one GPU, each judged on the held-out acquisition
# groups of DSB2018 (data.split group), after a throughput measurement of the data pipeline and the
# training step. From the repository root, after `make device-kit`, carrying .kit:
#
#   OUT=$OUT MINUTES=5 bash benchmarks/device_generalisation.sh
#
# Variants (the same recipe, split, crops, budget; each on its own process):
#   base    DSB2018 only, geometric + intensity augmentation, brightfield inversion
#   data    + BBBC039 as extra training data, image types balanced (type_balance 0.5)
#   colour  + random grayscale and per-channel stain jitter of colour images
#   invert  + inversion of colour (stained tissue) images
#   hematoxylin  invert, with stained tissue seen as its haematoxylin density (data.stained_view)
#   ft_rgb, ft_hematoxylin  invert / hematoxylin fine-tuned from the shipped default model
#           (train.init=$FT_INIT, default: the shipped model; learning rate FT_LR, default 5e-4):
#           a short budget's test of the
#           views, where training from scratch needs a GPU's minutes
#   ft_stained  ft_hematoxylin with image types drawn equally often (type_balance 1): the stained-
#           tissue network of a default model that routes stained tissue to its own network
#   <variant>_s<N>  the variant with train.seed N (a second seed tells noise from a real gain)
# $OUT receives: <variant>.pt (float16 models), results.json (throughput, every variant's scores,
# GPU segment() speed), logs.txt. DEVICE, DATA, EXTRA, MEASURE and VARIANTS override the defaults
# (CI runs it on the CPU with the bundled sample and seconds of budget).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/device_generalisation}
MINUTES=${MINUTES:-5}
DEVICE=${DEVICE:-cuda}
DATA=${DATA:-.kit/dsb2018_stage1_train.npz}
EXTRA=${EXTRA:-.kit/bbbc039.npz}
GROUPS_TABLE=${GROUPS_TABLE:-configs/groups/dsb2018_bbbc039.csv}  # "null": computed
MEASURE=${MEASURE:-10}
VARIANTS=${VARIANTS:-"base data colour invert"}
RECIPE=${RECIPE:-configs/default_unet.yaml}
CROP=${CROP:-256}
BATCH=${BATCH:-64}
SPEED=${SPEED:-1}
WORK=${WORK:-runs/device_work}
rm -rf "$WORK"
mkdir -p "$OUT" "$WORK"
OUT_FINAL=$OUT
export OUT="$WORK"

common=(data.root="$DATA" data.split=group data.test_fraction=0.25 data.groups="$GROUPS_TABLE"
  data.pipeline=tensor data.crop_size="$CROP" data.samples_per_epoch=$((BATCH * 128))
  train.batch_size="$BATCH" train.lr=0.002 train.device="$DEVICE" train.amp=true
  train.channels_last=true train.val_every=100000)
# every variant sets all six knobs: the recipe's own values are those of "invert"
declare -A extra=(
  [base]="data.extra_train=[] data.type_balance=0 data.aug_grayscale=0 data.aug_stain=0 data.aug_invert_colour=0 data.stained_view=rgb"
  [data]="data.extra_train=[$EXTRA] data.type_balance=0.5 data.aug_grayscale=0 data.aug_stain=0 data.aug_invert_colour=0 data.stained_view=rgb"
  [colour]="data.extra_train=[$EXTRA] data.type_balance=0.5 data.aug_grayscale=0.25 data.aug_stain=0.15 data.aug_invert_colour=0 data.stained_view=rgb"
  [invert]="data.extra_train=[$EXTRA] data.type_balance=0.5 data.aug_grayscale=0.25 data.aug_stain=0.15 data.aug_invert_colour=0.5 data.stained_view=rgb"
  [hematoxylin]="data.extra_train=[$EXTRA] data.type_balance=0.5 data.aug_grayscale=0.25 data.aug_stain=0.15 data.aug_invert_colour=0.5 data.stained_view=hematoxylin"
)
FT_INIT=${FT_INIT:-default} # the model file the fine-tunes start from (default: the shipped one)
extra[ft_rgb]="${extra[invert]} train.init=$FT_INIT train.lr=${FT_LR:-0.0005}"
extra[ft_hematoxylin]="${extra[hematoxylin]} train.init=$FT_INIT train.lr=${FT_LR:-0.0005}"
extra[ft_stained]="${extra[ft_hematoxylin]} data.type_balance=1"
for v in $VARIANTS; do # <variant>_s<N>: the same knobs, another seed
  if [[ $v =~ ^(.+)_s([0-9]+)$ && -n ${extra[${BASH_REMATCH[1]}]:-} ]]; then
    extra[$v]="${extra[${BASH_REMATCH[1]}]} train.seed=${BASH_REMATCH[2]}"
  elif [[ -z ${extra[$v]:-} ]]; then
    echo "unknown variant $v: one of ${!extra[*]}, optionally with _s<seed>" >&2
    exit 2
  fi
done

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2> /dev/null
# 1. throughput, alone on the machine (also installs the kit's wheels once)
bash scripts/device_run.sh "$RECIPE" --name measure --measure "$MEASURE" --measure-only \
  --cpu-loader-workers "$(($(nproc) - 1))" "${common[@]}" ${extra[invert]} || echo "measure failed"
# 2. the variants, side by side
n_variants=$(echo $VARIANTS | wc -w)
threads=$(($(nproc) / n_variants))
for v in $VARIANTS; do
  rm -rf "runs/device/$v" # a fresh run folder: a warm machine keeps the last call's files
  # shellcheck disable=SC2086
  OMP_NUM_THREADS=$((threads > 0 ? threads : 1)) bash scripts/device_run.sh "$RECIPE" --name "$v" --minutes "$MINUTES" --run-dir "runs/device/$v" \
    "${common[@]}" ${extra[$v]} > /dev/null 2>&1 &
done
wait
# 3. segment() speed of the shipped default model on this device, alone
if [ "$SPEED" = 1 ]; then
  (source scripts/device_env.sh && "$PYTHON" -c "
import json, sys
from segmentation.inference import load_default_model
from segmentation.training.device_run import segment_speed
speed = segment_speed(load_default_model('$DEVICE'))
json.dump(speed, open('$WORK/speed.json', 'w')); print('segment() speed', speed)
") || echo "speed failed"
fi
# 4. collect
"${PYTHON:-python3}" - "$WORK" "$OUT_FINAL" << 'PY' || true
import json, pathlib, shutil, sys
work, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
results = {p.stem: json.loads(p.read_text()) for p in sorted(work.glob("*.json"))}
(out / "results.json").write_text(json.dumps(results, indent=1))
for p in sorted(work.glob("*.pt")):
    shutil.copy(p, out / p.name)
logs = "".join(f"===== {p.name}\n{p.read_text()}" for p in sorted(work.glob("*.log")))
(out / "logs.txt").write_text(logs)
print(f"{'variant':<8} {'val':>6} " + " ".join(f"{k:>13}" for k in ("test all", "fluorescence", "histology")))
for name, r in results.items():
    if "validation" not in r:
        continue
    test = r.get("test", {})
    cells = [f"{test[k]['score']:.4f} ({test[k]['images']})" if k in test else "-" for k in ("all", "fluorescence", "histology")]
    print(f"{name:<8} {r['validation']['val_score']:.4f} " + " ".join(f"{c:>13}" for c in cells)
          + f"  {r['train_crops']} crops {r['train_crops_per_s']}/s")
PY
