#!/usr/bin/env bash
# Backbone v4: the checks every campaign leg gets (docs/model_card.md, "v4").
#
#   bash docs/pretraining/check_leg_v4.sh LEG WEIGHTS
#
# WEIGHTS is the leg's export (the WORK_DIR given to pretrain_v4.sh: config.json +
# model.safetensors). Two runs side by side, one thread each, write into benchmarks/results/:
# - backbone_compare_legLEG.json: zero-shot ETTh1 at H = 96 to 720 (standard protocol, every
#   test window) and M4 Hourly OWA;
# - data_size_backbone_v4_legLEG.json: the default fine-tune (3 seeds) and zero-shot on the
#   data-size sweep's 14 small-series cells (ILI at 104 steps of context, M4 Hourly, the short
#   series), with the leg's weights in place of the embedded ones.
# Then it prints the leg's column of the model card's leg-by-leg table against v3. About
# 8 to 10 minutes on two idle cores. The data sets come from TRACE_DATA_DIR (../shared/data).
set -euo pipefail
LEG=${1:?LEG}
WEIGHTS=$(cd "${2:?WEIGHTS}" && pwd)  # absolute: the runs start from the repository root
PY=${PYTHON:-python3}
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=1
RESULTS=benchmarks/results
$PY -m benchmarks.backbone_compare --backbone "v4, leg $LEG=$WEIGHTS" --out "$RESULTS/backbone_compare_leg$LEG.json" &
$PY -m benchmarks.data_size --datasets "ILI (L = 104)" "M4 Hourly" "short series" \
    --methods "TRACE (defaults)" "TRACE zero-shot" --embedded "$WEIGHTS" --out "$RESULTS/data_size_backbone_v4_leg$LEG.json"
wait
$PY -m benchmarks.report --campaign "$LEG"
