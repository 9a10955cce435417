"""TraceForecaster: the sktime forecaster users meet first."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sktime.forecasting.base import ForecastingHorizon

from trace_forecast import TraceForecaster
from trace_forecast.errors import DataError, UncalibratedIntervalsWarning


def _series(n: int = 160, seed: int = 0, name: str = "y") -> pd.Series:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    values = 10 + 3 * np.sin(2 * np.pi * t / 12) + 0.05 * t + rng.normal(0, 0.3, n)
    return pd.Series(values, index=pd.period_range("2000-01", periods=n, freq="M"), name=name)


@pytest.fixture
def make(tiny_backbone_dir):
    def _make(**kwargs):
        params = {"backbone": str(tiny_backbone_dir), "context_length": 64, "max_epochs": 2, "batch_size": 16,
                  "random_state": 0, "dsic_interval": 2, "dsic_draws": 2}
        params.update(kwargs)
        return TraceForecaster(**params)

    return _make


def test_fit_predict_series_with_gapped_fh(make):
    y = _series()
    f = make().fit(y, fh=[1, 3, 12])
    pred = f.predict()
    assert list(pred.index) == list(pd.period_range(y.index[-1] + 1, periods=12, freq="M")[[0, 2, 11]])
    assert np.isfinite(pred.to_numpy()).all()
    assert pred.name == "y"


def test_absolute_fh_and_multivariate_frame(make):
    y = pd.DataFrame({"a": _series(seed=1).to_numpy(), "b": 100 * _series(seed=2).to_numpy()},
                     index=_series().index)
    fh = pd.period_range(y.index[-1] + 1, periods=4, freq="M")
    pred = make().fit(y, fh=fh).predict()
    assert list(pred.columns) == ["a", "b"] and list(pred.index) == list(fh)
    assert pred["b"].mean() > 20 * pred["a"].mean()  # channels keep their own scale


def test_fitting_is_reproducible_with_a_seed(make):
    y = _series()
    a = make().fit(y, fh=[1, 2, 3]).predict()
    b = make().fit(y, fh=[1, 2, 3]).predict()
    pd.testing.assert_series_equal(a, b)


def test_fitted_params_report_trainable_counts_and_selection(make):
    # Without validation windows the fit ends with its last state: Gated DSIC's selection.
    with pytest.warns(UncalibratedIntervalsWarning, match="nothing is held out"):
        f = make(dsic_budget=0.5, validation_fraction=0.0).fit(_series(), fh=[1, 2])
    params = f.get_fitted_params()
    for key in ("adapter_trainable", "gates_trainable", "head_trainable", "backbone_trainable", "total_trainable"):
        assert key in params
    assert params["backbone_trainable"] == 0
    selection = params["selected_modules"]
    assert list(selection.columns) == ["module", "kept", "importance", "gate"]
    assert selection["kept"].sum() == len(selection) // 2  # budget 0.5 of 14 modules
    assert params["gates_trainable"] == selection["kept"].sum()
    assert len(params["train_loss"]) >= 1


def test_a_fit_keeps_its_best_state_on_validation_and_says_which(make):
    """The closed-form start competes with the fine-tuned state on validation; when it
    wins, the adapters are switched off, so the model is exactly the start."""
    import trace_forecast.engine.recipe as recipe

    f = make(max_epochs=1, learning_rate=0.5).fit(_series(), fh=[1, 2])  # a step far too large: worse on validation
    choices = f.get_fitted_params()["fit_choices"]
    assert choices["kept"] == "start"
    assert set(choices["head_start"]) == {"alpha", "blend", "validation_error", "zero_shot_error", "validation_windows",
                                          "weighting", "persistence"}
    assert choices["head_start"]["validation_error"] <= choices["head_start"]["zero_shot_error"]
    assert not f.get_fitted_params()["selected_modules"]["kept"].any()
    assert f.get_fitted_params()["adapter_trainable"] == 0
    assert recipe.BestOnValidation().kept is None


# Nothing to calibrate intervals on: that warning is asserted in test_calibration.
@pytest.mark.filterwarnings("ignore::trace_forecast.errors.UncalibratedIntervalsWarning")
def test_validation_too_short_to_choose_gives_the_zero_shot_forecast_and_trains_nothing(make):
    """A series whose last 20 % is shorter than the horizon holds one validation window: no
    evidence to depart from the pretrained model's forecast, so the fit is the zero-shot map
    its head starts from, the sign-symmetric one the zero-shot estimator forecasts with."""
    y = _series(120)
    fitted = make().fit(y, fh=np.arange(1, 31))
    zero_shot = make(fit_strategy="zero-shot").fit(y, fh=np.arange(1, 31))
    choices = fitted.get_fitted_params()["fit_choices"]
    assert choices["kept"] == "start" and choices["head_start"]["blend"] == 0.0
    assert choices["head_start"]["validation_windows"] == 1
    np.testing.assert_allclose(fitted.predict().to_numpy(), zero_shot.predict().to_numpy(), rtol=1e-5, atol=1e-5)
    assert fitted.get_fitted_params()["train_loss"] == []  # no training step was taken


@pytest.mark.parametrize(
    ("adapter", "head"), [("lora", "reconstruction"), ("adalora", "reconstruction"), ("full", "reconstruction"), ("none", "linear")]
)
def test_every_adapter_mode_fits(make, adapter, head):
    f = make(adapter=adapter, head=head, max_epochs=1).fit(_series(), fh=[1, 2, 3])
    assert np.isfinite(f.predict().to_numpy()).all()
    report = f.get_fitted_params()
    if adapter == "none":
        assert report["adapter_trainable"] == 0 and report["head_trainable"] > 0


# Nothing to calibrate intervals on: that warning is asserted in test_calibration.
@pytest.mark.filterwarnings("ignore::trace_forecast.errors.UncalibratedIntervalsWarning")
def test_gated_dsic_without_validation_windows_uses_training_batches(make):
    f = make(validation_fraction=0.0).fit(_series(), fh=[1, 2])
    assert f.get_fitted_params()["selected_modules"]["kept"].sum() == 7


def test_pickle_round_trip_is_small_and_predicts_the_same(make, tiny_backbone_dir):
    f = make().fit(_series(), fh=[1, 2, 3])
    blob = pickle.dumps(f)
    assert len(blob) < 100_000  # adapter + head + history, not the backbone
    g = pickle.loads(blob)
    pd.testing.assert_series_equal(g.predict(), f.predict())


def test_sktime_save_and_load(make, tmp_path):
    from sktime.base import load

    f = make().fit(_series(), fh=[1, 2, 3])
    f.save(tmp_path / "model")
    g = load(tmp_path / "model.zip")
    pd.testing.assert_series_equal(g.predict(), f.predict())
    assert (tmp_path / "model.zip").stat().st_size < 100_000


def test_update_moves_the_context_without_refitting(make):
    y = _series(180)
    f = make().fit(y.iloc[:150], fh=[1, 2])
    state = {k: v.clone() for k, v in f.network_.state_dict().items()}
    first = f.predict()
    f.update(y.iloc[150:160], update_params=False)
    second = f.predict()
    assert second.index[0] == y.index[160]
    assert not np.allclose(first.to_numpy(), second.to_numpy())
    for k, v in f.network_.state_dict().items():
        assert (v == state[k]).all()
    f.update(y.iloc[160:], update_params=True)
    changed = any(not (v == state[k]).all() for k, v in f.network_.state_dict().items())
    assert changed


def test_update_reads_columns_by_name(make):
    """Columns go by name: reordered they are reordered (``update`` raised), other names
    raise, and one column (a renamed or unnamed series) is read as the fitted one."""
    base = _series().to_numpy()
    y = pd.DataFrame({"a": base, "b": base[::-1].copy()}, index=_series().index)
    f, g = make().fit(y.iloc[:150], fh=[1]), make().fit(y.iloc[:150], fh=[1])
    f.update(y.iloc[150:], update_params=False)
    g.update(y.iloc[150:][["b", "a"]], update_params=False)
    pd.testing.assert_frame_equal(f.predict(), g.predict())
    with pytest.raises(DataError, match=r"y has columns \['a', 'z'\] but the forecaster was fitted on"):
        f.update(y.iloc[150:].rename(columns={"b": "z"}), update_params=False)
    single = make().fit(y[["a"]].iloc[:150], fh=[1])
    single.update(y[["a"]].iloc[150:].rename(columns={"a": "z"}), update_params=False)
    assert list(single.predict().columns) == ["a"]


def test_prediction_intervals_are_ordered_and_cover(make):
    f = make(max_epochs=3).fit(_series(200), fh=[1, 2, 3])
    q = f.predict_quantiles(alpha=[0.1, 0.5, 0.9])
    lo, mid, hi = (q.iloc[:, i].to_numpy() for i in range(3))
    assert (lo <= mid).all() and (mid <= hi).all()
    intervals = f.predict_interval(coverage=[0.5, 0.9])
    assert (intervals.iloc[:, 2] <= intervals.iloc[:, 0]).all()  # 90 % lower below 50 % lower


def test_update_calibrates_intervals_online(make):
    """update(update_params=False) adds the residuals of the windows it completes: noisier new
    data widen the intervals; a refit starts the pool again from its validation windows."""
    from trace_forecast.tasks.forecast import CALIBRATION_WINDOWS

    y = _series(300)
    f = make().fit(y.iloc[:200], fh=[1, 2, 3])
    before, width = len(f.residuals_), np.diff(f.predict_interval(coverage=0.8).to_numpy(), axis=1).mean()
    noisy = y.iloc[200:] + np.random.default_rng(1).normal(0, 3.0, 100)
    f.update(noisy, update_params=False)
    assert len(f.residuals_) == min(before + 100, CALIBRATION_WINDOWS)  # origins 198..297 completed
    assert np.diff(f.predict_interval(coverage=0.8).to_numpy(), axis=1).mean() > 1.5 * width
    with pytest.warns(UserWarning, match="empty y"):
        f.update(noisy.iloc[:0], update_params=False)  # nothing new: the pool is unchanged
    assert len(f.residuals_) == min(before + 100, CALIBRATION_WINDOWS)
    refit = make().fit(pd.concat([y.iloc[:200], noisy]), fh=[1, 2, 3])
    f.update(noisy.iloc[-1:] * 1.0, update_params=True)
    assert len(f.residuals_) == len(refit.residuals_)


def test_predict_var_is_the_variance_of_the_quantiles_distribution(make):
    """predict_var describes the conformal distribution predict_quantiles draws from."""
    from trace_forecast.tasks.forecast import predict_normalized

    f = make().fit(_series(200), fh=[1, 2, 3])
    var = f.predict_var().to_numpy()[:, 0]
    _, _, std = predict_normalized(f.network_, [_series(200).to_numpy()[-64:]])
    np.testing.assert_allclose(var, std[0] ** 2 * f.residuals_.residuals.var(axis=0), rtol=1e-5)
    with pytest.raises(NotImplementedError, match="marginal"):
        f.predict_var(cov=True)


def test_panel_data_is_fitted_globally(make):
    frames = []
    for i in range(3):
        s = _series(seed=i).to_frame("y")
        s.index = pd.MultiIndex.from_product([[f"s{i}"], s.index], names=["id", "time"])
        frames.append(s)
    y = pd.concat(frames)
    f = make().fit(y, fh=[1, 2])
    pred = f.predict()
    assert pred.index.nlevels == 2 and set(pred.index.get_level_values(0)) == {"s0", "s1", "s2"}
    assert len(pred) == 6
    assert f.get_fitted_params()["total_trainable"] > 0


def test_pretrain_then_fit_continues_from_the_panel_model(make):
    frames = []
    for i in range(3):
        s = _series(seed=10 + i).to_frame("y")
        s.index = pd.MultiIndex.from_product([[i], s.index])
        frames.append(s)
    f = make()
    f.pretrain(pd.concat(frames), fh=[1, 2, 3])
    assert f.state == "pretrained"
    f.fit(_series(), fh=[1, 2])
    assert f.state == "fitted"
    assert len(f.predict()) == 2


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda y: y * np.nan, "no observed value"),
        (lambda y: y.replace(y.iloc[3], np.inf), "infinite"),
        (lambda y: y.iloc[:0], "empty|Series"),
    ],
)
def test_bad_values_are_rejected(make, mutate, match):
    with pytest.raises((DataError, ValueError, TypeError), match=match):
        make().fit(mutate(_series()), fh=[1])


def test_non_numeric_column_is_rejected(make):
    y = pd.DataFrame({"a": _series().to_numpy(), "b": ["x"] * 160}, index=_series().index)
    with pytest.raises((DataError, TypeError, ValueError), match="numeric|categorical"):
        make().fit(y, fh=[1])


def test_an_irregular_datetime_index_is_rejected_before_the_fit(make):
    """sktime places the forecast at ``cutoff + k * freq``; without a frequency it failed at
    ``predict`` with pandas' TypeError, after the whole fit. A regular index without ``freq``
    set is inferred and works."""
    days = pd.date_range("2020-01-01", periods=161, freq="D")
    with pytest.raises(DataError, match="irregular steps"):
        make().fit(pd.Series(_series().to_numpy(), index=days.delete(50)), fh=[1, 2])
    regular = pd.Series(_series().to_numpy(), index=pd.DatetimeIndex(list(days[:160])))
    assert make().fit(regular, fh=[1, 2]).predict().index[0] == days[160]


def test_a_panel_whose_time_level_lost_its_frequency_forecasts_at_the_right_stamps(make):
    """``pd.concat`` and ``MultiIndex.from_tuples`` leave a panel's time level without
    ``freq``, and one instance may skip a day: sktime could not place the forecast (pandas'
    TypeError at ``predict``). The frequency now comes from the panel's stamps together."""
    days = pd.date_range("2020-01-01", periods=162, freq="D")
    values = _series().to_numpy()
    panel = pd.concat({"a": pd.DataFrame({"y": values}, index=days[:160]),
                       "b": pd.DataFrame({"y": values[:-1]}, index=days[:160].delete(50))}, names=["id", "t"])
    panel = panel.set_axis(pd.MultiIndex.from_tuples(list(panel.index), names=["id", "t"]))
    assert panel.index.levels[-1].freq is None
    forecaster = make().fit(panel, fh=[1, 2])
    for frame in (forecaster.predict(), forecaster.predict_interval(coverage=0.8), forecaster.predict_var()):
        assert list(frame.index.get_level_values("t").unique()) == list(days[160:162])


