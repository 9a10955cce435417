"""TraceModel and TraceAnomalyScorer in Darts, in the spirit of Darts' own model tests:
tiny configurations, behaviour checked against Darts' contracts."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

darts = pytest.importorskip("darts")

from darts import TimeSeries  # noqa: E402
from darts.ad import QuantileDetector, ThresholdDetector  # noqa: E402
from darts.models import (  # noqa: E402
    NaiveEnsembleModel,
    NaiveSeasonal,
    NLinearModel,
    RegressionEnsembleModel,
)
from pytorch_lightning.callbacks import Callback  # noqa: E402

from trace_forecast.darts import TraceAnomalyScorer, TraceModel  # noqa: E402
from trace_forecast.errors import DataError, SmallUnitsWarning  # noqa: E402

QUIET = {"enable_progress_bar": False, "enable_model_summary": False}
FAST = dict(input_chunk_length=32, output_chunk_length=8, n_epochs=1, batch_size=16, random_state=0,
            dsic_interval=1, dsic_draws=2, pl_trainer_kwargs=QUIET)


def sine(n: int = 240, width: int = 1, phase: float = 0.0, freq: str = "h", start="2020-01-01") -> TimeSeries:
    t = np.arange(n, dtype=np.float32)[:, None]
    values = np.sin(t / 6 + phase + np.arange(width)) * (1 + np.arange(width)) + 0.05 * t / n
    index = pd.date_range(start, periods=n, freq=freq)
    return TimeSeries.from_times_and_values(index, values.astype(np.float32))


@pytest.fixture(scope="module")
def fitted() -> TraceModel:
    model = TraceModel(**FAST)
    model.fit([sine(), sine(phase=1.0)], val_series=[sine(phase=2.0)], verbose=False)
    return model


def test_fit_predict_shape_and_index(fitted):
    series = sine(phase=1.0)
    pred = fitted.predict(n=8, series=series, verbose=False)
    assert pred.n_timesteps == 8 and pred.width == 1
    assert pred.start_time() == series.end_time() + series.freq
    assert np.isfinite(pred.values()).all()


def test_longer_n_is_autoregressive(fitted):
    pred = fitted.predict(n=20, series=sine(), verbose=False)
    assert pred.n_timesteps == 20
    first = fitted.predict(n=8, series=sine(), verbose=False)
    np.testing.assert_allclose(pred.values()[:8], first.values(), rtol=1e-5, atol=1e-5)


def test_unseen_series_list(fitted):
    unseen = [sine(n=100, phase=3.0), sine(n=150, phase=0.5, start="2021-01-01")]
    preds = fitted.predict(n=8, series=unseen, verbose=False)
    assert len(preds) == 2
    for p, s in zip(preds, unseen, strict=True):
        assert p.start_time() == s.end_time() + s.freq


def last_round(model: TraceModel) -> pd.Series:
    """Which modules Gated DSIC's last round kept (the fitted model may still keep the head
    start, with every adapter off, where validation prefers it)."""
    history = model.selection_history()
    return history[history["step"] == history["step"].max()]["kept"]


def test_gated_dsic_ran_inside_darts_trainer(fitted):
    table = fitted.selected_modules()
    n = len(table)
    assert n == fitted.network.backbone.config.n_layers * 7  # q, k, v, o, wi_0, wi_1, wo per block
    assert last_round(fitted).sum() == n // 2  # default budget 0.5
    assert fitted.trainable_parameters() > 0


def test_user_callbacks_compose_with_gated_dsic():
    class Counter(Callback):
        def __init__(self):
            self.steps = 0

        def on_train_batch_end(self, *args):
            self.steps += 1

    counter = Counter()
    model = TraceModel(**{**FAST, "pl_trainer_kwargs": {**QUIET, "callbacks": [counter]}})
    model.fit(sine(), verbose=False)
    assert counter.steps > 0
    assert last_round(model).sum() == len(model.selected_modules()) // 2


def test_user_trainer_gets_gated_dsic():
    import pytorch_lightning as pl

    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)
    model = TraceModel(**FAST)
    model.fit(sine(), trainer=trainer, verbose=False)
    assert last_round(model).sum() == len(model.selected_modules()) // 2


def test_historical_forecasts_equal_stacked_predicts(fitted):
    series = sine(n=120, phase=0.3)
    hist = fitted.historical_forecasts(series, start=80, forecast_horizon=8, stride=8, retrain=False,
                                       last_points_only=False, verbose=False)
    assert len(hist) == 5
    for fc in hist:
        context = series.drop_after(fc.start_time())
        single = fitted.predict(n=8, series=context, verbose=False)
        np.testing.assert_allclose(fc.values(), single.values(), rtol=1e-5, atol=1e-5)
        assert fc.time_index.equals(single.time_index)
    errors = fitted.backtest(series, start=80, forecast_horizon=8, stride=8, retrain=False, verbose=False)
    assert np.isfinite(errors)


def test_multivariate_channels_are_independent():
    series = sine(width=3)
    model = TraceModel(**FAST)
    model.fit(series, verbose=False)
    pred = model.predict(n=8, verbose=False)
    assert pred.width == 3 and list(pred.components) == list(series.components)


def test_reproducible_with_random_state():
    a = TraceModel(**FAST).fit(sine(), verbose=False).predict(n=8, verbose=False)
    b = TraceModel(**FAST).fit(sine(), verbose=False).predict(n=8, verbose=False)
    np.testing.assert_allclose(a.values(), b.values(), rtol=1e-6)


def test_head_starts_from_closed_form(fitted):
    assert bool(fitted.model.head_initialised)
    weight = fitted.network.forecast_head.output_layer.weight.detach()
    persistence = np.zeros_like(weight.numpy())
    persistence[:, -1] = 1.0
    assert np.abs(weight.numpy() - persistence).max() > 0.05


def test_save_load_identical_predictions(fitted, tmp_path):
    path = str(tmp_path / "trace.pt")
    fitted.save(path)
    loaded = TraceModel.load(path)
    series = sine(phase=1.5)
    a = fitted.predict(n=8, series=series, verbose=False)
    b = loaded.predict(n=8, series=series, verbose=False)
    np.testing.assert_allclose(a.values(), b.values(), rtol=1e-6)
    assert loaded.selected_modules()["kept"].tolist() == fitted.selected_modules()["kept"].tolist()


def test_load_from_checkpoint(tmp_path):
    model = TraceModel(**FAST, model_name="trace_ckpt", work_dir=str(tmp_path), save_checkpoints=True,
                       force_reset=True)
    model.fit(sine(), val_series=sine(phase=2.0), verbose=False)
    restored = TraceModel.load_from_checkpoint("trace_ckpt", work_dir=str(tmp_path), best=False)
    series = sine(phase=0.7)
    np.testing.assert_allclose(
        model.predict(n=8, series=series, verbose=False).values(),
        restored.predict(n=8, series=series, verbose=False).values(),
        rtol=1e-6,
    )


def test_load_from_checkpoint_after_a_fit_that_kept_its_closed_form_start(tmp_path):
    """Too few validation windows to show that training helps: the fit keeps the closed-form
    start and runs no epoch, so Lightning wrote no checkpoint and ``load_from_checkpoint``
    found no file; the fitted state is now written as Darts' newest checkpoints."""
    model = TraceModel(**FAST, model_name="short", work_dir=str(tmp_path), save_checkpoints=True, force_reset=True)
    model.fit(sine(n=60), verbose=False)
    series = sine(n=60, phase=0.7)
    expected = model.predict(n=8, series=series, verbose=False).values()
    for best in (False, True):
        restored = TraceModel.load_from_checkpoint("short", work_dir=str(tmp_path), best=best)
        np.testing.assert_allclose(restored.predict(n=8, series=series, verbose=False).values(), expected, rtol=1e-6)


