"""Small builders several test modules share (imported as ``from helpers import ...``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from trace_forecast import TraceAnomalyDetector, TraceForecaster


def seasonal_series(n: int = 200, seed: int = 0, phase: float = 0.0, period_index: bool = False,
                    name: str | None = None) -> pd.Series:
    """``10 + 3 sin(2 pi t / 12 + phase)`` plus N(0, 0.3) noise drawn from ``seed``;
    a RangeIndex, or monthly periods from 2000-01 with ``period_index``."""
    t = np.arange(n)
    values = 10 + 3 * np.sin(2 * np.pi * t / 12 + phase) + np.random.default_rng(seed).normal(0, 0.3, n)
    index = pd.period_range("2000-01", periods=n, freq="M") if period_index else pd.RangeIndex(n)
    return pd.Series(values, index=index, name=name)


def tiny_forecaster(backbone, **overrides) -> TraceForecaster:
    """A forecaster on the tiny test backbone that fits in about a second."""
    params = dict(backbone=str(backbone), context_length=64, max_epochs=1, batch_size=16, random_state=0,
                  dsic_interval=2, dsic_draws=2)
    return TraceForecaster(**{**params, **overrides})


def tiny_detector(backbone, **overrides) -> TraceAnomalyDetector:
    """A detector on the tiny test backbone that fits in about a second."""
    params = dict(backbone=str(backbone), context_length=64, max_epochs=1, batch_size=16, random_state=0,
                  max_windows=64, dsic_interval=2, dsic_draws=2)
    return TraceAnomalyDetector(**{**params, **overrides})
