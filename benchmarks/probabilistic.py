"""Prediction intervals out of sample, against classical and Darts peers in the same run:
empirical coverage, interval score / MSIS and CRPS.

**ETTh1** (all 7 channels, train-standardised, H = 24): every method is fitted on the
training and validation months; then the cutoff walks through the test months, one
origin a day (every test value is forecast), with ``update(..., update_params=False)``
where the method has it, as sktime's ``evaluate`` does without refitting.

- ``TRACE``: the default ``TraceForecaster`` (normalised split-conformal, calibrated online
  as each update completes windows; ``docs/design.md``);
- ``TRACE, fit-time residuals only``: the same fitted model with its pool frozen at fit;
- ``TRACE (Darts, QuantileRegression)``: ``TraceModel(likelihood=QuantileRegression(...))``,
  quantiles from its validation windows, ``historical_forecasts`` without retraining;
- ``AutoETS``: sktime's ``AutoETS(auto=True, additive_only=True, sp=24)`` chosen and
  fitted per channel; its own intervals, from its statsmodels model filtering every value
  up to each origin with the fitted parameters (``ets_walk``: sktime's AutoETS keeps
  forecasting from the end of the fit on ``update(update_params=False)``);
- ``Theta + ConformalIntervals``: sktime's ``ConformalIntervals`` around
  ``ThetaForecaster(sp=24)`` (additive deseasonalisation: the data are standardised and
  negative), calibrated on 200 refits spread over the fitting rows (``sample_frac``);
  Theta is refitted at each origin (``theta_walk``, for the same reason), the conformal
  residuals stay those of the fit;
- ``NLinear + ConformalNaiveModel``: Darts ``NLinearModel`` (the long-horizon benchmark's
  configuration, input 512) wrapped in Darts' ``ConformalNaiveModel`` (calibration on its
  own historical forecasts of the last 1,024 origins before each forecast);
- ``seasonal naive (24), empirical quantiles`` of its own 24-step errors on the fitting rows.

**M4 Hourly** (414 series, H = 48, the competition's interval protocol): 95 % intervals
scored with MSIS (the interval score over each series' in-sample seasonal naive error,
seasonality 24, averaged over series), coverage at 80 / 95 %, against seasonal naive with
each series' own empirical error quantiles, Theta + ConformalIntervals per series (20
refits per series) and NLinear + ConformalNaiveModel (one global model on the series
standardised by their own mean and std, calibrated on each series' last 192 origins).
AutoETS is not run on M4: its seasonal search on 414 series takes over 10 minutes.

**Small-data suite** (``benchmarks.small_data``'s series and folds: sktime ``evaluate``
protocol, 4 expanding-window folds, a season ahead): coverage at 80 / 95 % and the
interval score scaled by each series' in-sample seasonal naive error (MSIS-style; naive's
when a fold has under two seasons), per
series and averaged (a fold where a method fails is counted and left out), for TRACE,
AutoETS (additive models only: with this statsmodels, the
simulated intervals of multiplicative models fail in sktime's adapter), Theta +
ConformalIntervals and seasonal naive.

Scores: coverage (share of actual values inside the interval), the interval score
(Gneiting & Raftery: width + 2/alpha x the miss distance, averaged over steps) and CRPS
approximated from the 19 quantiles 5 %, 10 %, ..., 95 % (mean pinball loss x 2).

``python -m benchmarks.probabilistic [--suite etth1 m4 small_data]`` writes the suites' rows
into ``benchmarks/results/probabilistic.json`` and ``docs/benchmarks_probabilistic.md``
(``--report``: the page from the file alone).
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd

from benchmarks.harness import DOCS, Record, environment, main

HORIZON, PERIOD = 24, 24
COVERAGES = (0.5, 0.8, 0.95)
QUANTILES = tuple(float(q) for q in np.round(np.arange(0.05, 0.96, 0.05), 2))

Quantiles = dict[float, np.ndarray]  # level -> forecasts, the same shape as the actual values


def interval_score(y: np.ndarray, lo: np.ndarray, hi: np.ndarray, coverage: float) -> float:
    alpha = 1 - coverage
    return float(np.mean((hi - lo) + 2 / alpha * (lo - y) * (y < lo) + 2 / alpha * (y - hi) * (y > hi)))


def crps_from_quantiles(y: np.ndarray, q: Quantiles) -> float:
    """2 x the mean pinball loss over the quantile levels (a Riemann approximation of CRPS)."""
    losses = [np.mean(np.maximum(a * (y - v), (a - 1) * (y - v))) for a, v in q.items()]
    return float(2 * np.mean(losses))


def bounds(coverage: float) -> tuple[float, float]:
    return round((1 - coverage) / 2, 3), round((1 + coverage) / 2, 3)


def levels() -> list[float]:
    return sorted({b for c in COVERAGES for b in bounds(c)} | set(QUANTILES))


def scores(y: np.ndarray, q: Quantiles) -> dict[str, float]:
    """Coverage and interval score at each level, and CRPS, from quantile forecasts."""
    out = {}
    for c in COVERAGES:
        lo, hi = (q[b] for b in bounds(c))
        out[f"coverage_{int(c * 100)}"] = float(np.mean((y >= lo) & (y <= hi)))
        out[f"interval_score_{int(c * 100)}"] = interval_score(y, lo, hi, c)
    out["crps"] = crps_from_quantiles(y, {a: q[a] for a in QUANTILES})
    return out


def msis(history: np.ndarray, y: np.ndarray, lo: np.ndarray, hi: np.ndarray, m: int = 24, a: float = 0.05) -> float:
    """M4's mean scaled interval score of one series."""
    return interval_score(y, lo, hi, 1 - a) / float(np.mean(np.abs(history[m:] - history[:-m])))