def test_ensembles_with_darts_models():
    series = sine(n=300)
    ensemble = NaiveEnsembleModel([TraceModel(**FAST), NLinearModel(32, 8, n_epochs=1, pl_trainer_kwargs=QUIET)])
    ensemble.fit(series)
    pred = ensemble.predict(n=8, verbose=False)
    assert pred.n_timesteps == 8 and np.isfinite(pred.values()).all()

    regression = RegressionEnsembleModel(
        forecasting_models=[TraceModel(**FAST), NaiveSeasonal(K=24)], regression_train_n_points=24
    )
    regression.fit(series)
    pred = regression.predict(n=8, verbose=False)
    assert pred.n_timesteps == 8
    coefs = regression.ensemble_model.model.coef_
    assert np.abs(np.ravel(coefs)).sum() > 0  # the regressor learned from both models' historical forecasts


@pytest.mark.parametrize("adapter, head", [("lora", "reconstruction"), ("adalora", "reconstruction"), ("none", "linear")])
def test_other_adapter_modes(adapter, head):
    model = TraceModel(**{**FAST, "adapter": adapter, "head": head})
    model.fit(sine(), verbose=False)
    assert model.selected_modules().empty
    assert np.isfinite(model.predict(n=8, verbose=False).values()).all()


def test_variable_length_inputs_are_padded():
    model = TraceModel(**{**FAST, "input_chunk_length": (8, 32)})
    model.fit(sine(), verbose=False)
    pred = model.predict(n=8, series=sine(n=12), verbose=False)
    assert pred.n_timesteps == 8 and np.isfinite(pred.values()).all()


