"""Pretrain your own MOMENT-layout backbone, then fine-tune from it.

``trace_forecast.pretrain`` (also the ``trace-forecast-pretrain`` command) pretrains by
masked reconstruction on a synthetic corpus (KernelSynth-style Gaussian processes,
trends, seasonalities, level shifts, intermittent series), optionally mixed with real
series (``--data-dir``). These settings are tiny so that the script runs in seconds; the
embedded backbone's recipe is ``docs/pretraining/pretrain_v2.sh`` (7 minutes on one GPU).

Run: ``python examples/pretrain_backbone.py`` (writes ``my-backbone/``; about 30 s).
"""

import json
from pathlib import Path

from sktime.datasets import load_airline

from trace_forecast import TraceForecaster
from trace_forecast.pretrain import main as pretrain

TINY = ["--synthetic", "200", "--steps", "60", "--batch-size", "16", "--d-model", "32", "--layers", "2",
        "--d-ff", "64", "--heads", "2", "--tail-share", "0.5", "--checkpoint-every", "30", "--seed", "0", "--quiet"]


def main() -> dict:
    out = Path("my-backbone")
    summary = pretrain(["--out", str(out), "--device", "cpu", *TINY])
    print(f"pretrained {summary['parameters']:,} parameters for {summary['steps']} steps "
          f"in {summary['wall_seconds_this_run']} s; held-out loss {summary['metrics'].get('heldout_loss', float('nan')):.3f}")
    print(f"{out}/: {sorted(p.name for p in out.iterdir() if p.is_file())}")
    y = load_airline().astype(float)
    forecaster = TraceForecaster(backbone=str(out), random_state=0).fit(y, fh=list(range(1, 13)))
    print("forecast from the new backbone:")
    print(forecaster.predict().round(1).head(3).to_string())
    return json.loads((out / "pretrain_summary.json").read_text())


if __name__ == "__main__":
    main()