# ---------------------------------------------------------------------- sktime forecasters, walked forward
def walk_forward(forecaster, test: pd.DataFrame, origins: list[int], horizon: int = HORIZON,
                 update_params: bool = False) -> Quantiles:
    """Quantiles ``{level: [origins, channels, H]}`` of a fitted sktime forecaster at each
    origin of ``test``, updating it (without refitting, by default) as the cutoff moves."""
    out = {a: [] for a in levels()}
    seen = 0
    fh = np.arange(1, horizon + 1)
    for origin in origins:
        if origin > seen:
            forecaster.update(test.iloc[seen:origin], update_params=update_params)
            seen = origin
        q = forecaster.predict_quantiles(fh=fh, alpha=levels())
        for a in levels():
            out[a].append(q.xs(a, axis=1, level=1).to_numpy().T)
    return {a: np.stack(v) for a, v in out.items()}


def seasonal_naive_quantiles(fit: np.ndarray, full: np.ndarray, starts: list[int], horizon: int,
                             period: int) -> Quantiles:
    """Seasonal naive forecasts at ``starts`` (positions in ``full`` ``[T, C]``) plus the
    empirical quantiles of its own ``horizon``-step errors on ``fit`` ``[T0, C]``:
    ``{level: [origins, channels, H]}``."""
    steps = np.arange(horizon)
    if len(fit) < period + horizon:
        raise ValueError(f"seasonal naive needs {period + horizon} values for one {horizon}-step error, got {len(fit)}")
    errors = np.stack([fit[t + steps] - fit[t - period + steps % period]
                       for t in range(period, len(fit) - horizon + 1)])  # [n, H, C]
    point = np.stack([full[s - period + steps % period].T for s in starts])  # [O, C, H]
    return {a: point + np.quantile(errors, a, axis=0).T[None] for a in levels()}