# ---------------------------------------------------------------------- bad input
def test_too_short_series():
    with pytest.raises(DataError, match="too short for one window"):
        TraceModel(**FAST).fit(sine(n=30))


def test_unusable_values_are_rejected():
    values = sine().values().copy()
    values[50] = np.inf
    with pytest.raises(DataError, match="infinite"):
        TraceModel(**FAST).fit(TimeSeries.from_values(values))
    values[:] = np.nan
    with pytest.raises(DataError, match="no observed value"):
        TraceModel(**FAST).fit(TimeSeries.from_values(values))


def test_series_in_tiny_units_get_a_warning_to_scale_them():
    """TraceModel sees Darts' windows, not whole series, so it cannot bring tiny units into
    range as the sktime estimators do; RevIN's absolute floor would flatten them silently."""
    with pytest.warns(SmallUnitsWarning, match="Scaler"):
        TraceModel(**FAST).fit(sine() * 1e-6, verbose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SmallUnitsWarning)
        TraceModel(**FAST).fit(sine(), verbose=False)


def test_output_chunk_length_beyond_head():
    with pytest.raises(ValueError, match="longest direct forecast"):
        TraceModel(input_chunk_length=32, output_chunk_length=1000)


def test_input_chunk_length_beyond_backbone():
    with pytest.raises(ValueError, match="at most its context 512"):
        TraceModel(input_chunk_length=600, output_chunk_length=8)


@pytest.mark.parametrize("kwargs, match", [
    ({"likelihood": object()}, "likelihood"),
    ({"enable_finetuning": {"freeze": ["backbone.*"]}}, "partial freezing is what `adapter` does"),
    ({"adapter": "prefix"}, "adapter must be one of"),
])
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TraceModel(input_chunk_length=32, output_chunk_length=8, **kwargs)


def test_caller_series_not_mutated():
    series = sine()
    before = series.values().copy()
    TraceModel(**FAST).fit(series, verbose=False)
    np.testing.assert_array_equal(series.values(), before)


# ---------------------------------------------------------------------- anomaly scorer
def _spike_data():
    t = np.arange(800, dtype=np.float32)
    rng = np.random.default_rng(0)
    normal = TimeSeries.from_values((np.sin(t / 8) + 0.05 * rng.standard_normal(800)).astype(np.float32))
    values = (np.sin(t / 8) + 0.05 * rng.standard_normal(800)).astype(np.float32)
    values[500] += 4.0
    labels = np.zeros(800, dtype=np.float32)
    labels[500] = 1.0
    return normal, TimeSeries.from_values(values), TimeSeries.from_values(labels)


@pytest.fixture(scope="module")
def scorer_and_data():
    normal, test, labels = _spike_data()
    scorer = TraceAnomalyScorer(context_length=64, max_epochs=1, max_windows=64, random_state=0,
                                dsic_interval=1, dsic_draws=2)
    scorer.fit(normal)
    return scorer, normal, test, labels


def test_scorer_ranks_planted_anomaly_highest(scorer_and_data):
    scorer, normal, test, labels = scorer_and_data
    scores = scorer.score(test)
    assert len(scores) == len(test) and scores.time_index.equals(test.time_index)
    assert abs(int(np.argmax(scores.values())) - 500) < 32   # smoothed: the top is at the spike
    flags = QuantileDetector(high_quantile=0.999).fit(scorer.score(normal)).detect(scores)
    assert flags.values()[500, 0] == 1
    assert ThresholdDetector(high_threshold=float(scores.values()[500, 0]) - 1e-6).detect(scores).values().sum() >= 1
    auc = scorer.eval_metric(labels, test, metric="AUC_ROC")
    assert auc > 0.95
    assert any(row["kept"] for row in scorer.selected_modules_)


def test_scorer_any_length_and_components(scorer_and_data):
    scorer, *_ = scorer_and_data
    short = sine(n=20)
    assert len(scorer.score(short)) == 20
    wide = TraceAnomalyScorer(context_length=32, component_wise=True, adapter="none").fit(sine(n=100, width=2))
    out = wide.score(sine(n=50, width=2))
    assert out.width == 2 and len(out) == 50


