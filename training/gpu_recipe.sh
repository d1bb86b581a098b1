#!/usr/bin/env bash
# The GPU recipe of the shipped model (issue 17), as run on a lent GPU through `device`:
# a fine-tune of INIT (default: the current default) on all five datasets, then, unless
# LOO_MIN=0, a leave-two-out model (without tunnel-lining and concrete-uav) for the zero-shot
# figures. Data: the train splits packed by scripts/pack_train_splits.py into DATA (default
# .gpudata). Checkpoints of the main run in CKPT (best.pt, last.pt: put it under OUT and they
# come back even if the run is cut off), model folders under WORK, logs and one archive per
# model (main.tgz, loo.tgz) under OUT.
#   DATA=.gpudata WORK=/tmp/work OUT=$OUT CKPT=$OUT/ckpt MAIN_MIN=7.25 LOO_MIN=0 WORKERS=15 \
#       bash training/gpu_recipe.sh
set -euo pipefail
DATA=${DATA:-.gpudata}
OUT=${OUT:-runs/gpu-real}
WORK=${WORK:-$OUT}
CKPT=${CKPT:-$WORK/work-main}
CONFIG=${CONFIG:-training/configs/unet-mobilenetv2-gpu-real-echo.json}
INIT=${INIT:-models/default}
MAIN_MIN=${MAIN_MIN:-7.25}
LOO_MIN=${LOO_MIN:-0}
WORKERS=${WORKERS:-14}
DEVICE=${DEVICE:-cuda}
PY=${PY:-python3}
sets=(--data "$DATA/cfd" --data "$DATA/deepcrack" --data "$DATA/masonry" --data "$DATA/concrete-uav" --data "$DATA/tunnel-lining")
mkdir -p "$OUT" "$WORK"
$PY -m training.train --config "$CONFIG" \
    --init "$INIT" "${sets[@]}" --device "$DEVICE" --workers "$WORKERS" \
    --schedule-minutes "$MAIN_MIN" --fresh --out "$CKPT" --export "$WORK/main" \
    2>&1 | tee "$OUT/main.log"
tar -C "$WORK" -czf "$OUT/main.tgz" main
if [ "$LOO_MIN" != 0 ]; then
    $PY -m training.train --config training/configs/unet-mobilenetv2-gpu-real.json \
        --init "$INIT" "${sets[@]}" --exclude tunnel-lining --exclude concrete-uav \
        --device "$DEVICE" --workers "$WORKERS" \
        --schedule-minutes "$LOO_MIN" --fresh --out "$WORK/work-loo" --export "$WORK/loo" \
        2>&1 | tee "$OUT/loo.log"
    tar -C "$WORK" -czf "$OUT/loo.tgz" loo
fi
