#!/usr/bin/env bash
# Backbone v3 pretraining on a 2-core CPU (docs/model_card.md): continue from v2's weights on
# every real source of the pretraining folder plus the synthetic generator, for a fixed
# wall-time budget with the learning rate annealed over it.
#
#   bash docs/pretraining/pretrain_v3.sh DATA_DIR OUT_DIR MINUTES
#
# DATA_DIR is ../shared/data/pretraining (never the evaluation data sets). OUT_DIR keeps the
# checkpoints outside the repository; the run writes config.json + model.safetensors there.
set -euo pipefail
DATA=${1:?DATA_DIR}
OUT=${2:?OUT_DIR}
MINUTES=${3:?MINUTES}
PY=${PYTHON:-python3}
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
mkdir -p "$OUT"
$PY -m trace_forecast.pretrain --out "$OUT" --data-dir "$DATA" --corpus \
    --synthetic 20000 --intermittent-share 0.1 --synthetic-weight 0.2 \
    --steps 1000000 --time-budget "$MINUTES" --batch-size 64 --checkpoint-every 1000 \
    --tail-share 0.5 --max-tail-patches 32 --mask-ratio 0.15 0.5 --visible-weight 0.5 --coarse-share 0.25 \
    --init "$ROOT/trace_forecast/weights/trace-moment-tiny" --lr 5e-4 --compact --seed 0
