"""The reconstruction head reads what the backbone predicts for hidden future patches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trace_forecast.backbone import load_backbone
from trace_forecast.errors import ParameterError
from trace_forecast.heads import extend_with_hidden_future, resolve_future_patches
from trace_forecast.heads.reconstruction import MAX_FUTURE_PATCHES
from trace_forecast.heads.ridge import ridge_solve, ridge_statistics
from trace_forecast.network import NetworkSpec, build_network
from trace_forecast.parameters import validate


@pytest.fixture(scope="module")
def backbone(tiny_backbone_dir):
    return load_backbone(tiny_backbone_dir)


def test_auto_future_patches_cover_the_horizon_within_limits():
    assert resolve_future_patches("auto", 96, 512) == 12
    assert resolve_future_patches("auto", 20, 512) == 3  # ceil(20 / 8)
    assert resolve_future_patches("auto", 720, 512) == MAX_FUTURE_PATCHES  # per pass; rolled out beyond
    assert resolve_future_patches("auto", 96, 64) == 4  # at most half the context's patches
    assert resolve_future_patches(0, 96, 512) == 0
    with pytest.raises(ParameterError, match="future_patches must be in"):
        resolve_future_patches(64, 96, 512)  # no history left
    with pytest.raises(ParameterError, match="future_patches"):
        validate({"future_patches": -1})
    with pytest.raises(ParameterError, match="future_patches"):
        validate({"future_patches": "all"})


def test_extension_drops_the_oldest_steps_and_hides_the_new_ones():
    x = torch.arange(32, dtype=torch.float32).reshape(1, 1, 32)
    input_mask = torch.cat([torch.zeros(1, 8), torch.ones(1, 24)], dim=1)  # one patch of padding
    x_ext, observed, shown = extend_with_hidden_future(x, input_mask, 16)
    assert torch.equal(x_ext[0, 0, :16], x[0, 0, 16:]) and (x_ext[0, 0, 16:] == 0).all()
    assert observed[0].tolist() == [1.0] * 32  # padding shifted out, future counts as observed
    assert shown[0].tolist() == [1.0] * 16 + [0.0] * 16


def test_prediction_depends_on_history_only(backbone):
    """What sits in the hidden positions never reaches the forecast: the backbone predicts them."""
    spec = NetworkSpec(horizon=16, context_length=64, adapter="none", future_patches=2)
    net = build_network(backbone, spec, seed=0).eval()
    x = torch.randn(3, 1, 64)
    mask = torch.ones(3, 64)
    feats, mean, std = net.forecast_features(x, mask)
    assert feats.shape == (3, 1, 64 + 16)  # dropped history + reconstruction of the shifted context
    # RevIN statistics come from the visible history: the same as those of the last 48 steps.
    assert torch.allclose(mean, x[..., 16:].mean(-1, keepdim=True), atol=1e-5)
    # The oldest 16 steps enter only the dropped-history part, normalised.
    assert torch.allclose(feats[..., :16], ((x[..., :16] - mean) / std).clamp(-10, 10), atol=1e-4)
    with torch.no_grad():
        pred = net(x, mask)
    assert pred.shape == (3, 1, 16) and torch.isfinite(pred).all()


def test_persistence_start_repeats_the_last_observed_value(backbone):
    """Before any training the head copies the last observed step, not a predicted one."""
    spec = NetworkSpec(horizon=8, context_length=64, adapter="none", future_patches=2)
    head = build_network(backbone, spec, seed=0).forecast_head
    weight = head.temporal.weight
    assert weight.shape == (8, 80)
    assert torch.all(weight[:, 63] > 0.9) and torch.all(weight[:, 64:].abs() < 0.1)


def test_ridge_start_solves_the_head_on_the_same_features(backbone):
    """The closed-form start fits exactly what the forward pass computes (the extension too)."""
    spec = NetworkSpec(horizon=8, context_length=64, adapter="none", future_patches=1)
    net = build_network(backbone, spec, seed=0)
    g = torch.Generator().manual_seed(0)
    t = torch.arange(72, dtype=torch.float32)
    series = torch.sin(2 * torch.pi * t / 12)[None, :] + 0.05 * torch.randn(64, 72, generator=g)
    x, y = series[:, None, :64], series[:, None, 64:]
    mask = torch.ones(64, 64)
    with torch.no_grad():
        before = float(net.forecast_loss(x, mask, y))
    ridge_solve(net, ridge_statistics(net, [(x, mask, y)]), alpha=1e-6)
    with torch.no_grad():
        after = float(net.forecast_loss(x, mask, y))
    assert after < 0.1 * before


def test_both_settings_train_through_the_forecaster():
    import numpy as np
    import pandas as pd

    from trace_forecast import TraceForecaster

    t = np.arange(400)
    y = pd.DataFrame({"y": np.sin(2 * np.pi * t / 24) + 0.01 * t})
    for future_patches in (0, "auto"):
        f = TraceForecaster(context_length=128, future_patches=future_patches, max_windows=64, random_state=0)
        pred = f.fit(y, fh=np.arange(1, 13)).predict()
        assert pred.shape == (12, 1) and np.isfinite(pred.to_numpy()).all()
        assert f.future_patches == future_patches  # stored unchanged


def test_prior_weight_reads_the_backbones_prediction(backbone):
    """The zero-shot map: step h reads the backbone's prediction of future step h (rolled out
    past one pass of 2 patches); with no hidden patches, the last observed value."""
    head = build_network(backbone, NetworkSpec(horizon=20, context_length=64, adapter="none", future_patches=2),
                         seed=0).forecast_head
    prior = head.prior_weight()
    assert prior.shape == (20, 88) and torch.equal(prior.sum(1), torch.ones(20))  # 64 + 3 patches predicted
    assert prior.argmax(1).tolist() == [64 + h for h in range(20)]
    features, _, _ = build_network(backbone, NetworkSpec(horizon=20, context_length=64, adapter="none",
                                                         future_patches=2), seed=0).forecast_features(
        torch.randn(2, 1, 64), torch.ones(2, 64))
    assert torch.equal(features[:, 0] @ prior.T, features[:, 0, 64:84])
    plain = build_network(backbone, NetworkSpec(horizon=4, context_length=64, adapter="none", future_patches=0),
                          seed=0).forecast_head.prior_weight()
    assert plain.argmax(1).tolist() == [63] * 4


def test_long_horizons_roll_out_pass_after_pass(backbone):
    """Past one pass the predicted patches join the context and the backbone predicts the
    next ones: the second pass equals a pass over the context extended by the first."""
    net = build_network(backbone, NetworkSpec(horizon=24, context_length=64, adapter="none", future_patches=2),
                        seed=0).eval()
    one_pass = build_network(backbone, NetworkSpec(horizon=16, context_length=64, adapter="none",
                                                   future_patches=2), seed=0).eval()
    x = torch.randn(3, 1, 64).cumsum(-1)
    mask = torch.ones(3, 64)
    with torch.no_grad():
        feats, mean, std = net.forecast_features(x, mask)
        first, mean1, std1 = one_pass.forecast_features(x, mask)
        assert feats.shape == (3, 1, 64 + 24) and torch.equal(feats[..., :80], first)  # the first pass is unchanged
        predicted = first[..., 64:80] * std1 + mean1  # the first pass's 16 steps in the input's scale
        extended = torch.cat([x[..., 16:], predicted], dim=-1)  # the context a second pass sees
        last_patch = build_network(backbone, NetworkSpec(horizon=8, context_length=64, adapter="none",
                                                         future_patches=1), seed=0).eval()
        second, mean2, std2 = last_patch.forecast_features(extended, mask)  # the one patch still needed
        expected = ((second[..., 64:72] * std2 + mean2) - mean) / std  # in the first pass's space
    assert torch.allclose(feats[..., 80:], expected, atol=1e-4)


def _stats(x: torch.Tensor, y: torch.Tensor):
    from trace_forecast.heads.ridge import RidgeStatistics

    xb = torch.cat([x, torch.ones(len(x), 1)], 1).double()
    return RidgeStatistics(xb.T @ xb, xb.T @ y.double(), (y.double() ** 2).sum(0))


def test_ridge_solution_matches_a_direct_solve_and_shrinks_toward_its_target():
    from trace_forecast.heads.ridge import ridge_solution, squared_error

    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 6, generator=g)
    true = torch.randn(3, 6, generator=g)
    y = x @ true.T + 0.5 + 0.01 * torch.randn(200, 3, generator=g)
    weight, bias = ridge_solution(_stats(x, y), alpha=1e-9)
    assert torch.allclose(weight.float(), true, atol=5e-3) and torch.allclose(bias.float(), torch.full((3,), 0.5), atol=5e-3)
    assert squared_error(_stats(x, y), weight, bias) < 2e-4
    # A huge penalty returns the target itself (the bias is never shrunk).
    target = torch.randn(3, 6, generator=g)
    heavy, _ = ridge_solution(_stats(x, y), target, alpha=1e9)
    assert torch.allclose(heavy.float(), target, atol=1e-5)
    assert ridge_solution(_stats(x, y), None, alpha=1e9)[0].abs().max() < 1e-5


def test_validation_windows_choose_the_blend_with_the_zero_shot_map_then_join_the_solve(backbone):
    """Few noisy training windows: where the zero-shot map predicts the later windows, the
    start is that map (blend 0); where the later windows say otherwise, the fitted map."""
    from trace_forecast.heads.ridge import HeadStart, RidgeStatistics, ridge_solve, squared_error

    spec = NetworkSpec(horizon=4, context_length=64, adapter="none", future_patches=0)
    net = build_network(backbone, spec, seed=0)
    n = net.forecast_head.output_layer.in_features
    g = torch.Generator().manual_seed(0)
    x_train, x_val = torch.randn(6, n, generator=g), torch.randn(40, n, generator=g)
    prior = net.forecast_head.prior_weight()
    good = lambda x: x @ prior.T  # noqa: E731 - targets the prior predicts exactly
    train = _stats(x_train, good(x_train) + 0.3 * torch.randn(6, 4, generator=g))
    kept = ridge_solve(net, train, validation=_stats(x_val, good(x_val)))
    assert kept.blend == 0.0 and kept.validation_error == kept.zero_shot_error == pytest.approx(0.0, abs=1e-9)
    away = ridge_solve(net, train, validation=_stats(x_val, torch.zeros(40, 4)))
    assert away.blend == 1.0 and away.validation_error < away.zero_shot_error
    assert ridge_solve(net, train) == HeadStart(1.0, 1.0)  # no validation: the fitted map, default penalty
    # Joined solve: the validation windows count (here they alone carry the signal).
    val = _stats(x_val, 0.5 * x_val[:, :4])
    layer = net.forecast_head.output_layer
    ridge_solve(net, _stats(x_train, torch.zeros(6, 4)), alpha=1e-3, validation=val)
    joined = squared_error(val, layer.weight.detach().double(), layer.bias.detach().double())
    ridge_solve(net, _stats(x_train, torch.zeros(6, 4)), alpha=1e-3)
    alone = squared_error(val, layer.weight.detach().double(), layer.bias.detach().double())
    assert joined < 0.5 * alone
    assert isinstance(val, RidgeStatistics)


def test_windows_that_prefer_the_last_value_mix_it_into_the_prior(backbone):
    """A random walk's best forecast is its last value, which neither the zero-shot map nor a
    ridge fit on few windows gives: where the windows (training and validation: neither map
    is fitted on them) prefer it, the prior the fit blends with mixes in the persistence map
    (here all of it); where they do not, the share stays 0 and the start is exactly the one
    chosen before."""
    from trace_forecast.heads.ridge import ridge_solve

    spec = NetworkSpec(horizon=4, context_length=64, adapter="none", future_patches=1)
    net = build_network(backbone, spec, seed=0)
    head = net.forecast_head
    persistence, prior = head.persistence_weight(), head.prior_weight()
    assert not torch.equal(persistence, prior) and (persistence.sum(dim=1) == 1).all()
    n = head.output_layer.in_features
    g = torch.Generator().manual_seed(0)
    x_train, x_val = torch.randn(6, n, generator=g), torch.randn(40, n, generator=g)
    noise = 0.3 * torch.randn(6, 4, generator=g)
    last = lambda x: x @ persistence.T  # noqa: E731 - targets: the last observed value
    chosen = ridge_solve(net, _stats(x_train, last(x_train) + noise), validation=_stats(x_val, last(x_val)))
    assert chosen.persistence == 1.0 and chosen.validation_error == pytest.approx(0.0, abs=1e-9)
    assert chosen.validation_error < chosen.zero_shot_error
    layer = head.output_layer
    assert torch.allclose(layer.weight.detach(), persistence) and not layer.bias.any()
    zero = lambda x: x @ prior.T  # noqa: E731 - targets: the zero-shot forecast
    kept = ridge_solve(net, _stats(x_train, zero(x_train) + noise), validation=_stats(x_val, zero(x_val)))
    assert (kept.blend, kept.persistence) == (0.0, 0.0)
    assert torch.equal(layer.weight.detach(), prior)


def test_the_last_value_share_reads_windows_whose_context_is_like_the_forecasts(backbone):
    """On a short series the first windows see a few steps, where the zero-shot map is at its
    worst: judged on them the last value wins, judged on the windows that see about as much
    as the forecast will, it does not. Those (``like_the_forecast``) choose its share."""
    from trace_forecast.heads.ridge import ridge_solve

    net = build_network(backbone, NetworkSpec(horizon=4, context_length=64, adapter="none", future_patches=1),
                        seed=0)
    head = net.forecast_head
    persistence, prior = head.persistence_weight(), head.prior_weight()
    n = head.output_layer.in_features
    g = torch.Generator().manual_seed(0)
    x_short, x_like, x_val = (torch.randn(k, n, generator=g) for k in (40, 30, 4))
    last = lambda x: x @ persistence.T  # noqa: E731
    zero = lambda x: x @ prior.T  # noqa: E731
    every = _stats(torch.cat([x_short, x_like]), torch.cat([last(x_short), zero(x_like)]))
    validation = _stats(x_val, zero(x_val))  # 4 windows: too few to choose the blend
    assert ridge_solve(net, every, validation=validation).persistence > 0.0
    alike = ridge_solve(net, every, validation=validation, like_the_forecast=_stats(x_like, zero(x_like)))
    assert (alike.blend, alike.persistence) == (0.0, 0.0)
    assert torch.equal(head.output_layer.weight.detach(), prior)


def test_windows_like_the_forecast_see_at_least_half_its_context():
    """A forecast from a series' end reads ``min(L, length)`` steps; windows with half of that
    or more are like it. Series longer than the context give full windows: all of them."""
    from trace_forecast.engine.windows import like_the_forecast, plan_windows

    train, _ = plan_windows([74], horizon=10, min_context=8, context_length=512)
    alike = train.origins[like_the_forecast(train, [74], 512)]
    assert alike[:, 1].min() == 37 and alike[:, 1].max() == train.origins[:, 1].max()
    long, _ = plan_windows([900, 74], horizon=10, min_context=8, context_length=64)
    both = like_the_forecast(long, [900, 74], 64)
    assert both[long.origins[:, 0] == 0].all()
    assert long.origins[both & (long.origins[:, 0] == 1), 1].min() == 32
    full, _ = plan_windows([900], horizon=10, min_context=8, context_length=64)
    assert like_the_forecast(full, [900], 64).all()


def test_a_short_series_fit_hands_the_head_start_its_windows_like_the_forecast(backbone, monkeypatch):
    """The forecasting task passes the windows like the forecast only where they are not all
    of the training windows (a series shorter than its context)."""
    from trace_forecast.engine import TrainSettings
    from trace_forecast.tasks import forecast

    seen = []
    original = forecast.ClosedFormHeadStart

    def capture(*args, **kwargs):
        seen.append((args[0], kwargs.get("like_the_forecast")))
        return original(*args, **kwargs)

    monkeypatch.setattr(forecast, "ClosedFormHeadStart", capture)
    spec = lambda: NetworkSpec(horizon=4, context_length=64, adapter="none", future_patches=1)  # noqa: E731
    settings = TrainSettings(max_epochs=1, batch_size=16, random_state=0)
    series = np.sin(np.arange(60) / 3.0).astype(np.float32)
    forecast.fit_forecast([series], backbone, spec(), settings)
    forecast.fit_forecast([np.tile(series, 3)], backbone, spec(), settings)
    (windows, short), (_, full) = seen
    assert short is not None and 0 < len(short) < len(windows)
    assert np.minimum(windows.plan.origins[short, 1], 64).min() >= 30
    assert full is None


def test_windows_like_the_forecast_are_summed_once_with_the_rest(backbone, monkeypatch):
    """The head start sums the windows like the forecast and the rest apart and adds them:
    the same sums as one pass over every window, each window's features computed once."""
    from types import SimpleNamespace

    from trace_forecast.engine.recipe import ClosedFormHeadStart
    from trace_forecast.engine.windows import WindowDataset, like_the_forecast, plan_windows

    net = build_network(backbone, NetworkSpec(horizon=4, context_length=64, adapter="none", future_patches=1),
                        seed=0)
    series = [np.sin(np.arange(60) / 3.0).astype(np.float32)]
    train, _ = plan_windows([60], horizon=4, min_context=8, context_length=64)
    dataset = WindowDataset(series, train, 64, 4)
    alike = np.flatnonzero(like_the_forecast(train, [60], 64))
    assert 0 < len(alike) < len(dataset)
    module = SimpleNamespace(device=torch.device("cpu"), network=net)
    whole, none = ClosedFormHeadStart(dataset)._training_statistics(None, module, net)
    calls, features = [], net.forecast_features
    monkeypatch.setattr(net, "forecast_features", lambda *args: calls.append(len(args[0])) or features(*args))
    split, part = ClosedFormHeadStart(dataset, like_the_forecast=alike)._training_statistics(None, module, net)
    assert sum(calls) == len(dataset)
    assert none is None and part.windows == len(alike)
    for weighting, stats in whole.items():
        for a, b in zip(split[weighting].tensors(), stats.tensors(), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
    with pytest.raises(ValueError, match="positions"):
        ClosedFormHeadStart(like_the_forecast=alike)


def test_weighted_statistics_ignore_constant_windows(backbone):
    """A window whose context is constant (RevIN divides by almost zero) gets next to no
    weight (1e-8 of an ordinary window's): adding one with absurd normalised targets changes
    nothing that matters."""
    from trace_forecast.heads.ridge import ridge_statistics

    net = build_network(backbone, NetworkSpec(horizon=4, context_length=64, adapter="none", future_patches=0),
                        seed=0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 1, 64, generator=g)
    y = torch.randn(8, 1, 4, generator=g)
    scale = torch.ones(8)
    base = ridge_statistics(net, [(x, torch.ones(8, 64), y, scale)])
    flat_x = torch.cat([x, torch.full((1, 1, 64), 3.0)])
    flat_y = torch.cat([y, torch.full((1, 1, 4), 3.5)])  # 0.5 above a constant: +50,000 "standard deviations"
    with_flat = ridge_statistics(net, [(flat_x, torch.ones(9, 64), flat_y, torch.ones(9))])
    assert with_flat.windows == 9 and base.windows == 8
    assert torch.allclose(with_flat.xtx, base.xtx, atol=1e-5) and torch.allclose(with_flat.xty, base.xty, atol=1e-5)
    units = ridge_statistics(net, [(flat_x, torch.ones(9, 64), flat_y, torch.ones(9))], ("fit", "series units"))
    assert set(units) == {"fit", "series units"} and units["series units"].windows == 9


def test_penalty_ignores_inputs_that_are_padding_in_every_window():
    """Zero columns (left padding of a short series) do not weaken the penalty."""
    from trace_forecast.heads.ridge import penalty_scale

    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 4, generator=g)
    padded = torch.cat([torch.zeros(50, 60), x], dim=1)
    y = torch.randn(50, 2, generator=g)
    assert torch.allclose(penalty_scale(_stats(padded, y)), penalty_scale(_stats(x, y)))



