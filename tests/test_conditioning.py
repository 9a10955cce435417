"""The values the network sees are brought into range: a series around 1e-9, or 1e9 plus a
small signal, forecasts and scores as the same series in ordinary units does."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trace_forecast import TraceAnomalyDetector, TraceForecaster
from trace_forecast.tasks.conditioning import Conditioning, conditioned, restored


def test_conditioning_is_exact_and_leaves_ordinary_series_alone():
    ordinary = np.array([3.0, 5.0, 4.0, 7.0])
    assert Conditioning.of(ordinary).identity and Conditioning.of(np.full(5, 1e-12)).identity   # constant: as is
    rounding = 0.1 * np.arange(1, 50) / np.arange(1, 50) * 3   # 0.3 with float64 rounding noise
    assert np.std(rounding) > 0 and Conditioning.of(rounding).identity       # not scaled up into a signal
    assert Conditioning.of(np.array([])).identity and Conditioning.of(np.array([np.nan, 2.0])).identity
    series, [c] = conditioned([ordinary])
    assert series[0].dtype == np.float32 and np.array_equal(series[0], ordinary.astype(np.float32))
    tiny = ordinary * 1e-9
    c = Conditioning.of(tiny)
    assert c.shift == 0.0 and np.log2(c.scale) == int(np.log2(c.scale)) and 1.0 <= np.std(tiny) * c.scale < 2.0
    offset = Conditioning.of(1e9 + ordinary)
    assert offset.shift == 1e9 + 4.5 and offset.scale == 1.0
    assert np.array_equal(offset.apply(1e9 + ordinary), (ordinary - 4.5).astype(np.float32))
    values = np.array([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_allclose(restored(values, [c, offset]), [[1.0 / c.scale, 2.0 / c.scale], [1e9 + 7.5, 1e9 + 8.5]])
    np.testing.assert_allclose(restored(values, [c, offset], power=2)[0], values[0] / c.scale**2)
    assert restored(values, [Conditioning(), Conditioning()]) is values


def _seasonal(n: int = 160) -> pd.Series:
    t = np.arange(n)
    values = 10 + 3 * np.sin(2 * np.pi * t / 12) + 0.05 * t + np.random.default_rng(0).normal(0, 0.3, n)
    return pd.Series(values, index=pd.period_range("2000-01", periods=n, freq="M"))


@pytest.mark.parametrize(("scale", "shift"), [(1e-9, 0.0), (1.0, 1e9)])
def test_forecasts_do_not_depend_on_the_units(tiny_backbone_dir, scale, shift):
    """RevIN's absolute floor (1e-5) flattened a series around 1e-9, and float32 made
    1e9 + a signal a constant: both forecast far off (airline x 1e-12: 46 times off zero-shot)."""
    y = _seasonal()
    params = {"backbone": str(tiny_backbone_dir), "context_length": 64, "max_epochs": 1, "max_windows": 32,
              "random_state": 0}
    base = TraceForecaster(**params).fit(y, fh=[1, 2, 3])
    other = TraceForecaster(**params).fit(y * scale + shift, fh=[1, 2, 3])
    np.testing.assert_allclose((other.predict() - shift) / scale, base.predict(), rtol=1e-3)
    np.testing.assert_allclose((other.predict_interval() - shift) / scale, base.predict_interval(), rtol=1e-3)
    np.testing.assert_allclose(other.predict_var() / scale**2, base.predict_var(), rtol=1e-2)
    history = (y.to_numpy() * scale + shift)[None, :]
    np.testing.assert_allclose((other.predict_histories(list(history)) - shift) / scale,
                               base.predict_histories([y.to_numpy()]), rtol=1e-3)


def test_anomaly_scores_do_not_depend_on_the_units(tiny_backbone_dir):
    t = np.arange(600)
    x = np.sin(2 * np.pi * t / 32) + 0.1 * np.random.default_rng(0).normal(size=600)
    x[450:455] += 3.0
    params = {"backbone": str(tiny_backbone_dir), "context_length": 64, "max_epochs": 1, "max_windows": 32,
              "random_state": 0}
    base = TraceAnomalyDetector(**params).fit(pd.DataFrame({"x": x[:400]}))
    tiny = TraceAnomalyDetector(**params).fit(pd.DataFrame({"x": x[:400] * 1e-12}))
    scores = base.transform_scores(pd.DataFrame({"x": x}))["scores"].to_numpy()
    np.testing.assert_allclose(tiny.transform_scores(pd.DataFrame({"x": x * 1e-12}))["scores"].to_numpy(), scores,
                               rtol=1e-2, atol=1e-2 * np.abs(scores).max())


def test_covariates_in_tiny_units_are_read(tiny_backbone_dir):
    """A covariate's window was standardised with an absolute floor of 1e-8 on its spread, so
    one in units around 1e-10 was read as constant and dropped (MAE 2.63 against 0.27 for the
    same covariate in ordinary units, default backbone)."""
    rng = np.random.default_rng(0)
    index = pd.date_range("2021-01-01", periods=200, freq="h")
    driver = rng.normal(size=200).cumsum() * 0.1 + rng.normal(size=200)
    y = pd.DataFrame({"y": 3 * driver + 0.1 * rng.normal(size=200)}, index=index)
    params = {"backbone": str(tiny_backbone_dir), "context_length": 64, "max_epochs": 1, "max_windows": 32,
              "random_state": 0}
    forecasts = []
    for scale in (1.0, 1e-10):
        X = pd.DataFrame({"driver": driver * scale}, index=index)
        f = TraceForecaster(**params).fit(y.iloc[:190], X=X.iloc[:190], fh=list(range(1, 11)))
        assert f.covariate_map_.active
        forecasts.append(f.predict(X=X.iloc[190:]).to_numpy())
    np.testing.assert_allclose(forecasts[1], forecasts[0], rtol=1e-6)


def test_darts_scorer_scores_do_not_depend_on_the_units(tiny_backbone_dir):
    from darts import TimeSeries

    from trace_forecast.darts import TraceAnomalyScorer

    t = np.arange(600)
    x = (np.sin(2 * np.pi * t / 32) + 0.1 * np.random.default_rng(0).normal(size=600)).astype(np.float64)
    x[450:455] += 3.0
    params = {"backbone": str(tiny_backbone_dir), "context_length": 64, "max_epochs": 1, "max_windows": 32,
              "random_state": 0}
    scores = []
    for scale in (1.0, 1e-12):
        scorer = TraceAnomalyScorer(**params).fit(TimeSeries.from_values(x[:400] * scale))
        scores.append(scorer.score(TimeSeries.from_values(x * scale)).values().ravel())
    np.testing.assert_allclose(scores[1], scores[0], rtol=1e-2, atol=1e-2 * np.abs(scores[0]).max())
