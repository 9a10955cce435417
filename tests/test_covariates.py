"""Covariates (sktime ``X``): the covariate head on top of the fitted forecast
(:mod:`trace_forecast.heads.covariates`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import tiny_forecaster

from trace_forecast.errors import DataError, UncalibratedIntervalsWarning
from trace_forecast.heads.covariates import PAST_STEPS, features, fit_column, window_features


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


def test_intervals_are_calibrated_on_the_corrected_forecasts(tiny_backbone_dir):
    """Where the covariate head helps, intervals come from its corrected forecasts' residuals:
    narrower than the forecast's own, and they still cover the test values; updates add the
    corrected residuals of the windows they complete."""
    y, X = _driven(600)
    train, test = slice(0, 576), slice(576, 600)
    fh = list(range(1, 25))
    plain = tiny_forecaster(tiny_backbone_dir, max_windows=64).fit(y.iloc[train], fh=fh)
    f = tiny_forecaster(tiny_backbone_dir, max_windows=64).fit(y.iloc[train], X=X.iloc[train], fh=fh)
    assert f.covariate_map_.alphas[0] is not None

    def width(frame):
        return float((frame.iloc[:, 1] - frame.iloc[:, 0]).mean())

    with_x = f.predict_interval(X=X.iloc[test], coverage=0.9)
    assert width(with_x) < 0.7 * width(plain.predict_interval(coverage=0.9))
    truth = y.iloc[test, 0].to_numpy()
    covered = (with_x.iloc[:, 0].to_numpy() <= truth) & (truth <= with_x.iloc[:, 1].to_numpy())
    assert covered.mean() >= 0.75
    before = len(f.residuals_)
    f.update(y.iloc[576:580], X=X.iloc[576:580], update_params=False)
    assert len(f.residuals_) >= before and np.isfinite(f.residuals_.residuals).all()


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
    with pytest.raises(DataError, match="covariates need a window of 208 observations"), \
            pytest.warns(UncalibratedIntervalsWarning):  # the zero-shot fit before the covariates
        tiny_forecaster(tiny_backbone_dir, fit_strategy="zero-shot").fit(y, X=X, fh=np.arange(1, 201))
    text = X.assign(driver=X["driver"].astype(str))
    with pytest.raises((DataError, TypeError, ValueError), match="numeric"):
        tiny_forecaster(tiny_backbone_dir, max_windows=16).fit(y, X=text, fh=[1])


def test_covariates_are_read_by_name(tiny_backbone_dir):
    """Reordered covariates forecast as in the fitted order (they were read by position and
    silently swapped); other names raise."""
    y, X = _driven(200)
    X = X.assign(noise=np.random.default_rng(1).normal(size=200))
    f = tiny_forecaster(tiny_backbone_dir, max_windows=16).fit(y.iloc[:190], X=X.iloc[:190], fh=[1, 2])
    future = X.iloc[190:192]
    pd.testing.assert_frame_equal(f.predict(X=future[["noise", "driver"]]), f.predict(X=future))
    with pytest.raises(DataError, match="fitted on covariates"):
        f.predict(X=future.rename(columns={"noise": "other"}))
    with pytest.raises(DataError, match="fitted on covariates"):
        f.update(y.iloc[190:192], X=future[["driver"]], update_params=False)



def test_a_glitch_in_a_covariate_is_a_missing_value():
    """A ``-9999`` in a covariate's context or future is read as a missing value (0, the context
    mean), not as the spread that standardises the rest; clean windows are read as before."""
    rng = np.random.default_rng(0)
    context, future = rng.normal(size=(64, 2)), rng.normal(size=(4, 2))
    clean = features([context], [future])
    assert np.array_equal(clean[0], window_features(context, future))
    for where in ("context", "future"):
        glitchy, missing = (context.copy(), future.copy()), (context.copy(), future.copy())
        part = 0 if where == "context" else 1
        glitchy[part][2, 0], missing[part][2, 0] = -9999.0, np.nan
        got = features([glitchy[0]], [glitchy[1]])
        np.testing.assert_array_equal(got, features([missing[0]], [missing[1]]))
        assert np.abs(got - clean).max() < 0.5, where


def test_a_glitch_in_the_training_covariates_keeps_the_driver(tiny_backbone_dir):
    """One ``-9999`` in the driver's training rows: the head still uses the driver (it was
    standardised away and the head dropped it, as without covariates)."""
    y, X = _driven()
    train, test = slice(0, 376), slice(376, 400)
    fh = list(range(1, 25))
    truth = y.iloc[test].to_numpy()
    glitchy = X.iloc[train].copy()
    glitchy.iloc[370, 0] = -9999.0  # in the context of the last training windows and of the forecast
    errors = {}
    for name, covariates in (("clean", X.iloc[train]), ("glitch", glitchy)):
        f = tiny_forecaster(tiny_backbone_dir, max_windows=64).fit(y.iloc[train], X=covariates, fh=fh)
        errors[name] = np.abs(f.predict(X=X.iloc[test]).to_numpy() - truth).mean()
    plain = tiny_forecaster(tiny_backbone_dir, max_windows=64).fit(y.iloc[train], fh=fh).predict()
    assert errors["glitch"] < 1.5 * errors["clean"] < np.abs(plain.to_numpy() - truth).mean()

# ---------------------------------------------------------------- Darts: past and future covariates
def _darts_driven(n: int = 400):
    from darts import TimeSeries

    y, X = _driven(n)
    rng = np.random.default_rng(1)
    target = TimeSeries.from_dataframe(y.astype("float32"))
    future = TimeSeries.from_dataframe(X.astype("float32"))
    past = TimeSeries.from_times_and_values(y.index, rng.normal(size=(n, 1)).astype("float32"), columns=["noise"])
    return target, future, past


DARTS_FAST = dict(input_chunk_length=64, output_chunk_length=16, n_epochs=1, batch_size=16, max_windows=128,
                  random_state=0, dsic_interval=1, dsic_draws=2,
                  pl_trainer_kwargs={"enable_progress_bar": False, "enable_model_summary": False})


@pytest.fixture(scope="module")
def darts_with_covariates():
    pytest.importorskip("darts")
    from trace_forecast.darts import TraceModel

    target, future, past = _darts_driven()
    model = TraceModel(**DARTS_FAST).fit(target[:-16], past_covariates=past, future_covariates=future, verbose=False)
    return model, target, future, past


def test_darts_future_covariates_improve_the_forecast(darts_with_covariates):
    from trace_forecast.darts import TraceModel

    model, target, future, past = darts_with_covariates
    head = model.covariate_head
    assert head.future_known and head.past_only == (0,)  # the past covariate is read up to the origin only
    plain = TraceModel(**DARTS_FAST).fit(target[:-16], verbose=False)
    truth = target[-16:].values()[:, 0]
    error = np.abs(model.predict(16, past_covariates=past, future_covariates=future, verbose=False).values()[:, 0]
                   - truth).mean()
    assert error < 0.5 * np.abs(plain.predict(16, verbose=False).values()[:, 0] - truth).mean()
    # Without its head the network forecasts as one fitted without covariates: they never reach training.
    model._covariate_map, saved = None, model._covariate_map
    try:
        np.testing.assert_allclose(model.predict(16, past_covariates=past, future_covariates=future,
                                                 verbose=False).values(),
                                   plain.predict(16, verbose=False).values(), rtol=1e-5, atol=1e-5)
    finally:
        model._covariate_map = saved


def test_darts_covariates_in_long_forecasts_backtests_and_save_load(darts_with_covariates, tmp_path):
    from trace_forecast.darts import TraceModel

    model, target, future, past = darts_with_covariates
    longer = model.predict(24, series=target[:-40], past_covariates=past, future_covariates=future, verbose=False)
    assert longer.n_timesteps == 24 and np.isfinite(longer.values()).all()  # auto-regressive past 16 steps
    backtest = model.historical_forecasts(target, past_covariates=past, future_covariates=future, start=300,
                                          forecast_horizon=16, stride=16, retrain=False, last_points_only=False,
                                          verbose=False)
    assert len(backtest) == 6 and all(np.isfinite(b.values()).all() for b in backtest)
    before = model.predict(16, past_covariates=past, future_covariates=future, verbose=False)
    model.save(str(tmp_path / "model.pt"))
    loaded = TraceModel.load(str(tmp_path / "model.pt"))
    after = loaded.predict(16, past_covariates=past, future_covariates=future, verbose=False)
    np.testing.assert_array_equal(before.values(), after.values())


def test_darts_quantiles_are_calibrated_on_the_corrected_forecasts():
    pytest.importorskip("darts")
    from darts.utils.likelihood_models.torch import QuantileRegression

    from trace_forecast.darts import TraceModel

    target, future, _ = _darts_driven(600)
    settings = {**DARTS_FAST, "likelihood": QuantileRegression([0.05, 0.5, 0.95])}
    plain = TraceModel(**settings).fit(target[:-16], verbose=False)
    model = TraceModel(**settings).fit(target[:-16], future_covariates=future, verbose=False)
    assert model.covariate_head.alphas[0] is not None

    def width(m, **kwargs):
        q = m.predict(16, predict_likelihood_parameters=True, verbose=False, **kwargs).values()
        return float((q[:, 2] - q[:, 0]).mean())

    assert width(model, future_covariates=future) < 0.7 * width(plain)


def test_darts_covariates_in_an_ensemble_and_from_encoders():
    pytest.importorskip("darts")
    from darts.models import NaiveEnsembleModel, NLinearModel

    from trace_forecast.darts import TraceModel

    target, future, _ = _darts_driven()
    ensemble = NaiveEnsembleModel([
        TraceModel(**DARTS_FAST),
        NLinearModel(input_chunk_length=64, output_chunk_length=16, n_epochs=1, random_state=0,
                     pl_trainer_kwargs={"enable_progress_bar": False, "enable_model_summary": False}),
    ])
    ensemble.fit(target[:-16], future_covariates=future)
    assert np.isfinite(ensemble.predict(16, future_covariates=future, verbose=False).values()).all()

    encoded = TraceModel(**DARTS_FAST, add_encoders={"cyclic": {"future": ["hour"]}}).fit(target[:-16], verbose=False)
    assert encoded.covariate_head is not None and encoded.covariate_head.future_known  # sine and cosine of the hour
    assert np.isfinite(encoded.predict(16, verbose=False).values()).all()


def test_darts_bad_covariates_get_clear_errors(darts_with_covariates):
    from darts import TimeSeries

    from trace_forecast.darts import TraceModel
    from trace_forecast.errors import ParameterError

    model, target, future, past = darts_with_covariates
    # Darts keeps the covariates of a single training series and reuses them; another series needs its own.
    np.testing.assert_array_equal(model.predict(16, verbose=False).values(),
                                  model.predict(16, past_covariates=past, future_covariates=future,
                                                verbose=False).values())
    with pytest.raises(ValueError, match="covariates"):  # they do not cover a series a year later
        model.predict(16, series=target.shift(24 * 365), verbose=False)
    broken = future.values().copy()
    broken[10] = np.inf
    with pytest.raises(DataError, match="infinite"):
        TraceModel(**DARTS_FAST).fit(target, future_covariates=TimeSeries.from_times_and_values(future.time_index,
                                                                                                 broken),
                                     verbose=False)
    with pytest.raises(ParameterError, match="output_chunk_shift"):
        TraceModel(**{**DARTS_FAST, "output_chunk_shift": 2}).fit(target, future_covariates=future, verbose=False)