def test_a_panel_whose_instances_end_apart_forecasts_each_after_its_own_end(make):
    """Each instance forecasts the steps after its own data; a shorter one's forecasts were
    stamped after the panel's last time stamp. As sktime's per-instance forecasters do,
    relative steps count from each instance's end; an absolute fh is then ambiguous."""
    values = _series().to_numpy()
    panel = pd.concat({"a": pd.DataFrame({"y": values}), "b": pd.DataFrame({"y": values[:100]})}, names=["id", "t"])
    forecaster = make().fit(panel, fh=[1, 2])
    expected = [("a", 160), ("a", 161), ("b", 100), ("b", 101)]
    for frame in (forecaster.predict(), forecaster.predict_interval(), forecaster.predict_var(),
                  forecaster.predict_quantiles()):
        assert list(frame.index) == expected
    b = forecaster.predict_histories([values[:100]])                     # b's own history, forecast alone
    np.testing.assert_allclose(forecaster.predict().loc["b"].to_numpy().ravel(), b.ravel(), rtol=1e-5)
    with pytest.raises(DataError, match="give fh as steps"):
        make().fit(panel, fh=ForecastingHorizon([160, 161], is_relative=False))


def test_too_short_series_says_how_many_are_needed(make):
    with pytest.raises(DataError, match="at least 16 observations"):
        make().fit(_series(10), fh=[12])


