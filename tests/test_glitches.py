"""Glitches (a spike of 1e4, a -9999 placeholder) in a forecasting context are read as missing
steps, so one bad value does not become the window's whole RevIN scale; a glitch in a training
target is a missing target. Anomaly scores still see every value."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import seasonal_series

import trace_forecast.backbone.glitches as glitches
from trace_forecast import TraceAnomalyDetector, TraceForecaster
from trace_forecast.backbone.glitches import glitch_steps, target_without_glitches, without_glitches


def _window(n: int = 256, seed: int = 0) -> torch.Tensor:
    t = torch.arange(n, dtype=torch.float32)
    noise = torch.randn(n, generator=torch.Generator().manual_seed(seed))
    return (10 + 3 * torch.sin(2 * torch.pi * t / 24) + 0.5 * noise)[None, None, :]


def _flags(x: torch.Tensor, max_run: int = 7) -> list[int]:
    return torch.nonzero(glitch_steps(x, torch.ones(x.shape[0], x.shape[-1]), max_run)[0, 0]).ravel().tolist()


def test_isolated_extremes_are_glitches_and_nothing_else_is():
    x = _window()
    assert _flags(x) == []                                       # ordinary noise and season: none
    spiked = x.clone()
    spiked[..., 100] = 1e4
    spiked[..., 150:152] = -9999.0
    assert _flags(spiked) == [100, 150, 151]
    run = x.clone()
    run[..., 100:108] = 1e4                                      # a patch long: a regime, not an error
    assert _flags(run) == []
    last = x.clone()
    last[..., -3:] = 1e4                                         # at the end too, until it lasts a patch
    assert _flags(last) == [253, 254, 255]
    last[..., -8:] = 1e4
    assert _flags(last) == []
    moderate = x.clone()
    moderate[..., 100] = 40.0                                    # about 10 robust sd: a real value
    assert _flags(moderate) == []
    intermittent = torch.zeros(1, 1, 256)
    intermittent[..., ::40] = 500.0                              # MAD 0: no robust scale, kept
    assert _flags(intermittent) == []
    padded = spiked.clone()
    mask = torch.ones(1, 256)
    mask[:, :120] = 0                                            # padding is not looked at
    assert torch.nonzero(glitch_steps(padded, mask, 7)[0, 0]).ravel().tolist() == [150, 151]
    assert without_glitches(x, torch.ones(1, 256), 8) is x


def test_a_glitch_in_the_target_is_a_missing_target():
    x = _window(200)
    y = _window(256)[..., 200:]
    assert target_without_glitches(x, torch.ones(1, 200), y, 8) is y
    bad = y.clone()
    bad[..., 10] = -9999.0
    clean = target_without_glitches(x, torch.ones(1, 200), bad, 8)
    assert torch.isnan(clean[..., 10]).all() and torch.equal(clean[..., 11:], y[..., 11:])


def test_the_loss_leaves_a_glitch_target_out(tiny_backbone_dir):
    from trace_forecast.backbone import load_backbone
    from trace_forecast.network import NetworkSpec, build_network

    network = build_network(load_backbone(tiny_backbone_dir), NetworkSpec(context_length=64, horizon=12), seed=0)
    x, mask = _window(76)[..., :64], torch.ones(1, 64)
    y = _window(76)[..., 64:]
    glitched, missing = y.clone(), y.clone()
    glitched[..., 5], missing[..., 5] = -9999.0, torch.nan
    with torch.no_grad():
        assert torch.equal(network.forecast_loss(x, mask, glitched), network.forecast_loss(x, mask, missing))
        assert network.forecast_loss(x, mask, glitched) < 10 * network.forecast_loss(x, mask, y)


def test_a_glitch_in_the_context_is_read_as_missing(tiny_backbone_dir, monkeypatch):
    """Zero-shot on a context holding a -9999 forecasts as the context with that step
    interpolated does; read as a value, it moved the forecast by about the whole signal."""
    y = seasonal_series(300)
    glitched, bridged = y.copy(), y.copy()
    glitched.iloc[-20] = -9999.0
    bridged.iloc[-20] = (y.iloc[-21] + y.iloc[-19]) / 2
    params = {"backbone": str(tiny_backbone_dir), "context_length": 64, "fit_strategy": "zero-shot"}
    expected = TraceForecaster(**params).fit(bridged, fh=[1, 2, 3]).predict()
    got = TraceForecaster(**params).fit(glitched, fh=[1, 2, 3]).predict()
    np.testing.assert_allclose(got, expected, rtol=1e-4)
    assert glitched.iloc[-20] == -9999.0                         # the caller's data untouched
    monkeypatch.setattr(glitches, "GLITCH_SIGMAS", float("inf"))  # the rule off: read as a value
    off = TraceForecaster(**params).fit(glitched, fh=[1, 2, 3]).predict()
    assert np.abs(off - expected).max() > 1.0


def test_glitches_in_the_training_data_do_not_derail_a_fine_tune(tiny_backbone_dir, monkeypatch):
    y = seasonal_series(400)
    bad = y.copy()
    bad.iloc[[60, 130, 190, 250, 290, 330]] = -9999.0
    params = {"backbone": str(tiny_backbone_dir), "context_length": 64, "max_epochs": 1, "max_windows": 64,
              "random_state": 0}
    clean = TraceForecaster(**params).fit(y, fh=[1, 2, 3]).predict()
    fitted = TraceForecaster(**params).fit(bad, fh=[1, 2, 3]).predict()
    assert np.abs(fitted - clean).max() < 1.0                   # the signal's amplitude is 3
    monkeypatch.setattr(glitches, "GLITCH_SIGMAS", float("inf"))
    off = TraceForecaster(**params).fit(bad, fh=[1, 2, 3]).predict()
    assert np.abs(off - clean).max() > 2 * np.abs(fitted - clean).max()


@pytest.mark.parametrize("value", [1e4, -9999.0])
def test_anomaly_scores_still_see_a_glitch(tiny_backbone_dir, value):
    y = seasonal_series(400)
    y.iloc[300] = value
    detector = TraceAnomalyDetector(backbone=str(tiny_backbone_dir), context_length=64, max_epochs=1,
                                    max_windows=32, random_state=0).fit(y.iloc[:200])
    scores = detector.transform_scores(y)
    assert abs(int(np.argmax(np.asarray(scores).ravel())) - 300) <= 8


def test_a_glitch_target_does_not_set_the_variances(tiny_backbone_dir):
    """Calibration residuals skip glitch targets: read as values, two 1e5 among the validation
    windows' targets set predict_var by themselves."""
    y = seasonal_series(400)
    params = {"backbone": str(tiny_backbone_dir), "context_length": 64, "max_epochs": 1, "max_windows": 64,
              "random_state": 0}
    clean = TraceForecaster(**params).fit(y, fh=[1, 2, 3]).predict_var().to_numpy()
    bad = y.copy()
    bad.iloc[[350, 380]] = 1e5
    glitched = TraceForecaster(**params).fit(bad, fh=[1, 2, 3]).predict_var().to_numpy()
    assert glitched.max() < 3 * clean.max()
