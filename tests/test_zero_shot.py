"""Zero-shot forecasting through the estimators: sktime's ``fit_strategy="zero-shot"`` and
Darts' ``enable_finetuning=False`` train nothing and forecast with the backbone's own
prediction of the hidden future patches."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import seasonal_series, tiny_forecaster

from trace_forecast.backbone import load_backbone
from trace_forecast.errors import DataError, ParameterError, UncalibratedIntervalsWarning

H = 16


def tail_reconstruction(backbone_dir, history: np.ndarray, context: int, horizon: int) -> np.ndarray:
    """MOMENT's zero-shot route written out: the last ``context - horizon`` values, then
    ``horizon`` hidden steps, read back from the reconstruction."""
    backbone = load_backbone(str(backbone_dir)).eval()
    shown = context - horizon
    x = torch.cat([torch.from_numpy(history[-shown:].astype(np.float32)), torch.zeros(horizon)])[None, None, :]
    observed = torch.ones(1, context)
    mask = observed.clone()
    mask[:, shown:] = 0
    with torch.no_grad():
        return backbone.reconstruct(x, observed, mask)[0, 0, shown:].numpy()


def test_sktime_zero_shot_trains_nothing_and_reads_the_backbone(tiny_backbone_dir, monkeypatch):
    monkeypatch.setenv("TRACE_FORECAST_PRECISION", "fp32")  # compared with an fp32 reconstruction below
    y = seasonal_series(300)
    before = y.copy()
    forecaster = tiny_forecaster(tiny_backbone_dir, fit_strategy="zero-shot").fit(y, fh=np.arange(1, H + 1))
    pd.testing.assert_series_equal(y, before)
    assert forecaster.get_fitted_params()["total_trainable"] == 0
    assert forecaster.train_loss_ == [] and forecaster.selected_modules_.empty
    values = y.to_numpy()
    expected = (tail_reconstruction(tiny_backbone_dir, values, 64, H)
                - tail_reconstruction(tiny_backbone_dir, -values, 64, H)) / 2  # the sign-symmetric average
    np.testing.assert_allclose(forecaster.predict().to_numpy(), expected, rtol=1e-4, atol=1e-4)
    intervals = forecaster.predict_interval(coverage=0.8)
    assert (intervals.iloc[:, 0] <= intervals.iloc[:, 1]).all()
    assert len(forecaster.residuals_) > 0  # measured on unseen windows of y
    import pickle

    again = pickle.loads(pickle.dumps(forecaster))  # the zero-shot map is saved though nothing trained
    pd.testing.assert_series_equal(again.predict(), forecaster.predict())


def test_zero_shot_is_odd_in_the_series_and_plain_without_the_symmetry(tiny_backbone_dir, monkeypatch):
    """The sign-symmetric average: the negated series gets the negated forecast. Switched
    off, the forecast is MOMENT's plain tail reconstruction."""
    from trace_forecast.heads import reconstruction

    monkeypatch.setenv("TRACE_FORECAST_PRECISION", "fp32")
    y = seasonal_series(300)
    fh = np.arange(1, H + 1)
    forecast = tiny_forecaster(tiny_backbone_dir, fit_strategy="zero-shot").fit(y, fh=fh).predict()
    negated = tiny_forecaster(tiny_backbone_dir, fit_strategy="zero-shot").fit(-y, fh=fh).predict()
    np.testing.assert_allclose(negated.to_numpy(), -forecast.to_numpy(), rtol=1e-4, atol=1e-4)
    monkeypatch.setattr(reconstruction, "SIGN_SYMMETRIC_ZERO_SHOT", False)
    plain = tiny_forecaster(tiny_backbone_dir, fit_strategy="zero-shot").fit(y, fh=fh).predict()
    np.testing.assert_allclose(plain.to_numpy(), tail_reconstruction(tiny_backbone_dir, y.to_numpy(), 64, H),
                               rtol=1e-4, atol=1e-4)


