"""Missing values (NaN) through the model's own mask, in the backbone, the losses, the
sktime estimators and Darts (``docs/user_guide.md``, "Missing values")."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import seasonal_series, tiny_forecaster

from trace_forecast import TraceAnomalyDetector
from trace_forecast.backbone import shared_backbone
from trace_forecast.backbone.missing import bridge_short_gaps, fill_for_encoder
from trace_forecast.engine.windows import make_window_sets
from trace_forecast.errors import DataError, UncalibratedIntervalsWarning
from trace_forecast.losses import normalized_mse

NAN = float("nan")


# --------------------------------------------------------------------------- the backbone
def test_short_gaps_are_bridged_and_long_ones_left_to_the_mask_token():
    x = torch.tensor([[NAN, 1.0, 2.0, NAN, 4.0, NAN, NAN, 7.0, NAN, NAN, NAN, 11.0]])
    values, present, _ = bridge_short_gaps(x, torch.isfinite(x), max_gap=2)
    assert values.tolist() == [[1.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 0.0, 0.0, 0.0, 11.0]]
    assert present.tolist() == [[True] * 8 + [False] * 3 + [True]]
    filled, present, visible, _ = fill_for_encoder(x.reshape(1, 1, 12)[..., :8].repeat(1, 1, 2), patch_len=4, max_gap=0)
    assert not visible.any(), "with max_gap=0 every patch with a missing step is hidden"


def test_encoder_sees_a_bridged_gap_as_the_filled_series(tiny_backbone_dir):
    backbone = shared_backbone(str(tiny_backbone_dir)).eval()
    x = torch.sin(torch.arange(64.0) / 5).reshape(1, 1, 64)
    gappy = x.clone()
    gappy[..., 20] = NAN
    filled = x.clone()
    filled[..., 20] = (x[..., 19] + x[..., 21]) / 2
    with torch.no_grad():
        assert torch.allclose(backbone.encode(gappy).tokens, backbone.encode(filled).tokens, atol=1e-6)


def test_a_long_gap_is_hidden_behind_the_mask_token(tiny_backbone_dir):
    backbone = shared_backbone(str(tiny_backbone_dir)).eval()
    x = torch.sin(torch.arange(64.0) / 5).reshape(1, 1, 64)
    gappy = x.clone()
    gappy[..., 16:32] = NAN  # two whole patches
    shown = torch.ones(1, 64)
    shown[:, 16:32] = 0
    observed = torch.ones(1, 64)
    observed[:, 16:32] = 0
    with torch.no_grad():
        masked = backbone.encode(gappy)
        # the same as hiding those patches of the complete series, with statistics over the rest
        reference = backbone.encode(torch.where(torch.isfinite(gappy), x, 0.0), None, shown)
    assert torch.allclose(masked.tokens, reference.tokens, atol=1e-6)
    assert torch.isfinite(masked.tokens).all()


def test_gaps_beside_the_padding_and_before_the_hidden_future(tiny_backbone_dir):
    """The left padding is no gap's neighbour: a gap after it takes the first observed value.
    Before the forecast's hidden future (the placeholder zeros are no neighbours either), one
    missing step takes the last observed value, and a longer gap is what the model
    reconstructs with that patch hidden, as pretraining taught it."""
    from trace_forecast.heads.reconstruction import extend_with_hidden_future

    backbone = shared_backbone(str(tiny_backbone_dir)).eval()
    x = 5 + torch.sin(torch.arange(64.0) / 5).reshape(1, 1, 64)
    padded = torch.ones(1, 64)
    padded[:, :8] = 0  # one patch of left padding
    gappy, carried = x.clone(), x.clone()
    gappy[..., [8, 9]] = NAN  # the first two observed steps
    carried[..., [8, 9]] = x[..., 10]
    with torch.no_grad():
        first = [backbone.encode(*extend_with_hidden_future(v, padded, 16)) for v in (gappy, carried)]
    assert torch.allclose(first[0].tokens, first[1].tokens, atol=1e-6)

    gappy, carried = x.clone(), x.clone()
    gappy[..., -1] = NAN  # one missing last step: the last observed value
    carried[..., -1] = x[..., -2]
    with torch.no_grad():
        last = [backbone.encode(*extend_with_hidden_future(v, padded, 16)) for v in (gappy, carried)]
    assert torch.allclose(last[0].tokens, last[1].tokens, atol=1e-6)

    gappy = x.clone()
    gappy[..., -3:] = NAN  # the last three steps: the model's
    x_ext, observed, shown = extend_with_hidden_future(gappy, padded, 16)
    hide_last = shown.clone()
    hide_last[:, 64 - 16 - 8 : 64 - 16] = 0  # their patch, beside the hidden future
    with torch.no_grad():
        reconstructed = backbone.reconstruct(torch.nan_to_num(x_ext), observed, hide_last)
        filled_ext = torch.where(torch.isfinite(x_ext), x_ext, reconstructed)
        model, reference = backbone.encode(x_ext, observed, shown), backbone.encode(filled_ext, observed, shown)
    assert torch.allclose(model.tokens, reference.tokens, atol=1e-5)
    assert torch.allclose(model.mean, reference.mean) and torch.allclose(model.std, reference.std)


def test_a_missing_last_value_leaves_the_forecast_where_it_was():
    """A not-yet-reported last value: the embedded backbone's forecast past it stays close to
    its forecast of the same months from the series without it (it was dragged towards zero,
    to about half the series' level, before)."""
    from sktime.datasets import load_airline

    from trace_forecast import TraceForecaster

    y = load_airline()
    gappy = pd.concat([y, pd.Series([NAN], index=pd.PeriodIndex(["1961-01"], freq="M"))])
    plain = TraceForecaster(fit_strategy="zero-shot").fit(y, fh=[2, 3]).predict().to_numpy()
    after_gap = TraceForecaster(fit_strategy="zero-shot").fit(gappy, fh=[1, 2]).predict().to_numpy()
    np.testing.assert_allclose(after_gap, plain, rtol=0.05)


def test_missing_targets_are_not_scored_and_gradients_stay_finite():
    pred = torch.zeros(2, 1, 4, requires_grad=True)
    y = torch.tensor([[[1.0, NAN, 1.0, NAN]], [[1.0, 1.0, NAN, 1.0]]])
    mean, std = torch.zeros(2, 1, 1), torch.ones(2, 1, 1)
    loss = normalized_mse(pred, y, mean, std)
    loss.backward()
    assert loss.item() == pytest.approx(1.0)
    assert torch.isfinite(pred.grad).all()
    assert (pred.grad[torch.isnan(y)] == 0).all()


def test_windows_need_observed_context_and_targets():
    series = np.arange(200, dtype=np.float32)
    series[100:150] = np.nan
    sets = make_window_sets([series], 32, 8, 8, 0.2, 1, None, 0)
    for plan in (sets.train.plan, sets.val.plan):
        for _, origin in plan.origins:
            assert np.isfinite(series[max(0, origin - 32):origin]).sum() >= 8
            assert np.isfinite(series[origin:origin + 8]).any()
    with pytest.raises(DataError, match="no observed value"):
        make_window_sets([np.full(100, np.nan, np.float32)], 32, 8, 8, 0.2, 1, None, 0)


# --------------------------------------------------------------------------- sktime
def _gappy(n: int = 300, seed: int = 0) -> pd.DataFrame:
    y = pd.DataFrame({"a": seasonal_series(n, seed=seed), "b": seasonal_series(n, seed=seed + 1, phase=1.0)})
    rng = np.random.default_rng(seed)
    y = y.mask(rng.random(y.shape) < 0.1)
    y.iloc[120:150, 0] = np.nan  # a run longer than a patch
    return y


def test_forecaster_fits_predicts_and_calibrates_with_missing_values(tiny_backbone_dir):
    y = _gappy()
    original = y.copy()
    f = tiny_forecaster(tiny_backbone_dir).fit(y, fh=[1, 2, 3])
    pred = f.predict()
    intervals = f.predict_interval(coverage=0.8)
    pd.testing.assert_frame_equal(y, original)  # the caller's data untouched
    assert np.isfinite(pred.to_numpy()).all() and np.isfinite(intervals.to_numpy()).all()
    assert (intervals.xs("lower", axis=1, level=2).to_numpy() <= intervals.xs("upper", axis=1, level=2).to_numpy()).all()
    again = tiny_forecaster(tiny_backbone_dir).fit(y, fh=[1, 2, 3]).predict()
    pd.testing.assert_frame_equal(pred, again)  # reproducible with a seed
    later = _gappy(320).iloc[300:]
    f.update(later, update_params=False)
    assert np.isfinite(f.predict().to_numpy()).all()


def test_forecaster_names_the_column_with_nothing_observed(tiny_backbone_dir):
    y = _gappy()
    y["b"] = np.nan
    with pytest.raises(DataError, match="'b'"):
        tiny_forecaster(tiny_backbone_dir).fit(y, fh=[1])
    y = _gappy()
    y.iloc[-64:, 1] = np.nan  # the whole last context of "b"
    f = tiny_forecaster(tiny_backbone_dir, max_windows=16)
    with pytest.warns(UncalibratedIntervalsWarning), pytest.raises(DataError, match="'b' has no observed value in its last 64 steps"):
        f.fit(y, fh=[1]).predict()


def test_detector_scores_every_step_and_never_flags_a_gap(tiny_backbone_dir):
    t = np.arange(600)
    x = pd.DataFrame({"v": np.sin(2 * np.pi * t / 24) + 0.3 * np.random.default_rng(0).normal(size=600)})
    x.iloc[300:340, 0] = np.nan
    x.iloc[[100, 101, 450]] = np.nan
    d = TraceAnomalyDetector(backbone=str(tiny_backbone_dir), context_length=64, max_epochs=1, max_windows=32,
                             random_state=0).fit(x.iloc[:250])
    scores = d.transform_scores(x)
    assert len(scores) == len(x) and np.isfinite(scores.to_numpy()).all()
    flags = d.transform(x).to_numpy().ravel().astype(bool)
    assert not flags[300:340].any(), "a gap is never an anomaly by itself"


# --------------------------------------------------------------------------- Darts
def test_darts_model_fits_and_backtests_with_missing_values(tiny_backbone_dir):
    darts = pytest.importorskip("darts")
    from trace_forecast.darts import TraceModel

    series = darts.TimeSeries.from_dataframe(_gappy().astype(np.float32))
    model = TraceModel(backbone=str(tiny_backbone_dir), input_chunk_length=32, output_chunk_length=8, n_epochs=1,
                       batch_size=16, random_state=0,
                       pl_trainer_kwargs={"enable_progress_bar": False, "enable_model_summary": False})
    model.fit(series)
    assert np.isfinite(model.predict(8, series).values()).all()
    backtest = model.historical_forecasts(series, start=0.8, forecast_horizon=8, retrain=False)
    assert np.isfinite(backtest.values()).all()


def test_darts_scorer_scores_a_gappy_series(tiny_backbone_dir):
    darts = pytest.importorskip("darts")
    from trace_forecast.darts import TraceAnomalyScorer

    t = np.arange(300, dtype=np.float32)
    values = np.sin(t / 6)
    values[100:130] = np.nan
    series = darts.TimeSeries.from_values(values)
    scorer = TraceAnomalyScorer(backbone=str(tiny_backbone_dir), context_length=32, adapter="none").fit(series)
    scores = scorer.score(series).values()
    assert len(scores) == 300 and np.isfinite(scores).all()
