#!/usr/bin/env bash
# Backbone v4: a cool-down branch of the campaign (docs/model_card.md, "v4").
#
#   [BRANCH=NAME] [FROM=REV] bash docs/pretraining/pretrain_v4_cooldown.sh DATA_DIR WORK_DIR MINUTES [STEPS] [extra options]
#
# The campaign (pretrain_v4.sh) trains at a constant rate, so it can go on for any number of
# legs. A cool-down branches off its current checkpoint into docs/pretraining/v4/$BRANCH/
# (default cooldown/; extra options after STEPS override the recipe's, e.g. --tail-share 0.8):
# the same recipe, with the rate decayed as 1 - sqrt(progress) to 0 over STEPS steps
# (default 6,000, about a tenth of the campaign so far), the last phase of a warm-up-stable-decay
# schedule. The branch is resumable like any leg (its own checkpoint.ckpt and legs.json) and
# stops where the decay ends; WORK_DIR receives the cooled weights. The campaign's own
# checkpoint is left as it was, so it can continue and cool down again later. FROM=REV branches
# off the campaign checkpoint as committed at git revision REV instead (an earlier leg's).
set -euo pipefail
DATA=${1:?DATA_DIR}
WORK=${2:?WORK_DIR}
MINUTES=${3:?MINUTES}
STEPS=${4:-6000}
shift $(( $# >= 4 ? 4 : 3 ))
PY=${PYTHON:-python3}
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BRANCH="$ROOT/docs/pretraining/v4/${BRANCH:-cooldown}"
mkdir -p "$BRANCH"
if [ ! -f "$BRANCH/checkpoint.ckpt" ]; then  # a new branch: from the campaign's step, recorded in start_step
    if [ -n "${FROM:-}" ]; then
        git -C "$ROOT" show "$FROM:docs/pretraining/v4/checkpoint.ckpt" > "$BRANCH/checkpoint.ckpt"
    else
        cp "$ROOT/docs/pretraining/v4/checkpoint.ckpt" "$BRANCH/checkpoint.ckpt"
    fi
    $PY -c "import sys, torch; print(torch.load(sys.argv[1], map_location='cpu', weights_only=True)['global_step'])" \
        "$BRANCH/checkpoint.ckpt" > "$BRANCH/start_step"
fi
START=$(cat "$BRANCH/start_step")
bash "$ROOT/docs/pretraining/pretrain_v4.sh" "$DATA" "$WORK" "$MINUTES" \
    --campaign "$BRANCH" --cooldown "$START" "$STEPS" "$@"