def test_too_few_validation_windows_keep_the_zero_shot_map(backbone):
    """Choosing among penalties and blends on a handful of windows would fit noise: below
    MIN_VALIDATION_WINDOWS the start is the zero-shot map itself."""
    from trace_forecast.heads.ridge import MIN_VALIDATION_WINDOWS, ridge_solve

    net = build_network(backbone, NetworkSpec(horizon=4, context_length=64, adapter="none", future_patches=1),
                        seed=0)
    n = net.forecast_head.output_layer.in_features
    g = torch.Generator().manual_seed(0)
    x = torch.randn(MIN_VALIDATION_WINDOWS - 1, n, generator=g)
    choice = ridge_solve(net, None, validation=_stats(x, torch.randn(len(x), 4, generator=g)))
    assert (choice.blend, choice.validation_windows) == (0.0, MIN_VALIDATION_WINDOWS - 1)
    layer = net.forecast_head.output_layer
    assert torch.equal(layer.weight.detach(), net.forecast_head.prior_weight()) and not layer.bias.any()


def test_too_few_validation_windows_still_let_the_training_windows_choose_the_last_value(backbone):
    """Too few validation windows choose no penalty or blend, but the last value's share
    needs no validation: neither map is fitted, so the training windows are evidence."""
    from trace_forecast.heads.ridge import MIN_VALIDATION_WINDOWS, ridge_solve

    net = build_network(backbone, NetworkSpec(horizon=4, context_length=64, adapter="none", future_patches=1),
                        seed=0)
    head = net.forecast_head
    persistence = head.persistence_weight()
    n = head.output_layer.in_features
    g = torch.Generator().manual_seed(0)
    x_train, x_val = torch.randn(40, n, generator=g), torch.randn(MIN_VALIDATION_WINDOWS - 1, n, generator=g)
    choice = ridge_solve(net, _stats(x_train, x_train @ persistence.T),
                         validation=_stats(x_val, torch.randn(len(x_val), 4, generator=g)))
    assert (choice.blend, choice.persistence, choice.validation_windows) == (0.0, 1.0, MIN_VALIDATION_WINDOWS - 1)
    layer = head.output_layer
    assert torch.equal(layer.weight.detach(), persistence) and not layer.bias.any()


