"""Ctrl+C during a fit: a ``KeyboardInterrupt`` (not Lightning's ``sys.exit``), the SIGINT
handler intact, the estimator unfitted, and a new fit that works."""

from __future__ import annotations

import signal

import numpy as np
import pandas as pd
import pytest
from helpers import seasonal_series, tiny_forecaster

from trace_forecast import TraceForecaster
from trace_forecast.engine.module import TraceLightningModule


def _series() -> pd.Series:
    return seasonal_series(160)


def test_interrupted_fit_leaves_the_estimator_unfitted_and_refits(tiny_backbone_dir, monkeypatch):
    handler = signal.getsignal(signal.SIGINT)
    original = TraceLightningModule.training_step
    calls = {"n": 0}

    def interrupted_step(self, batch, batch_idx):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # what Ctrl+C raises in the main thread
        return original(self, batch, batch_idx)

    monkeypatch.setattr(TraceLightningModule, "training_step", interrupted_step)
    forecaster = tiny_forecaster(tiny_backbone_dir, max_epochs=2)
    with pytest.raises(KeyboardInterrupt):
        forecaster.fit(_series(), fh=[1, 2, 3])
    assert signal.getsignal(signal.SIGINT) is handler, "Lightning's SIG_IGN must not outlive the fit"
    assert not forecaster.is_fitted
    assert not hasattr(forecaster, "network_")

    monkeypatch.setattr(TraceLightningModule, "training_step", original)
    refit = forecaster.fit(_series(), fh=[1, 2, 3])
    assert refit.is_fitted and np.isfinite(refit.predict().to_numpy()).all()
    fresh = TraceForecaster(**forecaster.get_params()).fit(_series(), fh=[1, 2, 3])
    assert np.array_equal(fresh.predict().to_numpy(), refit.predict().to_numpy())  # nothing half-fitted survived


def test_other_exits_pass_through():
    from trace_forecast.engine.interrupt import interruptible

    with pytest.raises(SystemExit):
        with interruptible():
            raise SystemExit(3)
