"""Normalised split-conformal calibration (trace_forecast.tasks.calibration)."""

import numpy as np
import pandas as pd
import pytest

from trace_forecast.tasks.calibration import (
    ResidualPool,
    newest_per_series,
    spread_in_time,
    windows_per_series,
)


def _pool(scales=(1.0, 10.0), n=200, horizon=3, seed=0) -> ResidualPool:
    rng = np.random.default_rng(seed)
    residuals = np.concatenate([rng.normal(0, s, (n, horizon)) for s in scales]).astype(np.float32)
    return ResidualPool(residuals, np.repeat(np.arange(len(scales)), n))


def test_one_series_gives_plain_split_conformal_quantiles_and_variance():
    pool = _pool(scales=(2.0,))
    steps = np.array([0, 2])
    q = pool.quantiles([0.1, 0.9], steps, 1)
    levels = [0.1 - 0.9 / 200, 0.9 + 0.9 / 200]  # split-conformal's finite-sample levels for 200 residuals
    np.testing.assert_allclose(q[0], np.quantile(pool.residuals[:, steps], levels, axis=0), rtol=1e-5)
    np.testing.assert_allclose(pool.variance(steps, 1)[0], pool.residuals[:, steps].var(axis=0), rtol=1e-5)


def test_each_series_gets_intervals_in_its_own_difficulty_scale():
    pool = _pool(scales=(1.0, 10.0))
    width = np.diff(pool.quantiles([0.1, 0.9], np.arange(3), 2), axis=1)[:, 0]  # [series, steps]
    assert np.allclose(width[1] / width[0], 10.0, rtol=0.15)
    # each series' own 80 % coverage holds, which one shared pool cannot give both of them
    for i, scale in enumerate((1.0, 10.0)):
        fresh = np.random.default_rng(9).normal(0, scale, (5000, 3))
        lo, hi = pool.quantiles([0.1, 0.9], np.arange(3), 2)[i]
        assert 0.75 < np.mean((fresh >= lo) & (fresh <= hi)) < 0.85
    var = pool.variance(np.arange(3), 2)
    assert np.allclose(var[1] / var[0], 100.0, rtol=0.3)


def test_a_series_without_residuals_gets_the_typical_scale():
    scales = _pool(scales=(1.0, 4.0)).scales(3)
    assert scales[2] == pytest.approx(np.sqrt(scales[0] * scales[1]))


def test_an_empty_pool_collapses_intervals_to_the_point_forecast():
    pool = ResidualPool.empty(4)
    assert not pool.quantiles([0.1, 0.9], np.arange(4), 2).any()
    assert not pool.variance(np.arange(4), 2).any()


def test_a_perfectly_forecast_series_does_not_divide_by_zero():
    pool = ResidualPool(np.zeros((5, 2), dtype=np.float32), np.zeros(5, dtype=np.int64))
    assert np.isfinite(pool.quantiles([0.05, 0.95], np.arange(2), 1)).all()


def test_extend_keeps_the_newest_windows_of_each_series():
    old = ResidualPool(np.arange(6, dtype=np.float32)[:, None], np.array([0, 1, 0, 1, 0, 1]))
    new = ResidualPool(np.array([[6.0], [7.0]], dtype=np.float32), np.array([0, 0]))
    limit = windows_per_series(2)
    merged = old.extend(new, 2)
    assert len(merged) == 8 and merged.series.tolist() == [0, 1, 0, 1, 0, 1, 0, 0]  # under the limit: all kept
    many = ResidualPool(np.arange(3 * limit, dtype=np.float32)[:, None], np.zeros(3 * limit, dtype=np.int64))
    kept = ResidualPool.empty(1).extend(many, 2)
    assert len(kept) == limit and kept.residuals[0, 0] == 2 * limit  # the newest, oldest first


def test_newest_per_series_and_spread_in_time():
    series = np.array([0, 0, 1, 0, 1, 1, 1])
    assert newest_per_series(series, 2).tolist() == [1, 3, 5, 6]
    origins = np.stack([np.repeat([0, 1], 100), np.tile(np.arange(100), 2)], axis=1)
    picked = spread_in_time(origins, budget=20)  # 10 per series, first and last of each included
    assert len(picked) == 20 and {0, 99} <= set(picked[picked[:, 0] == 1, 1].tolist())


def test_panel_forecaster_calibrates_every_series_in_its_own_scale(tiny_backbone_dir):
    """A quiet and a noisy series of one panel: each gets its own interval width."""
    from trace_forecast import TraceForecaster

    rng = np.random.default_rng(0)
    t = np.arange(240)
    frames = []
    for name, noise in (("quiet", 0.05), ("noisy", 1.0)):
        values = np.sin(2 * np.pi * t / 12) + rng.normal(0, noise, len(t))
        frames.append(pd.DataFrame({"y": values}, index=pd.MultiIndex.from_product([[name], t])))
    f = TraceForecaster(backbone=tiny_backbone_dir, context_length=64, max_epochs=1, max_windows=64,
                        random_state=0).fit(pd.concat(frames), fh=[1, 2, 3])
    assert set(np.unique(f.residuals_.series)) == {0, 1}
    interval = f.predict_interval(coverage=0.8)
    width = (interval.iloc[:, 1] - interval.iloc[:, 0]).groupby(level=0).mean()
    assert width["noisy"] > 3 * width["quiet"]


