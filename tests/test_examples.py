"""Every script in ``examples/`` runs as a user runs it (``python examples/NAME.py``: as
``__main__``, offline, from an empty folder) and prints what it promises.

The scripts run in the test worker (``runpy``) rather than in a fresh interpreter: each fresh
interpreter spent about 7 CPU-seconds importing torch, sktime and Darts again. A fresh
interpreter's own behaviour (no output, bit-identical fits) is tested in ``test_console.py``
and ``test_determinism.py``. Their default fits read fewer windows for the closed-form head
start and for training (the ``small_fits`` fixture); ``docs/make_figures.sh`` runs them at
full size."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# script -> (text its output must contain, files it must write)
EXPECTED = {
    "forecast_evaluate.py": (["TraceForecaster", "Theta", "MAPE"], []),
    "global_forecasting.py": (["panel of 5 series", "unseen series"], []),
    "prediction_intervals.py": (["empirical coverage"], ["intervals.png"]),
    "anomaly_detection.py": (["AUC-ROC", "flagged segments"], ["anomalies.png"]),
    "darts_ensemble.py": (["TraceModel", "naive ensemble", "regression ensemble"], []),
    "darts_anomaly.py": (["AUC-ROC", "QuantileDetector"], []),
    "moment_checkpoint.py": (["equals the embedded default's: True"], ["moment-checkpoint/config.json",
                                                                       "moment-checkpoint/model.safetensors"]),
    "gpu_finetune.py": ([], []),  # prints a skip line without a GPU
    "pretrain_backbone.py": (["pretrained", "forecast from the new backbone"], ["my-backbone/model.safetensors"]),
    "adapter_selection.py": (["Gated DSIC:", "selection rounds"], ["adapter_selection.png"]),
    "multitask.py": (["forecaster.to_detector() -> TraceAnomalyDetector", "forecasts as the original: True",
                      "to_anomaly_scorer() AUC-ROC"], []),
}


def test_every_example_is_tested():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXPECTED)


@pytest.mark.slow
@pytest.mark.usefixtures("small_fits")  # conftest.py: fewer windows for the head start and training
@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_example_runs(script, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(EXAMPLES / script)])
    try:
        runpy.run_path(str(EXAMPLES / script), run_name="__main__")
    except SystemExit as done:  # a script's sys.exit(status), as the shell would see it
        assert done.code in (0, None), f"{script} exited with {done.code}"
    stdout = capsys.readouterr().out
    texts, files = EXPECTED[script]
    for text in texts:
        assert text in stdout, f"{script} did not print {text!r}:\n{stdout}"
    for name in files:
        assert (tmp_path / name).stat().st_size > 0, f"{script} did not write {name}"
    if script == "gpu_finetune.py":
        import torch

        assert ("skipping" in stdout) != torch.cuda.is_available()


def test_inject_anomalies_labels_what_it_changes_and_leaves_the_input_alone():
    import numpy as np
    import pandas as pd

    from trace_forecast.datasets import inject_anomalies
    from trace_forecast.errors import DataError

    y = pd.Series(np.sin(np.arange(9000) / 10.0))
    before = y.copy()
    x, labels = inject_anomalies(y, 1000)
    pd.testing.assert_series_equal(y, before)
    changed = ~np.isclose(x.to_numpy(), y.to_numpy())
    assert labels.sum() == 3 + 48 + 72 and not (changed & ~labels).any() and changed[labels].mean() > 0.9
    with pytest.raises(DataError, match="at least"):
        inject_anomalies(y.iloc[:7000], 1000)
