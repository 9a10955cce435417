#!/usr/bin/env bash
# Backbone v2 pretraining on one GPU (docs/model_card.md): two candidate sizes trained at
# the same time on the same corpus and objective, each for a fixed wall-time budget (at
# these sizes a GPU is bound by kernel launches, so two processes share it well).
#
#   bash docs/pretraining/pretrain_v2.sh DATA_DIR OUT_DIR MINUTES [WORKERS]
#
# DATA_DIR holds M4/*-train.csv (../shared/data/pretraining); never evaluation data.
set -euo pipefail
DATA=${1:?DATA_DIR}
OUT=${2:?OUT_DIR}
MINUTES=${3:?MINUTES}
WORKERS=${4:-7}
PY=${PYTHON:-python3}
SYNTHETIC=${SYNTHETIC:-50000}
mkdir -p "$OUT"
common=(--data-dir "$DATA" --synthetic "$SYNTHETIC" --intermittent-share 0.1 --real-share 0.1
        --steps 1000000 --batch-size 512 --workers "$WORKERS" --time-budget "$MINUTES"
        --checkpoint-every 2000 --tail-share 0.5 --max-tail-patches 24 --mask-ratio 0.15 0.5
        --visible-weight 0.5 --compact --seed 0)
$PY -m trace_forecast.pretrain --out "$OUT/tiny" "${common[@]}" \
    --d-model 128 --layers 4 --d-ff 256 --heads 4 --lr 1e-3 >"$OUT/tiny.log" 2>&1 &
tiny=$!
$PY -m trace_forecast.pretrain --out "$OUT/small" "${common[@]}" \
    --d-model 256 --layers 6 --d-ff 512 --heads 8 --lr 6e-4 >"$OUT/small.log" 2>&1 &
small=$!
status=0
wait $tiny || status=$?
wait $small || status=$?
tail -n 5 "$OUT/tiny.log" "$OUT/small.log"
exit $status