# ---------------------------------------------------------------------- ETTh1
def etth1(seed: int, record: Record, methods: list[str] | None = None) -> None:
    from benchmarks.long_horizon import fit_rows, load_split
    from trace_forecast import TraceForecaster

    split = load_split("ETTh1")
    rows, val_share = fit_rows(split)
    rows = rows.reset_index(drop=True)
    test = split.test.iloc[512:].reset_index(drop=True)
    test.index = test.index + len(rows)
    origins = list(range(0, len(test) - HORIZON + 1, PERIOD))
    actual = np.stack([test.iloc[o : o + HORIZON].to_numpy().T for o in origins])  # [O, C, H]
    suite_protocol(record, "etth1", dataset="ETTh1", horizon=HORIZON, origins=len(origins),
                   channels=actual.shape[1], stride=PERIOD, seed=seed)

    def wanted(name: str) -> bool:
        return not methods or name in methods

    def add(name: str, q: Quantiles, seconds: float) -> None:
        record.add({"suite": "etth1", "method": name, **scores(actual, q), "seconds": round(seconds, 1)})

    fh = np.arange(1, HORIZON + 1)
    for name, frozen in (("TRACE", False), ("TRACE, fit-time residuals only", True)):
        if not wanted(name):
            continue
        start = time.perf_counter()
        forecaster = TraceForecaster(validation_fraction=val_share, random_state=seed).fit(rows, fh=fh)
        if frozen:
            forecaster._calibrate_online = lambda series: None  # the pool keeps the fit-time residuals
        add(name, walk_forward(forecaster, test, origins), time.perf_counter() - start)

    full = pd.concat([rows, test]).to_numpy()
    peers = {
        "TRACE (Darts, QuantileRegression)": lambda: darts_trace_quantiles(rows, test, origins, val_share, seed),
        "AutoETS": lambda: ets_walk(rows, test, origins),
        "Theta + ConformalIntervals": lambda: theta_walk(rows, test, origins),
        "NLinear + ConformalNaiveModel": lambda: darts_nlinear_quantiles(split, rows, test, origins, seed),
        "seasonal naive (24), empirical quantiles": lambda: seasonal_naive_quantiles(
            rows.to_numpy(), full, [len(rows) + o for o in origins], HORIZON, PERIOD),
    }
    for name, quantiles in peers.items():
        if wanted(name):
            start = time.perf_counter()
            add(name, quantiles(), time.perf_counter() - start)


def ets_walk(rows: pd.DataFrame, test: pd.DataFrame, origins: list[int], horizon: int = HORIZON) -> Quantiles:
    """sktime's AutoETS chosen and fitted per channel on ``rows``; at each origin its
    statsmodels model, parameters fixed, filters every value up to the origin and gives its
    own (normal, additive-error) predictive quantiles. (sktime's AutoETS cannot take new data
    without refitting: ``update(update_params=False)`` keeps forecasting from the end of ``rows``.)"""
    from scipy.stats import norm
    from sktime.forecasting.ets import AutoETS
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    full = pd.concat([rows, test])
    out = {a: np.zeros((len(origins), rows.shape[1], horizon)) for a in levels()}
    for c, column in enumerate(rows.columns):
        fitted = AutoETS(auto=True, additive_only=True, sp=PERIOD, n_jobs=1).fit(rows[column])._fitted_forecaster
        spec = fitted.model
        for k, origin in enumerate(origins):
            history = full[column].to_numpy()[: len(rows) + origin]
            model = ETSModel(pd.Series(history), error=spec.error, trend=spec.trend, seasonal=spec.seasonal,
                             damped_trend=spec.damped_trend, seasonal_periods=spec.seasonal_periods)
            pred = model.smooth(fitted.params).get_prediction(start=len(history), end=len(history) + horizon - 1)
            mean, sd = np.asarray(pred.predicted_mean), np.sqrt(np.asarray(pred.var_pred_mean))
            for a in levels():
                out[a][k, c] = mean + norm.ppf(a) * sd
    return out


