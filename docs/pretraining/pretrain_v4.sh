#!/usr/bin/env bash
# Backbone v4: one leg of the resumable pretraining campaign (docs/model_card.md, "v4").
#
#   bash docs/pretraining/pretrain_v4.sh DATA_DIR WORK_DIR MINUTES [extra options, e.g. --threads 1 --compile]
#
# DATA_DIR is ../shared/data/pretraining (never the evaluation data sets). The campaign folder
# docs/pretraining/v4/ is committed: each leg continues from its checkpoint.ckpt (weights, their
# moving average, optimiser, scheduler, data-stream position, random states), replaces it every
# 500 steps (atomically) and records itself in legs.json. WORK_DIR (outside the repository)
# receives the leg's logs and the exported weights (the moving average): config.json +
# model.safetensors. The first leg starts from v3's weights. Everything below is the recipe and
# stays fixed from leg to leg; only the leg's length, threads, device and --compile (torch.compile of
# the step: the same objective, faster on a CPU) may change.
#
# Against v3's recipe (pretrain_v3.sh): a step-based schedule (warm-up, then constant) with an
# exponential moving average of the weights instead of a wall-clock cosine, so legs resume
# exactly; a new window stream (--stream-seed) over the same held-out split (--seed 0);
# more weight on the yearly/trend sources (M4 yearly, M3, tourism) and the 5- and 10-minute
# sources (LA loop, wind SCADA, Tetouan); averaging factors 6 and 48 added to the
# several-resolution windows (10-minute data to hourly; a year of hourly data in 183 steps).
# bf16 mixed precision where the CPU has it natively (or on a GPU).
set -euo pipefail
DATA=${1:?DATA_DIR}
WORK=${2:?WORK_DIR}
MINUTES=${3:?MINUTES}
shift 3
PY=${PYTHON:-python3}
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
mkdir -p "$WORK"
$PY -m trace_forecast.pretrain --out "$WORK" --campaign "$ROOT/docs/pretraining/v4" --data-dir "$DATA" --corpus \
    --synthetic 20000 --intermittent-share 0.1 --synthetic-weight 0.2 \
    --source-weight m4_yearly=0.08 m3=0.04 tourism=0.035 los_loop=0.05 wind_scada=0.03 tetouan=0.045 \
    --coarse-share 0.3 --coarse-factors 2 4 6 12 24 48 \
    --tail-share 0.5 --max-tail-patches 32 --mask-ratio 0.15 0.5 --visible-weight 0.5 \
    --steps 100000000 --batch-size 64 --checkpoint-every 500 --max-minutes "$MINUTES" \
    --schedule constant --warmup-steps 200 --lr 3e-4 --ema 0.999 \
    --init "$ROOT/trace_forecast/weights/trace-moment-tiny" --compact --seed 0 --stream-seed 4 --quiet "$@"