def test_finite_sample_levels_widen_small_pools_and_leave_large_ones_alone():
    from trace_forecast.tasks.calibration import conformal_levels

    np.testing.assert_allclose(conformal_levels([0.025, 0.5, 0.975], 1000), [0.024025, 0.5, 0.975975])
    np.testing.assert_allclose(conformal_levels([0.1, 0.9], 5), [0.0, 1.0])  # 5 residuals: their extremes


def test_a_step_with_fewer_residuals_gets_the_finite_sample_levels_of_its_own_count():
    """Targets cut at a series' end leave later steps fewer residuals: each step's levels
    follow its own count, so a step with 9 residuals reaches their extremes at 90 %."""
    from trace_forecast.tasks.calibration import conformal_levels

    residuals = np.random.default_rng(0).normal(size=(100, 2)).astype(np.float32)
    residuals[9:, 1] = np.nan  # step 2: 9 residuals
    pool = ResidualPool(residuals, np.zeros(100, dtype=np.int64))
    q = pool.quantiles([0.1, 0.9], np.array([0, 1]), 1)[0]
    scale = pool.scales(1)[0]
    np.testing.assert_allclose(q[:, 0], scale * np.quantile(residuals[:, 0] / scale, conformal_levels([0.1, 0.9], 100)), rtol=1e-5)
    np.testing.assert_allclose(q[:, 1], [residuals[:9, 1].min(), residuals[:9, 1].max()], rtol=1e-5)


def test_only_windows_no_training_window_repeats_calibrate():
    from trace_forecast.tasks.calibration import out_of_sample

    held_out = np.array([[0, 6], [0, 7], [1, 6]])
    trained = np.array([[0, 5], [0, 6]])
    assert out_of_sample(held_out, trained).tolist() == [[0, 7], [1, 6]]


def test_a_series_too_short_to_hold_out_a_window_is_calibrated_on_naive_errors(tiny_backbone_dir):
    """12 values for a 6-step forecast: its one validation window is also its training
    window, whose in-sample residual once made the interval zero wide."""
    from trace_forecast import TraceForecaster
    from trace_forecast.errors import ShortSeriesWarning, UncalibratedIntervalsWarning

    y = pd.Series(np.sin(np.arange(12.0)) * 10 + 50 + np.arange(12.0), index=pd.period_range("2000-01", periods=12,
                                                                                               freq="M"))
    f = TraceForecaster(backbone=tiny_backbone_dir, context_length=64, max_epochs=1, random_state=0)
    with pytest.warns(UncalibratedIntervalsWarning, match="naive"), pytest.warns(ShortSeriesWarning):
        f.fit(y, fh=np.arange(1, 7))
    assert len(f.residuals_) == 5  # origins 2..6
    interval = f.predict_interval(coverage=0.8).to_numpy()
    assert (interval[:, 1] - interval[:, 0] > 0.5).all()


def test_interval_quantile_variance_and_proba_agree_and_evaluate_scores_them(tiny_backbone_dir):
    """sktime's probabilistic interfaces describe one distribution, and back-tests score it."""
    from sktime.forecasting.model_evaluation import evaluate
    from sktime.performance_metrics.forecasting.probabilistic import EmpiricalCoverage, PinballLoss
    from sktime.split import ExpandingWindowSplitter

    from trace_forecast import TraceForecaster

    t = np.arange(220)
    y = pd.Series(np.sin(2 * np.pi * t / 12) + np.random.default_rng(3).normal(0, 0.2, len(t)),
                  index=pd.period_range("2000-01", periods=len(t), freq="M"))
    f = TraceForecaster(backbone=tiny_backbone_dir, context_length=64, max_epochs=1, max_windows=64, random_state=0)
    f.fit(y.iloc[:180], fh=[1, 2, 3])
    interval = f.predict_interval(coverage=0.8).to_numpy()
    quantiles = f.predict_quantiles(alpha=[0.1, 0.9]).to_numpy()
    np.testing.assert_allclose(interval, quantiles)
    proba = f.predict_proba()
    np.testing.assert_allclose(proba.mean().to_numpy()[:, 0], f.predict().to_numpy(), rtol=1e-5)
    np.testing.assert_allclose(proba.var().to_numpy()[:, 0], f.predict_var().to_numpy()[:, 0], rtol=1e-4)

    cv = ExpandingWindowSplitter(fh=[1, 2, 3], initial_window=180, step_length=10)
    scores = evaluate(f, cv=cv, y=y, strategy="no-update_params", scoring=[PinballLoss(), EmpiricalCoverage()])
    assert len(scores) == 4 and np.isfinite(scores.filter(like="test_").to_numpy(dtype=float)).all()