def theta_walk(rows: pd.DataFrame, test: pd.DataFrame, origins: list[int], horizon: int = HORIZON) -> Quantiles:
    """sktime's ``ConformalIntervals`` around ``ThetaForecaster`` fitted per channel on
    ``rows`` (its residual matrix from 200 refits, ``sample_frac``); at each origin Theta
    is refitted on every value up to it (cheap) and the intervals are ConformalIntervals'
    own ``"empirical"`` ones: the point forecast plus the quantiles of the fit's signed
    residuals per step. (The statsmodels-based Theta cannot take new data without
    refitting, and recomputing the residual matrix is 200 refits per origin.)"""
    from sktime.forecasting.conformal import ConformalIntervals
    from sktime.forecasting.theta import ThetaForecaster

    def theta():
        return ThetaForecaster(sp=PERIOD, deseasonalize_model="additive")

    fh = np.arange(1, horizon + 1)
    full = pd.concat([rows, test]).reset_index(drop=True)
    out = {a: np.zeros((len(origins), rows.shape[1], horizon)) for a in levels()}
    for c, column in enumerate(rows.columns):
        fitted = ConformalIntervals(theta(), sample_frac=200 / len(rows)).fit(full[column].iloc[: len(rows)], fh=fh)
        matrix = fitted.residuals_matrix_.to_numpy(dtype=float)
        steps = [np.diagonal(matrix, offset=h) for h in fh]
        offsets = {a: np.array([np.nanquantile(r, a) for r in steps]) for a in levels()}
        for k, origin in enumerate(origins):
            point = theta().fit(full[column].iloc[: len(rows) + origin], fh=fh).predict().to_numpy()
            for a in levels():
                out[a][k, c] = point + offsets[a]
    return out


def _as_series(frame: pd.DataFrame):
    from darts import TimeSeries

    return TimeSeries.from_values(frame.to_numpy(np.float32))


def _likelihood_frames(forecasts, channels: int) -> Quantiles:
    """Darts' likelihood-parameter forecasts (components ``c_q{level}``) as ``{level: [O, C, H]}``."""
    out = {}
    for a in levels():
        cols = [i * len(levels()) + levels().index(a) for i in range(channels)]
        out[a] = np.stack([f.values()[:, cols].T for f in forecasts])
    return out


def darts_trace_quantiles(rows: pd.DataFrame, test: pd.DataFrame, origins: list[int], val_share: float,
                          seed: int) -> Quantiles:
    from darts.utils.likelihood_models.torch import QuantileRegression

    from trace_forecast.darts import TraceModel

    model = TraceModel(input_chunk_length=512, output_chunk_length=HORIZON, validation_fraction=val_share,
                       random_state=seed, likelihood=QuantileRegression(levels()),
                       pl_trainer_kwargs={"enable_progress_bar": False, "accelerator": "cpu"})
    model.fit(_as_series(rows), verbose=False)
    series = _as_series(pd.concat([rows, test]))
    forecasts = model.historical_forecasts(series, start=len(rows), start_format="position",
                                           forecast_horizon=HORIZON, stride=PERIOD, retrain=False,
                                           last_points_only=False, predict_likelihood_parameters=True,
                                           overlap_end=False, verbose=False)
    return _likelihood_frames(forecasts[: len(origins)], rows.shape[1])


def darts_nlinear_quantiles(split, rows: pd.DataFrame, test: pd.DataFrame, origins: list[int], seed: int) -> Quantiles:
    """NLinear (the long-horizon benchmark's configuration) in Darts' ConformalNaiveModel."""
    import tempfile

    from darts.models import ConformalNaiveModel, NLinearModel

    with tempfile.TemporaryDirectory() as work:
        model = NLinearModel(input_chunk_length=512, output_chunk_length=HORIZON, shared_weights=True, normalize=True,
                             n_epochs=10, batch_size=32, random_state=seed, save_checkpoints=True, work_dir=work,
                             model_name="nlinear_conformal", force_reset=True, optimizer_kwargs={"lr": 1e-3},
                             pl_trainer_kwargs={"enable_progress_bar": False, "enable_model_summary": False,
                                                "accelerator": "cpu"})
        model.fit(_as_series(split.train), val_series=_as_series(split.val), load_best=True, verbose=False)
    conformal = ConformalNaiveModel(model, quantiles=levels(), cal_length=1024)
    forecasts = conformal.historical_forecasts(_as_series(pd.concat([rows, test])), start=len(rows),
                                               start_format="position", forecast_horizon=HORIZON, stride=PERIOD,
                                               last_points_only=False, predict_likelihood_parameters=True,
                                               overlap_end=False, verbose=False)
    return _likelihood_frames(forecasts[: len(origins)], rows.shape[1])


