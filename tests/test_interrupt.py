"""Ctrl+C during a fit: a ``KeyboardInterrupt`` (not Lightning's ``sys.exit``), the SIGINT
handler intact, the estimator unfitted, and a new fit that works."""

from __future__ import annotations

import signal

import numpy as np
import pandas as pd
import pytest

from trace_forecast import TraceForecaster
from trace_forecast.engine.module import TraceLightningModule


def _series(n: int = 160) -> pd.Series:
    t = np.arange(n)
    return pd.Series(10 + 3 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(0).normal(0, 0.3, n))


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
    forecaster = TraceForecaster(backbone=str(tiny_backbone_dir), context_length=64, max_epochs=2, batch_size=16,
                                 random_state=0, dsic_interval=2, dsic_draws=2)
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
