#!/usr/bin/env bash
# Regenerate the documentation's example figures from the example scripts (about 2 minutes
# on 2 CPU cores): docs/figures/{adapter_selection,intervals,anomalies}.png and the
# printed output beside each (docs/figures/*.txt).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
export MPLBACKEND=Agg HF_HUB_OFFLINE=1
for script in adapter_selection prediction_intervals anomaly_detection multitask; do
    python "$ROOT/examples/$script.py" | tee "$ROOT/docs/figures/$script.txt"
done
cp adapter_selection.png intervals.png anomalies.png "$ROOT/docs/figures/"