# ---------------------------------------------------------------------- M4 Hourly
def m4(seed: int, record: Record, methods=None) -> None:
    from benchmarks.m4 import HORIZON as H48
    from benchmarks.m4 import load_m4_hourly, seasonal_naive
    from trace_forecast import TraceForecaster

    histories, futures = load_m4_hourly()
    alphas = [0.025, 0.1, 0.9, 0.975]

    def trace() -> dict[float, np.ndarray]:
        frame = pd.concat({i: pd.DataFrame({"y": h}) for i, h in enumerate(histories)}, names=["series", "t"])
        forecaster = TraceForecaster(random_state=seed).fit(frame, fh=np.arange(1, H48 + 1))
        q = forecaster.predict_quantiles(alpha=alphas)
        return {a: q[("y", a)].to_numpy().reshape(len(histories), H48) for a in alphas}

    def naive() -> dict[float, np.ndarray]:
        out = {a: [] for a in alphas}
        for h in histories:
            errors = np.stack([h[t : t + H48] - seasonal_naive(h[:t], H48)
                               for t in range(len(h) - 4 * H48, len(h) - H48 + 1)])
            for a in alphas:
                out[a].append(seasonal_naive(h, H48) + np.quantile(errors, a, axis=0))
        return {a: np.stack(v) for a, v in out.items()}

    makers = {
        "TRACE": trace,
        "seasonal naive (24), empirical quantiles": naive,
        "Theta + ConformalIntervals": lambda: m4_theta(histories, H48, alphas),
        "NLinear + ConformalNaiveModel": lambda: m4_nlinear(histories, H48, alphas, seed),
    }
    quantiles: dict[str, dict[float, np.ndarray]] = {}
    seconds: dict[str, float] = {}
    for name, make in makers.items():
        start = time.perf_counter()
        quantiles[name] = make()
        seconds[name] = time.perf_counter() - start

    suite_protocol(record, "m4", dataset="M4 Hourly", horizon=H48, series=len(histories), seed=seed)
    for name, b in quantiles.items():
        record.add({
            "suite": "m4", "method": name,
            "msis_95": float(np.mean([msis(h, y, lo, hi) for h, y, lo, hi
                                      in zip(histories, futures, b[0.025], b[0.975], strict=True)])),
            "scaled_width_95": float(np.mean([np.mean(hi - lo) / np.mean(np.abs(h[24:] - h[:-24])) for h, lo, hi
                                              in zip(histories, b[0.025], b[0.975], strict=True)])),
            "coverage_80": float(np.mean((futures >= b[0.1]) & (futures <= b[0.9]))),
            "coverage_95": float(np.mean((futures >= b[0.025]) & (futures <= b[0.975]))),
            "seconds": round(seconds[name], 1),
        })


def m4_theta(histories: list[np.ndarray], horizon: int, alphas: list[float]) -> dict[float, np.ndarray]:
    from sktime.forecasting.conformal import ConformalIntervals
    from sktime.forecasting.theta import ThetaForecaster

    out = {a: [] for a in alphas}
    for h in histories:
        y = pd.Series(h)
        forecaster = ConformalIntervals(ThetaForecaster(sp=PERIOD, deseasonalize_model="additive"),
                                        sample_frac=20 / len(h))
        forecaster.fit(y, fh=np.arange(1, horizon + 1))
        q = forecaster.predict_quantiles(alpha=alphas)
        for a in alphas:
            out[a].append(q.xs(a, axis=1, level=1).to_numpy()[:, 0])
    return {a: np.stack(v) for a, v in out.items()}


