#!/usr/bin/env bash
# The GPU recipe of the shipped model (issue 17), as run on a lent H200 through `device`:
# a fine-tune of the previous default on all five datasets, then a leave-two-out model
# (without tunnel-lining and concrete-uav) for the zero-shot figures. Data: the train splits
# packed by scripts/pack_train_splits.py into DATA (default .gpudata); checkpoints and model
# folders under WORK, logs and one archive per model (main.tgz, loo.tgz) under OUT.
#   DATA=.gpudata WORK=/tmp/work OUT=$OUT MAIN_MIN=5.75 LOO_MIN=2 WORKERS=14 \
#       bash training/gpu_recipe.sh
set -euo pipefail
DATA=${DATA:-.gpudata}
OUT=${OUT:-runs/gpu-real}
WORK=${WORK:-$OUT}
MAIN_MIN=${MAIN_MIN:-5.5}
LOO_MIN=${LOO_MIN:-2}
WORKERS=${WORKERS:-14}
DEVICE=${DEVICE:-cuda}
PY=${PY:-python3}
sets=(--data "$DATA/cfd" --data "$DATA/deepcrack" --data "$DATA/masonry" --data "$DATA/concrete-uav" --data "$DATA/tunnel-lining")
mkdir -p "$OUT" "$WORK"
$PY -m training.train --config training/configs/unet-mobilenetv2-gpu-real.json \
    --init models/default "${sets[@]}" --device "$DEVICE" --workers "$WORKERS" \
    --schedule-minutes "$MAIN_MIN" --fresh --out "$WORK/work-main" --export "$WORK/main" \
    2>&1 | tee "$OUT/main.log"
tar -C "$WORK" -czf "$OUT/main.tgz" main
$PY -m training.train --config training/configs/unet-mobilenetv2-gpu-real.json \
    --init models/default "${sets[@]}" --exclude tunnel-lining --exclude concrete-uav \
    --device "$DEVICE" --workers "$WORKERS" \
    --schedule-minutes "$LOO_MIN" --fresh --out "$WORK/work-loo" --export "$WORK/loo" \
    2>&1 | tee "$OUT/loo.log"
tar -C "$WORK" -czf "$OUT/loo.tgz" loo
