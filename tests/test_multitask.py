"""Multi-task TRACE: the joint objective, and one fitted model used for both tasks in
sktime (forecaster <-> detector) and Darts (model -> scorer)."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import torch

from trace_forecast import TraceAnomalyDetector, TraceForecaster
from trace_forecast.errors import ParameterError, UncalibratedIntervalsWarning

FAST = {"context_length": 32, "max_epochs": 1, "max_windows": 32, "batch_size": 16, "random_state": 0}


@pytest.fixture(scope="module")
def series() -> pd.DataFrame:
    t = np.arange(600)
    rng = np.random.default_rng(0)
    return pd.DataFrame({"x": np.sin(t / 6) + 0.1 * rng.standard_normal(600)})


@pytest.fixture(scope="module")
def joint_forecaster(series, tiny_backbone_dir) -> TraceForecaster:
    return TraceForecaster(backbone=str(tiny_backbone_dir), multitask=True, **FAST).fit(series, fh=np.arange(1, 9))


def _adapter_tensors(network) -> dict[str, torch.Tensor]:
    """LoRA factors, gates and head: what training can change (kept or pruned)."""
    return {n: p.detach().clone() for n, p in network.named_parameters() if "lora" in n or "head" in n}


def test_multitask_changes_what_is_trained(series, tiny_backbone_dir):
    """The reconstruction term is in the loss: same seed, same data, different weights;
    the single-task loss has no such term. (Without validation windows, so that both fits
    end with their trained state rather than the better of it and their start.)"""
    with pytest.warns(UncalibratedIntervalsWarning, match="nothing is held out"):
        fits = [TraceForecaster(backbone=str(tiny_backbone_dir), multitask=joint, validation_fraction=0.0,
                                **FAST).fit(series, fh=np.arange(1, 9)) for joint in (False, True)]
    a, b = (_adapter_tensors(f.network_) for f in fits)
    assert a.keys() == b.keys()
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_reconstruction_weight_only_counts_with_multitask(series, tiny_backbone_dir):
    """``reconstruction_weight`` is the weight of the multi-task term: without
    ``multitask`` it is ignored and the fit is the single-task one."""
    plain = TraceForecaster(backbone=str(tiny_backbone_dir), **FAST).fit(series, fh=np.arange(1, 9))
    weighted = TraceForecaster(backbone=str(tiny_backbone_dir), reconstruction_weight=5.0, **FAST).fit(
        series, fh=np.arange(1, 9))
    np.testing.assert_array_equal(plain.predict().to_numpy(), weighted.predict().to_numpy())


def test_forecaster_to_detector_scores_without_training(series, joint_forecaster):
    detector = joint_forecaster.to_detector(score_window=1)
    assert isinstance(detector, TraceAnomalyDetector) and detector.is_fitted
    assert detector.get_params()["score_window"] == 1
    for name, p in joint_forecaster.network_.named_parameters():   # the same weights, copied
        torch.testing.assert_close(dict(detector.network_.named_parameters())[name], p)
    x = series.copy()
    x.iloc[400] += 6.0
    scores = detector.transform_scores(x)["scores"].to_numpy()
    assert len(scores) == len(x)
    assert abs(int(np.argmax(scores)) - 400) <= 8
    assert 400 in detector.predict(x).to_numpy()


def test_detector_to_forecaster_round_trip(joint_forecaster):
    """forecaster -> detector -> forecaster forecasts exactly as the original, with the
    same intervals."""
    again = joint_forecaster.to_detector().to_forecaster()
    pd.testing.assert_frame_equal(again.predict(), joint_forecaster.predict())
    pd.testing.assert_frame_equal(again.predict_interval(coverage=0.8), joint_forecaster.predict_interval(coverage=0.8))


def test_multitask_detector_forecasts(series, tiny_backbone_dir):
    detector = TraceAnomalyDetector(backbone=str(tiny_backbone_dir), multitask=True, forecast_horizon=6, **FAST)
    detector.fit(series)
    forecaster = detector.to_forecaster()
    pred = forecaster.predict(fh=np.arange(1, 7))
    assert pred.shape == (6, 1) and np.isfinite(pred.to_numpy()).all()
    assert pred.index[0] == series.index[-1] + 1
    assert forecaster.predict_interval(coverage=0.9).shape == (6, 2)
    # pickling keeps the forecasting head, the calibration and the history
    restored = pickle.loads(pickle.dumps(detector))
    pd.testing.assert_frame_equal(restored.to_forecaster().predict(fh=np.arange(1, 7)), pred)
    np.testing.assert_allclose(restored.transform_scores(series), detector.transform_scores(series))


def test_single_task_detector_says_what_is_missing(series, tiny_backbone_dir):
    detector = TraceAnomalyDetector(backbone=str(tiny_backbone_dir), **FAST).fit(series)
    with pytest.raises(ValueError, match="no forecasting head.*multitask=True and forecast_horizon"):
        detector.to_forecaster()
    with pytest.raises(ParameterError, match="forecast_horizon"):
        TraceAnomalyDetector(backbone=str(tiny_backbone_dir), multitask=True, **FAST).fit(series)


def test_to_detector_needs_one_series_for_panels(series, tiny_backbone_dir):
    panel = pd.concat({"a": series, "b": series * 2.0}, names=["id", "t"])
    forecaster = TraceForecaster(backbone=str(tiny_backbone_dir), **FAST).fit(panel, fh=np.arange(1, 5))
    with pytest.raises(Exception, match="panel: pass one of its series as X"):
        forecaster.to_detector()
    scores = forecaster.to_detector(X=series).transform_scores(series)
    assert len(scores) == len(series)


def test_darts_model_to_anomaly_scorer(series, tiny_backbone_dir, tmp_path):
    from darts import TimeSeries

    from trace_forecast.darts import TraceAnomalyScorer, TraceModel

    ts = TimeSeries.from_values(series["x"].to_numpy(np.float32))
    model = TraceModel(input_chunk_length=32, output_chunk_length=8, backbone=str(tiny_backbone_dir), n_epochs=1,
                       max_windows=32, batch_size=16, multitask=True, random_state=0)
    model.fit(ts, verbose=False)
    scorer = model.to_anomaly_scorer(score_window=1)
    assert isinstance(scorer, TraceAnomalyScorer)
    values = ts.values().copy()
    values[400] += 6.0
    scores = scorer.score(TimeSeries.from_values(values)).values()[:, 0]
    assert abs(int(np.argmax(scores)) - 400) <= 8
    model.save(str(tmp_path / "model.pt"))
    loaded = TraceModel.load(str(tmp_path / "model.pt"))
    again = loaded.to_anomaly_scorer(score_window=1).score(TimeSeries.from_values(values)).values()[:, 0]
    np.testing.assert_allclose(again, scores, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="fit the model"):
        TraceModel(input_chunk_length=32, output_chunk_length=8).to_anomaly_scorer(ts)