def m4_nlinear(histories: list[np.ndarray], horizon: int, alphas: list[float], seed: int) -> dict[float, np.ndarray]:
    """Darts NLinear (the M4 benchmark's configuration) on series standardised by their own
    mean and std, in Darts' ConformalNaiveModel; quantiles scaled back per series."""
    from darts import TimeSeries
    from darts.models import ConformalNaiveModel, NLinearModel

    loc = np.array([h.mean() for h in histories])
    scale = np.array([h.std() or 1.0 for h in histories])
    series = [TimeSeries.from_values(((h - m) / s).astype(np.float32)) for h, m, s in zip(histories, loc, scale,
                                                                                           strict=True)]
    model = NLinearModel(input_chunk_length=2 * horizon, output_chunk_length=horizon, normalize=True,
                         shared_weights=True, n_epochs=10, random_state=seed,
                         pl_trainer_kwargs={"enable_progress_bar": False, "enable_model_summary": False,
                                            "accelerator": "cpu"})
    model.fit(series, verbose=False)
    levels_ = sorted(set(alphas) | {0.5})
    conformal = ConformalNaiveModel(model, quantiles=levels_, cal_length=4 * horizon)
    preds = conformal.predict(n=horizon, series=series, predict_likelihood_parameters=True, verbose=False)
    return {a: np.stack([p.values()[:, levels_.index(a)] * s + m for p, m, s in zip(preds, loc, scale, strict=True)])
            for a in alphas}


