#!/usr/bin/env bash
# The GPU recipe of the shipped model (issue 17), as run on a lent GPU through `device`:
# a fine-tune of INIT (default: the current default) on all five datasets, then, unless
# LOO_MIN=0, a leave-two-out model (without tunnel-lining and concrete-uav) for the zero-shot
# figures, started from LOO_INIT (a model that never saw either surface). Data: the train
# splits packed by scripts/pack_train_splits.py into DATA (default .gpudata). Checkpoints of the
# main run in CKPT (best.pt, last.pt: put it under OUT and they come back even if the run is
# cut off), model folders under WORK, logs and one archive per model (main.tgz, loo.tgz)
# under OUT. CONFIG's decoder may be wider than INIT's: training.widen starts it from INIT's
# weights with the same logits (how the 96-48-16-12 default was made from the 64-32-16-8 one).
#   CONFIG=training/configs/unet-mobilenetv2-wide-gpu.json DATA=.gpudata WORK=/tmp/work \
#       OUT=$OUT CKPT=$OUT/ckpt MAIN_MIN=7.25 LOO_MIN=0 WORKERS=14 bash training/gpu_recipe.sh
# Earlier runs: training/configs/unet-mobilenetv2-gpu-real-echo.json (the 64-32-16-8 default
# of 2026-11-27 morning), training/configs/unet-mobilenetv2-gpu-real.json (its leave-two-out).
# Tried on 2026-11-28, not shipped (model card): training/configs/unet-mobilenetv2-wide-gpu-plain.json
# (tunnel-lining's and masonry's crops with the plain augmentation) and, 3 minutes more from
# that run, training/configs/unet-mobilenetv2-wide-gpu-polish.json. Next to try (not run yet):
# training/configs/unet-mobilenetv2-wide-gpu-plain-lookalikes.json, the plain scale for those
# two with the drawn look-alikes kept on their crops.
set -euo pipefail
DATA=${DATA:-.gpudata}
OUT=${OUT:-runs/gpu-real}
WORK=${WORK:-$OUT}
CKPT=${CKPT:-$WORK/work-main}
CONFIG=${CONFIG:-training/configs/unet-mobilenetv2-wide-gpu.json}
INIT=${INIT:-models/default}
MAIN_MIN=${MAIN_MIN:-7.25}
LOO_MIN=${LOO_MIN:-0}
LOO_CONFIG=${LOO_CONFIG:-$CONFIG}
WORKERS=${WORKERS:-14}
DEVICE=${DEVICE:-cuda}
PY=${PY:-python3}
sets=(--data "$DATA/cfd" --data "$DATA/deepcrack" --data "$DATA/masonry" --data "$DATA/concrete-uav" --data "$DATA/tunnel-lining")
if [ "$LOO_MIN" != 0 ] && [ -z "${LOO_INIT:-}" ]; then
    echo "LOO_MIN=$LOO_MIN needs LOO_INIT: a model that never saw tunnel-lining or concrete-uav" >&2
    exit 2
fi
mkdir -p "$OUT" "$WORK"
$PY -m training.train --config "$CONFIG" \
    --init "$INIT" "${sets[@]}" --device "$DEVICE" --workers "$WORKERS" \
    --schedule-minutes "$MAIN_MIN" --fresh --out "$CKPT" --export "$WORK/main" \
    2>&1 | tee "$OUT/main.log"
tar -C "$WORK" -czf "$OUT/main.tgz" main
if [ "$LOO_MIN" != 0 ]; then
    $PY -m training.train --config "$LOO_CONFIG" \
        --init "$LOO_INIT" "${sets[@]}" --exclude tunnel-lining --exclude concrete-uav \
        --device "$DEVICE" --workers "$WORKERS" \
        --schedule-minutes "$LOO_MIN" --fresh --out "$WORK/work-loo" --export "$WORK/loo" \
        2>&1 | tee "$OUT/loo.log"
    tar -C "$WORK" -czf "$OUT/loo.tgz" loo
fi