def test_scorer_show_anomalies(scorer_and_data):
    import matplotlib

    matplotlib.use("Agg")
    scorer, _, test, labels = scorer_and_data
    scorer.show_anomalies(test, anomalies=labels)


def test_scorer_rejects_infinite_values():
    values = sine().values().copy()
    values[3] = np.inf
    with pytest.raises(DataError, match="infinite"):
        TraceAnomalyScorer(context_length=32, adapter="none").fit(TimeSeries.from_values(values))


@pytest.mark.slow
def test_data_parallel_ranks_agree(tmp_path):
    """Two CPU processes under Darts' trainer with strategy="ddp": Gated DSIC's importance
    and the closed-form head start are all-reduced, so both ranks end with the same
    modules and the same head."""
    import json
    import subprocess
    import sys
    import textwrap

    script = tmp_path / "ddp_darts.py"
    script.write_text(textwrap.dedent(f"""
        import json, sys
        import numpy as np, pandas as pd
        from darts import TimeSeries
        from trace_forecast.darts import TraceModel
        t = np.arange(400, dtype=np.float32)[:, None]
        series = [TimeSeries.from_times_and_values(pd.date_range("2020", periods=400, freq="h"),
                                                   np.sin(t / 6 + p).astype(np.float32)) for p in (0.0, 1.0, 2.0)]
        model = TraceModel(input_chunk_length=32, output_chunk_length=8, n_epochs=1, batch_size=16, random_state=0,
                           dsic_interval=1, dsic_draws=2,
                           pl_trainer_kwargs={{"accelerator": "cpu", "devices": 2, "strategy": "ddp",
                                              "enable_progress_bar": False, "enable_model_summary": False}})
        model.fit(series, verbose=False)
        rank = model.trainer.global_rank
        head = model.network.forecast_head.output_layer.weight.detach().numpy()
        history = model.selection_history()
        out = {{"rank": rank, "kept": history[history["step"] == history["step"].max()]["kept"].tolist(),
               "head": float(np.abs(head).sum()), "strategy": type(model.trainer.strategy).__name__}}
        with open({str(tmp_path)!r} + f"/rank{{rank}}.json", "w") as fh:
            fh.write(json.dumps(out))
        # Results are written; skip interpreter teardown, where gloo's threads can abort the
        # process ("terminate called without an active exception") after a successful run.
        import os
        import torch.distributed as dist
        if dist.is_initialized():
            dist.barrier()  # both ranks have written their results
        os._exit(0)
    """))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=400, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = json.loads((tmp_path / "rank0.json").read_text())
    r1 = json.loads((tmp_path / "rank1.json").read_text())
    assert r0["kept"] == r1["kept"] and sum(r0["kept"]) == len(r0["kept"]) // 2
    assert r0["head"] == pytest.approx(r1["head"], rel=1e-5)
    assert r0["strategy"] == "DDPStrategy"


def test_conformal_naive_model_wraps_trace_model(tiny_backbone_dir):
    """Darts' own conformal wrapper turns a fitted TraceModel into a probabilistic model that
    back-tests with quantile metrics."""
    from darts.metrics import ic
    from darts.models import ConformalNaiveModel

    series = sine(400)
    model = TraceModel(backbone=str(tiny_backbone_dir), **FAST).fit(series[:240], verbose=False)
    conformal = ConformalNaiveModel(model=model, quantiles=[0.1, 0.5, 0.9])
    forecast = conformal.predict(n=8, series=series[:300], num_samples=50, verbose=False)
    assert forecast.n_samples == 50 and (forecast.quantile(0.1).values() <= forecast.quantile(0.9).values()).all()
    hist = conformal.historical_forecasts(series, start=320, forecast_horizon=8, stride=8, last_points_only=False,
                                          num_samples=50, verbose=False)
    scores = conformal.backtest(series, historical_forecasts=hist, metric=ic, metric_kwargs={"q_interval": (0.1, 0.9)})
    assert len(hist) > 0 and np.all(np.isfinite(scores))


# ---------------------------------------------------------------------- probabilistic forecasts
def noisy_sine(n: int, seed: int) -> TimeSeries:
    t = np.arange(n, dtype=np.float32)
    values = np.sin(t / 6) + np.random.default_rng(seed).normal(0, 0.3, n)
    return TimeSeries.from_times_and_values(pd.date_range("2020-01-01", periods=n, freq="h"),
                                            values.astype(np.float32))