def test_a_short_history_is_read_through_its_mask_only(backbone):
    """A history shorter than the context is left-padded with input_mask = 0: what lies
    behind the mask never reaches the forecast, rolled out or not, and the RevIN statistics
    are those of the history alone (the unpadded reference)."""
    net = build_network(backbone, NetworkSpec(horizon=24, context_length=64, adapter="none", future_patches=2),
                        seed=0).eval()
    history = torch.randn(2, 40).cumsum(-1) + 5.0
    mask = torch.cat([torch.zeros(2, 24), torch.ones(2, 40)], dim=1)
    padded = torch.cat([torch.zeros(2, 24), history], dim=1)[:, None, :]
    garbage = torch.cat([torch.full((2, 24), 1e4), history], dim=1)[:, None, :]
    with torch.no_grad():
        a, mean, std = net.forecast_normalized(padded, mask)
        b, _, _ = net.forecast_normalized(garbage, mask)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(mean[:, 0, 0], history.mean(-1))
    torch.testing.assert_close(std[:, 0, 0], history.std(-1, unbiased=False) + 1e-5)


def test_validation_chooses_how_the_fit_weighs_windows():
    """Given the sums of both weightings, the one whose solution fits the validation
    windows better is chosen, and the refit uses it."""
    from trace_forecast.heads.ridge import choose_head_start

    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 5, generator=g)
    true = torch.randn(2, 5, generator=g)
    right, wrong = _stats(x, x @ true.T), _stats(x, -(x @ true.T))
    x_val = torch.randn(50, 5, generator=g)
    validation = _stats(x_val, x_val @ true.T)
    assert choose_head_start({"fit": wrong, "series units": right}, validation, None).weighting == "series units"
    assert choose_head_start({"fit": right, "series units": wrong}, validation, None).weighting == "fit"


