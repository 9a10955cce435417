#!/usr/bin/env bash
# One leg of the v4 campaign on a lent GPU (docs/model_card.md, "Version 4"): the recipe of
# pretrain_v4.sh in bf16 on CUDA, with the batch a GPU can fill and 8 data-loader workers.
#
#   bash docs/pretraining/pretrain_v4_gpu.sh DATA_DIR WORK_DIR MINUTES
#
# Leave a few minutes of the lent time: the leg writes its checkpoint (every 500 steps and at
# the end) into docs/pretraining/v4/, which must come back and be committed. A batch of 256
# windows with the rate scaled by its square root (x2 for 4x the batch) keeps the update size;
# the data stream continues at the checkpoint's window count whatever the batch.
set -euo pipefail
DIR="$(cd "$(dirname "$0")" && pwd)"
DATA=${1:?DATA_DIR}
WORK=${2:?WORK_DIR}
MINUTES=${3:?MINUTES}
bash "$DIR/pretrain_v4.sh" "$DATA" "$WORK" "$MINUTES" --device cuda --precision bf16-mixed \
    --batch-size 256 --lr 6e-4 --workers 8