@pytest.fixture(scope="module")
def probabilistic() -> TraceModel:
    from darts.utils.likelihood_models.torch import QuantileRegression

    model = TraceModel(**{**FAST, "n_epochs": 2}, likelihood=QuantileRegression([0.1, 0.5, 0.9]))
    return model.fit(noisy_sine(600, seed=0), verbose=False)


def test_quantile_likelihood_gives_ordered_conformal_quantiles_and_samples(probabilistic):
    q = probabilistic.predict(n=8, predict_likelihood_parameters=True, verbose=False)
    assert q.components.tolist() == ["0_q0.100", "0_q0.500", "0_q0.900"]
    lo, mid, hi = q.values().T
    assert (lo < mid).all() and (mid < hi).all()
    offsets = probabilistic.model.interval_offsets
    assert offsets.shape == (3, 8) and (offsets[0] < 0).all() and (offsets[2] > 0).all()
    samples = probabilistic.predict(n=16, num_samples=50, verbose=False)  # 8 at once, then auto-regression
    assert samples.n_samples == 50 and samples.n_timesteps == 16
    assert np.isfinite(samples.all_values()).all()


def test_conformal_quantiles_cover_unseen_data_of_the_same_kind(probabilistic):
    from darts.metrics import mic

    unseen = noisy_sine(400, seed=1)
    forecasts = probabilistic.historical_forecasts(unseen, start=100, forecast_horizon=8, stride=4, retrain=False,
                                                   num_samples=200, verbose=False)
    coverage = float(np.mean(mic(unseen, forecasts, q_interval=(0.1, 0.9))))
    assert 0.65 < coverage < 0.95  # nominal 80 %


def test_quantile_offsets_are_saved_and_loaded(probabilistic, tmp_path):
    probabilistic.save(str(tmp_path / "model.pt"))
    loaded = TraceModel.load(str(tmp_path / "model.pt"))
    np.testing.assert_allclose(loaded.model.interval_offsets.numpy(), probabilistic.model.interval_offsets.numpy())
    q = probabilistic.predict(n=8, predict_likelihood_parameters=True, verbose=False)
    np.testing.assert_allclose(loaded.predict(n=8, predict_likelihood_parameters=True, verbose=False).values(),
                               q.values(), rtol=1e-5, atol=1e-5)



def test_zero_shot_model_gives_conformal_quantiles_too():
    from darts.utils.likelihood_models.torch import QuantileRegression

    model = TraceModel(input_chunk_length=32, output_chunk_length=8, enable_finetuning=False,
                       likelihood=QuantileRegression([0.05, 0.5, 0.95]), pl_trainer_kwargs=QUIET)
    model.fit(noisy_sine(300, seed=2), verbose=False)
    offsets = model.model.interval_offsets
    assert (offsets[0] < 0).all() and (offsets[2] > 0).all()  # calibrated although nothing trained


def test_probabilistic_models_ensemble_with_samples(probabilistic, tmp_path):
    probabilistic.save(str(tmp_path / "member.pt"))
    other = TraceModel.load(str(tmp_path / "member.pt"))
    ensemble = NaiveEnsembleModel([probabilistic, other], train_forecasting_models=False)
    forecast = ensemble.predict(n=8, series=noisy_sine(600, seed=0), num_samples=40, verbose=False)
    assert forecast.n_samples == 40 and np.isfinite(forecast.all_values()).all()


def test_glitches_in_the_series_do_not_derail_a_fit(monkeypatch):
    """A -9999 placeholder in the training series is a missing value to the context and to the
    target (:mod:`trace_forecast.backbone.glitches`), as in the sktime front end."""
    import trace_forecast.backbone.glitches as glitches

    values = sine(240).values().copy()
    values[[50, 120, 170, 215]] = -9999.0
    bad = TimeSeries.from_times_and_values(sine(240).time_index, values)
    clean = TraceModel(**FAST).fit(sine(240), verbose=False).predict(n=8, verbose=False).values()
    fitted = TraceModel(**FAST).fit(bad, verbose=False).predict(n=8, verbose=False).values()
    monkeypatch.setattr(glitches, "GLITCH_SIGMAS", float("inf"))
    off = TraceModel(**FAST).fit(bad, verbose=False).predict(n=8, verbose=False).values()
    assert np.abs(fitted - clean).max() < 0.2 < np.abs(off - clean).max()