# ---------------------------------------------------------------------- small-data suite
def small_data(seed: int, record: Record, methods=None) -> None:
    from sktime.forecasting.conformal import ConformalIntervals
    from sktime.forecasting.ets import AutoETS
    from sktime.forecasting.theta import ThetaForecaster
    from sktime.split import ExpandingWindowSplitter

    from benchmarks.small_data import FOLDS, series
    from trace_forecast import TraceForecaster

    suite_protocol(record, "small_data", suite="small data", seed=seed)
    for name, (y, sp, horizon) in series().items():
        y = y.astype(float)
        fh = np.arange(1, horizon + 1)
        cv = ExpandingWindowSplitter(fh=fh, initial_window=len(y) - FOLDS * horizon, step_length=horizon)
        makers = {
            "TRACE": lambda n: TraceForecaster(random_state=seed),
            "AutoETS": lambda n, sp=sp: AutoETS(auto=True, additive_only=True, sp=sp, n_jobs=1),
            # Its calibration refits on the first half of the fold's data and later (Theta needs two seasons).
            "Theta + ConformalIntervals": lambda n, sp=sp: ConformalIntervals(
                ThetaForecaster(sp=sp), initial_window=max(2 * sp + 1, n // 2)),
            "seasonal naive, empirical quantiles": None,
        }
        for method, make in makers.items():
            start = time.perf_counter()
            hits = {c: [] for c in (0.8, 0.95)}
            scaled = {c: [] for c in (0.8, 0.95)}
            failed = 0
            for train_idx, test_idx in cv.split(y):
                train, actual = y.iloc[train_idx], y.iloc[test_idx].to_numpy()
                values = train.to_numpy()
                lag = sp if len(values) > 2 * sp else 1  # seasonal naive's error; naive's for under two seasons
                naive_error = float(np.mean(np.abs(values[lag:] - values[:-lag])))
                try:
                    if make is None:
                        q = seasonal_naive_quantiles(values[:, None], values[:, None], [len(values)], horizon, sp)
                    else:
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            forecaster = make(len(train)).fit(train, fh=fh)
                            interval = forecaster.predict_interval(coverage=[0.8, 0.95]).to_numpy()
                except ValueError as error:  # e.g. AutoETS's seasonal start on under two seasons
                    print(f"{method} failed on a fold of {name}: {error}", flush=True)
                    failed += 1
                    continue
                for j, c in enumerate((0.8, 0.95)):
                    if make is None:
                        lo, hi = (q[b][0, 0] for b in bounds(c))
                    else:
                        lo, hi = interval[:, 2 * j], interval[:, 2 * j + 1]
                    hits[c].append(np.mean((actual >= lo) & (actual <= hi)))
                    scaled[c].append(interval_score(actual, lo, hi, c) / naive_error)
            record.add({"suite": "small_data", "series": name, "method": method, "folds": len(hits[0.8]),
                        "failed_folds": failed,
                        **{f"coverage_{int(c * 100)}": float(np.mean(v)) for c, v in hits.items()},
                        **{f"scaled_interval_score_{int(c * 100)}": float(np.mean(v)) for c, v in scaled.items()},
                        "seconds": round(time.perf_counter() - start, 1)})


# ---------------------------------------------------------------------- report
def _pct(v: float) -> str:
    return f"{100 * v:.1f}%"


def page(result: dict) -> str:
    suites = result["summary"]["suites"]
    rows = pd.DataFrame(result["rows"])
    lines = ["# Probabilistic forecasts",
             "Do not edit this page by hand. The protocol is in the module docstring of "
             "`benchmarks/probabilistic.py`; the method in `docs/design.md`, \"Prediction intervals\".", ""]
    if "etth1" in suites:
        r, env = suites["etth1"], suites["etth1"]["environment"]
        lines += [f"## ETTh1 (H = {r['horizon']}, {r['channels']} channels, {r['origins']} origins a day apart)", "",
                  "Environment: " + ", ".join(f"{k} {v}" for k, v in env.items()), "",
                  "| method | coverage 50 / 80 / 95 % | interval score 80 / 95 % | CRPS | seconds |",
                  "|---|---|---|---|---|"]
        for _, row in rows[rows.suite == "etth1"].iterrows():
            lines.append(f"| {row['method']} | {_pct(row['coverage_50'])} / {_pct(row['coverage_80'])} / "
                         f"{_pct(row['coverage_95'])} | {row['interval_score_80']:.3f} / "
                         f"{row['interval_score_95']:.3f} | {row['crps']:.4f} | {row['seconds']:.0f} |")
        lines.append("")
    if "m4" in suites:
        r = suites["m4"]
        lines += [f"## M4 Hourly ({r['series']} series, H = {r['horizon']})", "",
                  "| method | MSIS (95 %) | scaled width (95 %) | coverage 80 / 95 % | seconds |",
                  "|---|---|---|---|---|"]
        for _, row in rows[rows.suite == "m4"].iterrows():
            lines.append(f"| {row['method']} | {row['msis_95']:.2f} | {row['scaled_width_95']:.2f} | "
                         f"{_pct(row['coverage_80'])} / {_pct(row['coverage_95'])} | {row['seconds']:.0f} |")
        lines.append("")
    if "small_data" in suites:
        frame = pd.DataFrame([r for r in result["rows"] if r["suite"] == "small_data"])
        lines += ["## Small-data suite (4 series x 4 folds, a season ahead)", "",
                  "Coverage 80 / 95 % and the interval score over the in-sample seasonal naive error "
                  "(80 / 95 %), per series; the last row of each method is the mean over series.", "",
                  "| method | series | folds scored (failed) | coverage 80 / 95 % | scaled interval score 80 / 95 % |",
                  "|---|---|---|---|---|"]
        for method, group in frame.groupby("method", sort=False):
            for _, row in group.iterrows():
                lines.append(f"| {method} | {row['series']} | {row['folds']} ({row['failed_folds']}) | "
                             f"{_pct(row['coverage_80'])} / {_pct(row['coverage_95'])}"
                             f" | {row['scaled_interval_score_80']:.2f} / {row['scaled_interval_score_95']:.2f} |")
            m = group.mean(numeric_only=True)
            lines.append(f"| **{method}** | **mean** | | **{_pct(m['coverage_80'])} / {_pct(m['coverage_95'])}** | "
                         f"**{m['scaled_interval_score_80']:.2f} / {m['scaled_interval_score_95']:.2f}** |")
        lines.append("")
    notes = DOCS / "benchmarks_probabilistic_notes.md"
    if notes.exists():
        lines += [notes.read_text()]
    return "\n".join(lines)


def suite_protocol(record: Record, suite: str, /, **protocol) -> None:
    """A suite's own protocol and environment (the suites run separately)."""
    record.summary.setdefault("suites", {})[suite] = {**protocol, "environment": environment()}


SUITES = {"etth1": etth1, "m4": m4, "small_data": small_data}
KEY = ("suite", "series", "method")
PAGE = "benchmarks_probabilistic.md"


def options(parser) -> None:
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--suite", nargs="+", choices=tuple(SUITES), default=list(SUITES))
    parser.add_argument("--methods", nargs="+", help="ETTh1: only these methods; their rows replace theirs")


def run(args, record: Record) -> None:
    for name in args.suite:
        SUITES[name](args.seed, record, args.methods if name == "etth1" else None)


if __name__ == "__main__":
    main(__name__)
