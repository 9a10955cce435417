"""No window, however flat, makes a fit diverge.

A sensor that flatlines for longer than the context gives windows whose RevIN standard
deviation is zero: their normalised targets are a division by almost zero. Such windows
must count for nothing (``trace_forecast.losses.window_weights``), in the closed-form
start and in the loss, in both front ends, at any amount of data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trace_forecast import TraceForecaster

CONTEXT, HORIZON = 64, 16


def _frame(n: int, flat: bool, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    a = np.sin(2 * np.pi * t / 24) + 0.1 * rng.standard_normal(n)
    b = 5 + np.cos(2 * np.pi * t / 24) + 0.1 * rng.standard_normal(n)
    if flat:  # a flatline three contexts long, then the sensor comes back with a jump
        b[n // 4 : n // 4 + 3 * CONTEXT] = 3.2
    return pd.DataFrame({"a": a, "b": b})


def _error(forecaster: TraceForecaster, frame: pd.DataFrame, column: str = "a") -> float:
    values = frame[column].to_numpy()
    origins = range(len(frame) - 120, len(frame) - HORIZON, 7)
    histories = [values[:o] for o in origins]
    futures = np.stack([values[o : o + HORIZON] for o in origins])
    return float(np.mean((forecaster.predict_histories(histories) - futures) ** 2))


@pytest.mark.parametrize("rows", [300, 700])
def test_a_flat_channel_does_not_spoil_the_fit(tiny_backbone_dir, rows):
    """The flat stretch covers many training windows; the other channel's forecasts stay as
    good as in a fit without it, and every forecast is finite."""
    common = dict(backbone=str(tiny_backbone_dir), context_length=CONTEXT, max_epochs=1, batch_size=16,
                  random_state=0, dsic_interval=2, dsic_draws=2)
    clean, flat = _frame(rows + 200, False), _frame(rows + 200, True)
    with_flat = TraceForecaster(**common).fit(flat.iloc[:rows], fh=np.arange(1, HORIZON + 1))
    without = TraceForecaster(**common).fit(clean.iloc[:rows], fh=np.arange(1, HORIZON + 1))
    assert np.isfinite(with_flat.predict().to_numpy()).all()
    assert _error(with_flat, flat) < 1.5 * _error(without, clean) + 0.02


def test_the_darts_model_ignores_flat_windows_too(tiny_backbone_dir):
    from darts import TimeSeries

    from trace_forecast.darts import TraceModel

    frame = _frame(500, True)
    model = TraceModel(input_chunk_length=CONTEXT, output_chunk_length=HORIZON, backbone=str(tiny_backbone_dir),
                       n_epochs=1, batch_size=16, random_state=0, dsic_interval=2, dsic_draws=2,
                       pl_trainer_kwargs={"enable_progress_bar": False})
    model.fit(TimeSeries.from_dataframe(frame.astype("float32")), verbose=False)
    forecast = model.predict(HORIZON, verbose=False).values()
    assert np.isfinite(forecast).all() and np.abs(forecast[:, 0]).max() < 3.0  # channel a stays in its range