def test_sign_symmetric_head_averages_and_can_train_on_one_sign_per_window(backbone, monkeypatch):
    """Evaluated, the features are the average of those of x and, negated back, of -x. Training
    with ``SIGN_SYMMETRIC_TRAINING = "sampled"`` reads one of the two per window (one pass)."""
    from dataclasses import replace

    from trace_forecast.heads import reconstruction

    spec = NetworkSpec(horizon=16, context_length=64, adapter="none", future_patches=2)
    plain = build_network(backbone, spec, seed=0).eval()
    symmetric = build_network(backbone, replace(spec, sign_symmetric=True), seed=0).eval()
    x, mask = torch.randn(8, 1, 64), torch.ones(8, 64)
    with torch.no_grad():
        up, mean, std = plain.forecast_features(x, mask)
        down, _, _ = plain.forecast_features(-x, mask)
        both, sym_mean, sym_std = symmetric.forecast_features(x, mask)
        torch.testing.assert_close(both, (up - down) / 2)
        torch.testing.assert_close((sym_mean, sym_std), (mean, std))
        monkeypatch.setattr(reconstruction, "SIGN_SYMMETRIC_TRAINING", "sampled")
        torch.manual_seed(0)
        one, one_mean, one_std = symmetric.train().forecast_features(x, mask)
    picked_up = torch.isclose(one, up, atol=1e-5).flatten(1).all(1)
    picked_down = torch.isclose(one, -down, atol=1e-5).flatten(1).all(1)
    assert (picked_up | picked_down).all() and picked_up.any() and picked_down.any()
    torch.testing.assert_close((one_mean, one_std), (mean, std))