def test_sktime_zero_shot_in_evaluate(tiny_backbone_dir):
    from sktime.forecasting.model_evaluation import evaluate
    from sktime.split import ExpandingWindowSplitter

    y = seasonal_series(200)
    cv = ExpandingWindowSplitter(fh=np.arange(1, 9), initial_window=120, step_length=20)
    results = evaluate(tiny_forecaster(tiny_backbone_dir, fit_strategy="zero-shot"), cv, y)
    assert len(results) == 4 and np.isfinite(results.iloc[:, 0]).all()


def test_zero_shot_forecasts_further_ahead_than_the_series_reach(tiny_backbone_dir):
    """Zero-shot learns nothing, so a 60-step forecast from 40 observations works. Its
    intervals are calibrated on its own errors at the steps that 8 windows reach, then on the
    naive forecast's (as a short series' fine-tune is), and further ahead they raise. A
    fine-tune still needs a window of the horizon to learn from."""
    y = seasonal_series(40)
    with pytest.warns(UncalibratedIntervalsWarning, match="steps 26 to 31 are calibrated on the naive"):
        forecaster = tiny_forecaster(tiny_backbone_dir, fit_strategy="zero-shot").fit(y, fh=np.arange(1, 61))
    forecast = forecaster.predict()
    assert len(forecast) == 60 and np.isfinite(forecast.to_numpy()).all()
    for ask in (forecaster.predict_interval, forecaster.predict_var):
        with pytest.raises(DataError, match="step 32 cannot be calibrated"):
            ask()
    with pytest.warns(UncalibratedIntervalsWarning, match="steps 26 to 31 are calibrated on the naive"):
        near = tiny_forecaster(tiny_backbone_dir, fit_strategy="zero-shot").fit(y, fh=np.arange(1, 32))
    bounds = near.predict_interval(coverage=0.9).to_numpy()
    assert np.isfinite(bounds).all() and (bounds[:, 1] > bounds[:, 0]).all()
    with pytest.raises(DataError, match='too short to learn a 60-step forecast.*a zero-shot forecast \\(fit_strategy="zero-shot"\\) needs only 5'):
        tiny_forecaster(tiny_backbone_dir).fit(y, fh=np.arange(1, 61))
    with pytest.raises(DataError, match="too short for a zero-shot forecast: it needs at least 5"):
        tiny_forecaster(tiny_backbone_dir, fit_strategy="zero-shot").fit(y.iloc[:4], fh=[1, 2])


def test_zero_shot_needs_the_reconstruction_head(tiny_backbone_dir):
    with pytest.raises(ParameterError, match='head="reconstruction"'):
        tiny_forecaster(tiny_backbone_dir, fit_strategy="zero-shot", head="linear").fit(seasonal_series(), fh=[1, 2])
    with pytest.raises(ValueError, match="fit_strategy must be one of"):
        tiny_forecaster(tiny_backbone_dir, fit_strategy="few-shot").fit(seasonal_series(), fh=[1, 2])


def test_darts_zero_shot_matches_sktime_and_backtests(tiny_backbone_dir, tmp_path):
    from darts import TimeSeries

    from trace_forecast.darts import TraceModel

    y = seasonal_series(300)
    series = TimeSeries.from_series(y.astype("float32"))
    model = TraceModel(backbone=str(tiny_backbone_dir), input_chunk_length=64, output_chunk_length=H,
                       enable_finetuning=False, random_state=0)
    model.fit(series, verbose=False)
    assert not any(p.requires_grad for p in model.network.parameters())
    forecast = model.predict(n=H, verbose=False)
    sktime = tiny_forecaster(tiny_backbone_dir, fit_strategy="zero-shot").fit(y, fh=np.arange(1, H + 1))
    np.testing.assert_allclose(forecast.values().ravel(), sktime.predict().to_numpy(), rtol=1e-4, atol=1e-4)
    assert model.predict(n=2 * H, verbose=False).n_timesteps == 2 * H  # auto-regressive beyond the head
    hist = model.historical_forecasts(series, start=200, forecast_horizon=H, retrain=False, verbose=False)
    assert hist.n_timesteps == len(series) - 200 - H + 1
    model.save(str(tmp_path / "zero_shot.pt"))
    loaded = TraceModel.load(str(tmp_path / "zero_shot.pt"))
    np.testing.assert_allclose(loaded.predict(n=H, series=series, verbose=False).values(), forecast.values())