@pytest.mark.parametrize("fh", [[0], [-1, 2]])
def test_non_positive_horizon_is_rejected(make, fh):
    # sktime itself rejects in-sample steps for forecasters tagged capability:insample=False
    with pytest.raises((ValueError, NotImplementedError), match="in-sample|fh steps must be >= 1"):
        make().fit(_series(), fh=fh)


def test_missing_fh_is_rejected(make):
    with pytest.raises(ValueError, match="fh"):
        make().fit(_series())


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    from trace_forecast.errors import CheckpointError

    with pytest.raises(CheckpointError, match="does not exist"):
        TraceForecaster(backbone=str(tmp_path / "absent")).fit(_series(), fh=[1])


def test_callers_data_is_never_mutated(make):
    y = _series()
    frame = pd.DataFrame({"a": y.to_numpy(), "b": y.to_numpy() * 2}, index=y.index)
    before = frame.copy(deep=True)
    f = make().fit(frame, fh=[1, 2])
    f.predict()
    f.update(frame.iloc[-5:] + 0.0, update_params=False)
    pd.testing.assert_frame_equal(frame, before)


def test_params_are_stored_unchanged():
    f = TraceForecaster(backbone="x/y", lora_rank=4, dsic_budget=0.25, context_length=64)
    assert f.get_params()["backbone"] == "x/y" and f.dsic_budget == 0.25 and f.lora_rank == 4
