"""Anomaly scores: every step scored from reconstructions that hid it, the same scores
from both front ends, thresholds that leave normal data alone, segments."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from darts import TimeSeries

from trace_forecast import TraceAnomalyDetector
from trace_forecast.backbone import load_backbone
from trace_forecast.darts import TraceAnomalyScorer
from trace_forecast.metrics import segments
from trace_forecast.network import NetworkSpec, build_network, scheme_patch_mask
from trace_forecast.tasks.scoring import (
    SCORES,
    ErrorScale,
    hidden_patches,
    smooth_errors,
    step_errors,
    tail_threshold,
    window_masks,
)


@pytest.mark.parametrize("scheme", ["block", "interleaved"])
@pytest.mark.parametrize("n_patches", [3, 8, 64])
def test_complementary_masks_hide_every_patch_exactly_once(scheme, n_patches):
    hide = hidden_patches(scheme, n_patches, 4)
    assert (hide.sum(axis=0) == 1).all()


@pytest.mark.parametrize("score", list(SCORES))
@pytest.mark.parametrize("observed", [1, 2, 5, 64])
def test_window_masks_leave_padding_alone_and_one_patch_visible(score, observed):
    scheme, n_masks = SCORES[score]
    used, hide = window_masks(scheme, 64, n_masks, observed)
    assert not hide[:, : 64 - observed].any()                  # padding is never "hidden"
    if used != "none":
        assert (hide[:, 64 - observed :].sum(axis=1) < observed).all()   # something stays visible
        assert hide[:, 64 - observed :].any(axis=0).all() or used == "tail"


def test_training_masks_come_from_the_score_family():
    input_mask = torch.ones(200, 64)
    input_mask[:100, :40] = 0                                   # left padding in half the rows
    gen = torch.Generator().manual_seed(0)
    for scheme, n_masks in [("block", 4), ("interleaved", 4), ("tail", 16)]:
        shown = scheme_patch_mask(input_mask, 8, scheme, n_masks, gen)
        hidden = (1 - shown).view(200, 8, 8)[..., 0]
        assert ((1 - shown) * (1 - input_mask)).sum() == 0     # never hides padding
        assert (hidden.sum(-1) < (input_mask.view(200, 8, 8)[..., 0]).sum(-1)).all()   # one stays visible
        if scheme == "block":                                   # one contiguous run per row
            runs = (torch.diff(hidden, dim=-1, prepend=torch.zeros(200, 1)) == 1).sum(-1)
            assert (runs <= 1).all()


@pytest.fixture(scope="module")
def network(tiny_backbone_dir):
    return build_network(load_backbone(str(tiny_backbone_dir)), NetworkSpec(task="reconstruction", context_length=64,
                                                                          adapter="none"), seed=0).eval()


@pytest.mark.parametrize("scheme", ["block", "interleaved", "tail"])
def test_a_step_is_scored_without_seeing_it(network, scheme):
    """The reconstruction that scores a step does not depend on the step's value: the
    error of a spike grows exactly with the spike."""
    x = np.sin(np.arange(300) / 5).astype(np.float32)
    n_masks = SCORES[{"block": "block", "interleaved": "interleaved", "tail": "forecast"}[scheme]][1]
    base = step_errors(network, x, scheme, n_masks, stride=64)          # stride = context: one window per step
    y = x.copy()
    y[150] += 50.0
    spiked = step_errors(network, y, scheme, n_masks, stride=64)
    # The reconstruction at 150 is unchanged, so the error moves by the spike: |e' - 50| <= e.
    assert abs(spiked[150] - 50.0) <= base[150] + 1e-3


def test_unmasked_reconstruction_sees_the_step(network):
    x = np.sin(np.arange(300) / 5).astype(np.float32)
    y = x.copy()
    y[150] += 50.0
    assert step_errors(network, y, "none", 1, stride=64)[150] < 49.0      # partly copied


def test_scores_stream_with_bounded_batches(network):
    x = np.sin(np.arange(5000) / 5).astype(np.float32)
    small = step_errors(network, x, "block", 4, stride=16, batch_size=8)
    large = step_errors(network, x, "block", 4, stride=16, batch_size=1024)
    np.testing.assert_allclose(small, large, rtol=1e-4, atol=1e-5)


def test_smoothing_keeps_the_peak_on_the_anomaly():
    e = np.ones((1000, 1))
    e[600:605] = 20.0
    s = smooth_errors(e, 128)[:, 0]
    assert 600 - 16 <= int(np.argmax(s)) < 605 + 16        # within half the averaging span
    assert s[540] > 1.5 and s[400] == pytest.approx(1.01)


def test_error_scale_makes_channels_comparable():
    rng = np.random.default_rng(0)
    train = np.stack([rng.gamma(2, 1, 5000), 1000 * rng.gamma(2, 1, 5000)], axis=1)
    z = ErrorScale.fit([train], edge=64).standardise(train)
    np.testing.assert_allclose(np.median(z[64:-64], axis=0), 0, atol=1e-9)
    assert abs(np.percentile(z[:, 0], 99) - np.percentile(z[:, 1], 99)) < 0.3


def test_series_ends_are_standardised_against_training_ends():
    """Larger errors at a series' ends (fewer windows, one-sided context) in training
    mean the same errors at the ends of a new series are not anomalous."""
    rng = np.random.default_rng(0)
    train = rng.gamma(2, 1, (2000, 1))
    train[:64] *= 3
    train[-64:] *= 3
    scale = ErrorScale.fit([train], edge=64)
    test = rng.gamma(2, 1, (1000, 1))
    test[:64] *= 3
    z = scale.standardise(test)[:, 0]
    assert abs(np.median(z[:64]) - np.median(z[64:-64])) < 0.3


def test_tail_threshold_is_beyond_normal_scores_and_tracks_risk():
    rng = np.random.default_rng(0)
    train = rng.exponential(size=20_000)                 # a long tail the fit extrapolates
    strict, loose = tail_threshold(train, 1e-9), tail_threshold(train, 1e-2)
    assert strict > loose >= 1.25 * train.max()          # never below the training margin
    assert (rng.exponential(size=20_000) > loose).mean() < 1e-3
    assert tail_threshold(np.zeros(100), 1e-4) > 0        # constant training scores


def test_segments():
    assert segments(np.array([0, 1, 1, 0, 0, 1, 0, 1], bool)) == [(1, 3), (5, 6), (7, 8)]
    assert segments(np.zeros(4, bool)) == []


def _periodic(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return np.sin(2 * np.pi * t / 50) + 0.1 * rng.standard_normal(n)


@pytest.mark.slow
def test_default_threshold_flags_nothing_on_normal_data_and_finds_the_anomaly():
    """The embedded backbone at its defaults: ten fresh normal series flag nothing; one
    planted anomaly comes back as one segment that contains it."""
    detector = TraceAnomalyDetector(random_state=0).fit(pd.DataFrame({"x": _periodic(1500, 0)}))
    for seed in range(3, 13):
        assert len(detector.predict(pd.DataFrame({"x": _periodic(3000, seed)}))) == 0, seed
    normal = pd.DataFrame({"x": _periodic(3000, 1)})
    empty = detector.predict_anomaly_segments(normal)
    assert list(empty.columns) == ["ilocs", "score", "component"] and len(empty) == 0
    x = _periodic(3000, 2)
    x[2000:2020] += 1.5
    found = detector.predict_anomaly_segments(pd.DataFrame({"x": x}))
    assert len(found) == 1
    interval = found["ilocs"].iloc[0]
    assert interval.left <= 2000 and interval.right >= 2020 and interval.length < 300
    parts = detector.score_components(pd.DataFrame({"x": x}))
    assert list(parts.columns) == ["reconstruction, 8-step span", "reconstruction, 128-step span", "discord",
                                   "shape discord"]
    peak = int(interval.left) + int(np.argmax(parts.max(axis=1).to_numpy()[int(interval.left):int(interval.right)]))
    assert found["component"].iloc[0] == parts.iloc[peak].idxmax()
    np.testing.assert_allclose(parts.max(axis=1), detector.transform_scores(pd.DataFrame({"x": x}))["scores"])


def test_sktime_detector_and_darts_scorer_give_identical_scores(tiny_backbone_dir):
    settings = {"backbone": str(tiny_backbone_dir), "context_length": 64, "max_epochs": 1, "max_windows": 64,
                "batch_size": 16, "random_state": 0, "dsic_interval": 2, "dsic_draws": 2, "score_window": 32}
    train = np.stack([_periodic(600, 0), 3 * _periodic(600, 3)], axis=1).astype(np.float32)
    test = np.stack([_periodic(400, 1), 3 * _periodic(400, 4)], axis=1).astype(np.float32)
    test[200:205, 1] += 5.0
    detector = TraceAnomalyDetector(**settings).fit(pd.DataFrame(train, columns=["a", "b"]))
    scorer = TraceAnomalyScorer(**settings).fit(TimeSeries.from_values(train))
    sktime_scores = detector.transform_scores(pd.DataFrame(test, columns=["a", "b"]))["scores"].to_numpy()
    darts_scores = scorer.score(TimeSeries.from_values(test)).values()[:, 0]
    np.testing.assert_allclose(sktime_scores, darts_scores, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(detector.train_scores_, scorer.train_scores_, rtol=1e-5, atol=1e-6)
    sktime_parts = detector.score_components(pd.DataFrame(test, columns=["a", "b"]))
    darts_parts = scorer.score_components(TimeSeries.from_values(test))
    assert list(darts_parts.components) == list(sktime_parts.columns) == [
        "reconstruction, 2-step span", "reconstruction, 32-step span", "discord", "shape discord"]
    np.testing.assert_allclose(darts_parts.values(), sktime_parts.to_numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(darts_parts.values().max(axis=1), darts_scores, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="components"):
        scorer.score_components(TimeSeries.from_values(test[:, :1]))


@pytest.mark.parametrize("smoothing", ["two-span", "max", "multi-scale"])
def test_labels_cover_the_steps_whose_own_evidence_crosses_the_threshold(smoothing):
    """A maximum filter spreads a one-step spike's score over its whole span (ranking metrics
    reward that); the flags stay within the moving average under it (a quarter of the span,
    centred), and the contamination rule flags its share."""
    from trace_forecast.tasks.anomaly import ScoreSettings, calibrate_errors

    rng = np.random.default_rng(0)
    scoring = ScoreSettings("block", 8, 128, smoothing=smoothing)
    calibration = calibrate_errors([np.abs(rng.standard_normal((4000, 1)))], [], 64, scoring)
    errors = np.abs(rng.standard_normal((2000, 1)))
    errors[1000] = 40.0
    steps = scoring.from_errors(calibration, errors)
    for name, part in steps.parts.items():
        assert (steps.evidence[name] <= part + 1e-12).all(), name
    threshold = tail_threshold(calibration.train_scores, 1e-4)
    flagged, above = np.flatnonzero(steps.flags(threshold)), np.flatnonzero(steps.scores() > threshold)
    assert 1000 in flagged and set(flagged) <= set(above)
    if smoothing == "multi-scale":  # moving averages only: nothing to undo
        np.testing.assert_array_equal(flagged, above)
    else:
        assert (np.abs(flagged - 1000) <= 128 // 8).all() and np.ptp(above) >= 128
    assert steps.flags(None, contamination=0.05).sum() == pytest.approx(100, abs=2)
