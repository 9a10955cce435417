"""Covariates (sktime ``X``): the covariate head on top of the fitted forecast
(:mod:`trace_forecast.heads.covariates`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import tiny_forecaster

from trace_forecast.errors import DataError
from trace_forecast.heads.covariates import PAST_STEPS, fit_column, window_features


def _driven(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A target that is mostly a known-in-advance driver (plus noise), and the driver."""
    rng = np.random.default_rng(seed)
    index = pd.date_range("2021-01-01", periods=n, freq="h")
    driver = rng.normal(size=n).cumsum() * 0.1 + rng.normal(size=n)
    y = pd.DataFrame({"y": 3 * driver + 0.1 * rng.normal(size=n)}, index=index)
    return y, pd.DataFrame({"driver": driver}, index=index)


def test_window_features_standardise_each_covariate_by_its_context():
    context = np.column_stack([np.arange(16.0), np.full(16, 5.0)])
    future = np.array([[16.0, 5.0], [np.nan, 5.0]])
    f = window_features(context, future).reshape(2, PAST_STEPS + 2)
    assert f[0, -2] == pytest.approx((16 - 7.5) / np.arange(16.0).std())
    assert f[0, -1] == 0.0, "a missing covariate value is the context mean"
    assert (f[1] == 0.0).all(), "a constant covariate carries nothing"


def test_ridge_stays_zero_when_the_covariates_do_not_help():
    rng = np.random.default_rng(0)
    x, r = rng.normal(size=(200, 5)), rng.normal(size=(200, 3))
    w, b, alpha = fit_column(x[:150], r[:150], x[150:], r[150:])
    assert alpha is None and not w.any() and not b.any()
    r = x[:, :3] * 2.0
    w, b, alpha = fit_column(x[:150], r[:150], x[150:], r[150:])
    assert alpha is not None and np.allclose(x[150:] @ w + b, r[150:], atol=0.1)


def test_known_future_covariates_improve_the_forecast(tiny_backbone_dir):
    y, X = _driven()
    train, test = slice(0, 376), slice(376, 400)
    fh = list(range(1, 25))
    plain = tiny_forecaster(tiny_backbone_dir, max_windows=64).fit(y.iloc[train], fh=fh).predict()
    f = tiny_forecaster(tiny_backbone_dir, max_windows=64).fit(y.iloc[train], X=X.iloc[train], fh=fh)
    with_x = f.predict(X=X.iloc[test])
    truth = y.iloc[test].to_numpy()
    assert np.abs(with_x.to_numpy() - truth).mean() < 0.5 * np.abs(plain.to_numpy() - truth).mean()
    intervals = f.predict_interval(X=X.iloc[test], coverage=0.9)
    assert np.isfinite(intervals.to_numpy()).all()
    f.update(y.iloc[376:380], X=X.iloc[376:380], update_params=False)
    assert np.isfinite(f.predict(X=X.iloc[380:400]).to_numpy()).all()


def test_covariates_are_optional_and_change_nothing_when_absent(tiny_backbone_dir):
    y, _ = _driven()
    a = tiny_forecaster(tiny_backbone_dir, max_windows=32).fit(y, fh=[1, 2]).predict()
    b = tiny_forecaster(tiny_backbone_dir, max_windows=32).fit(y, X=None, fh=[1, 2]).predict()
    pd.testing.assert_frame_equal(a, b)


def test_bad_covariates_get_clear_errors(tiny_backbone_dir):
    y, X = _driven(200)
    f = tiny_forecaster(tiny_backbone_dir, max_windows=16).fit(y.iloc[:190], X=X.iloc[:190], fh=[1, 2])
    with pytest.raises(DataError, match="predict needs X"):
        f.predict()
    with pytest.raises(DataError, match="no values for the forecast rows"):
        f.predict(X=X.iloc[:10])
    text = X.assign(driver=X["driver"].astype(str))
    with pytest.raises((DataError, TypeError, ValueError), match="numeric"):
        tiny_forecaster(tiny_backbone_dir, max_windows=16).fit(y, X=text, fh=[1])
