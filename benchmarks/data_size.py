"""Fine-tuning at every data size: does TRACE add value from 5 % to 100 % of the data?

``python -m benchmarks.data_size`` runs the sweep into ``results/data_size.json`` (one row per
data set, fraction, horizon, method and seed) and writes ``docs/benchmarks_data_size.md``
(``--report``: from that file alone).

Protocol (``docs/benchmarks_data_size.md`` says it again):

- **A fraction of the training windows, the most recent.** Of a training split's
  full-context windows ``(L history, H future)``, the last ``ceil(f * N)``; every method
  sees only the rows those windows cover, as a user with that much data would. Tiny Time
  Mixers' few-shot scripts take their fraction from the end, the start or at random; we
  take the end. Each method selects on the last 20 % of its slice in its own way (TRACE's
  ``validation_fraction``, the ridge's penalty, NLinear's best epoch) and never sees the
  standard validation split. The test split is the standard one.
- **Data sets**: ETTh1 (L = 512) at 5, 10, 25 and 100 %, H = 96/192/336/720; ILI with the
  standard L = 104 at 25 and 100 %, H = 24/36/48/60; M4 Hourly (414 series, the last
  fraction of each one's windows) at 10 and 100 %, H = 48, OWA; the short-series suite
  (sktime's airline, shampoo sales, lynx, US real GDP) through sktime ``evaluate`` with 4
  refitting folds, MASE; and random walks (:func:`random_walks`: synthetic, shaped like the
  long-horizon suite's exchange rates, whose best forecast is the last value, which
  ``seasonal naive`` with period 1 is) at 5 and 100 %, H = 96/192/336/720, split 70/10/20.
- **Arms**: TRACE zero-shot; ``TraceForecaster()`` at its defaults; head only
  (``adapter="none"``); PEFT LoRA (``adapter="lora"``); full fine-tuning
  (``adapter="full"``), all on the embedded backbone with the reconstruction head; a RevIN
  ridge linear model on the same windows (penalty chosen on their last 20 %); the default
  Darts ``TraceModel``; Darts NLinear (paper configuration, 10 epochs, best epoch on the
  slice's last 20 %); seasonal naive; on the short series also AutoETS and Theta.
  Side arms that flip a design constant (``ARM_SETTINGS``): the plain fine-tune, the default
  before the fine-tune became sign-symmetric (both front ends), the sign-symmetric
  fine-tune that trains on both signs every step, and the default without the last-value
  share of the head start (the default before it).
  The defaults (both front ends), the plain fine-tune and NLinear run with 3 seeds; head
  only, LoRA, full fine-tuning and the both-signs arms with the first (CPU time). The
  committed head-only, LoRA and full fine-tuning rows were measured before the fine-tune
  became sign-symmetric (plain features).
- Test windows: on ETTh1 and the random walks every ``--test-stride``-th (default 5, coprime
  with the daily period), on ILI every one; MSE and MAE on the train-standardised values.
"""

from __future__ import annotations

import importlib
import math
import tempfile
import time
import warnings
from collections.abc import Callable
from contextlib import ExitStack

import numpy as np
import pandas as pd

from benchmarks.harness import Record, channel_windows, main, panel_windows, setting, timed, window_count
from trace_forecast.datasets import Split, rolling_windows
from trace_forecast.metrics import mae, mse, owa

KEY = ("dataset", "fraction", "horizon", "method", "seed")
PAGE = "benchmarks_data_size.md"
SEEDS = (0, 1, 2)
VALIDATION = 0.2  # every method selects on the last 20 % of its slice

SETTINGS = {  # data set -> (fractions, horizons, lookback, seasonal period)
    "ETTh1": ((0.05, 0.1, 0.25, 1.0), (96, 192, 336, 720), 512, 24),
    "ILI (L = 104)": ((0.25, 1.0), (24, 36, 48, 60), 104, 52),
    "M4 Hourly": ((0.1, 1.0), (48,), 512, 24),
    "random walks": ((0.05, 1.0), (96, 192, 336, 720), 512, 1),
}
STRIDED = ("ETTh1", "random walks")  # data sets whose test windows are every --test-stride-th
TRACE_ARMS = {  # TraceForecaster parameters of each TRACE-family arm
    "TRACE zero-shot": {"fit_strategy": "zero-shot"},
    "TRACE (defaults)": {},
    "TRACE, no last-value share": {},
    "head only": {"adapter": "none"},
    "LoRA (PEFT)": {"adapter": "lora"},
    "full fine-tuning": {"adapter": "full"},
    "TRACE, plain fine-tune": {},
    "TRACE, sign-symmetric fine-tune, both signs": {},
}
DARTS_ARMS = {  # method -> Darts model
    "Darts TraceModel": "TraceModel",
    "Darts TraceModel, plain fine-tune": "TraceModel",
    "Darts TraceModel, sign-symmetric fine-tune, both signs": "TraceModel",
    "Darts NLinear": "NLinear",
}
PLAIN_FINE_TUNE = {"reconstruction.SIGN_SYMMETRIC_FINE_TUNE": False}  # the default before: x's features only
BOTH_SIGNS = {"reconstruction.SIGN_SYMMETRIC_FINE_TUNE": True,  # x and -x every training step
              "reconstruction.SIGN_SYMMETRIC_TRAINING": "both"}
ARM_SETTINGS = {  # method -> the design constants of trace_forecast.heads it flips, as "module.NAME" (the rest: defaults)
    "TRACE, no last-value share": {"ridge.LAST_VALUE_SHARES": (0.0,)},  # the head start before the share
    "TRACE, plain fine-tune": PLAIN_FINE_TUNE,
    "Darts TraceModel, plain fine-tune": PLAIN_FINE_TUNE,
    "TRACE, sign-symmetric fine-tune, both signs": BOTH_SIGNS,
    "Darts TraceModel, sign-symmetric fine-tune, both signs": BOTH_SIGNS,
}
DETERMINISTIC = ("TRACE zero-shot", "RevIN ridge", "seasonal naive", "AutoETS", "Theta")
SIDE_ARMS = ("head only", "LoRA (PEFT)", "full fine-tuning",  # the first seed only: CPU time goes to the defaults
             "TRACE, sign-symmetric fine-tune, both signs", "Darts TraceModel, sign-symmetric fine-tune, both signs")
RIDGE_ALPHAS = (1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0)


# ---------------------------------------------------------------------------- slices
def last_windows(values: np.ndarray | pd.DataFrame, fraction: float, lookback: int, horizon: int):
    """The rows of the last ``ceil(fraction * N)`` full-context windows (all rows at 100 %)."""
    n = window_count(len(values), lookback, horizon)
    keep = max(1, math.ceil(fraction * n))
    first = len(values) - (keep + lookback + horizon - 1)
    return values[max(0, first):] if isinstance(values, np.ndarray) else values.iloc[max(0, first):]


def validation_cut(rows: int) -> int:
    """Rows before the slice's validation part (its last 20 %)."""
    return rows - int(round(rows * VALIDATION))


# ---------------------------------------------------------------------------- arms
def arm_setting(method: str):
    """The design constants ``method`` runs under (a context manager)."""
    stack = ExitStack()
    for qualified, value in ARM_SETTINGS.get(method, {}).items():
        module, name = qualified.split(".")
        stack.enter_context(setting(importlib.import_module(f"trace_forecast.heads.{module}"), name, value))
    return stack


def trace_forecasts(method: str, seed: int, train: list[np.ndarray] | pd.DataFrame, horizon: int, lookback: int,
                    histories: list[np.ndarray]) -> tuple[np.ndarray, dict]:
    """Fit arm ``method``'s ``TraceForecaster`` on ``train`` (a frame, or a panel of series)
    and forecast ``histories``."""
    from trace_forecast import TraceForecaster

    if isinstance(train, list):
        train = pd.concat({i: pd.DataFrame({"y": s}) for i, s in enumerate(train)}, names=["series", "t"])
    with arm_setting(method):
        forecaster = TraceForecaster(**TRACE_ARMS[method], context_length=lookback, random_state=seed)
        with warnings.catch_warnings(), timed() as fit_time:
            warnings.simplefilter("ignore")
            forecaster.fit(train, fh=np.arange(1, horizon + 1))
        pred = forecaster.predict_histories(histories)
    fitted = forecaster.get_fitted_params()
    choices = fitted.get("fit_choices") or {}
    start = choices.get("head_start") or {}
    return pred, {"fit_seconds": fit_time(), "trainable_parameters": int(fitted["total_trainable"]),
                  "kept": choices.get("kept"), "blend": start.get("blend"), "alpha": start.get("alpha"),
                  "persistence": start.get("persistence", 0.0)}


def revin_ridge(train: list[np.ndarray], horizon: int, lookback: int, histories: list[np.ndarray]) -> np.ndarray:
    """RevIN + one linear map shared by all series, ridge penalty chosen on each series'
    last 20 % of windows, then refitted on every window."""
    def windows(series, cut_fn):
        fit_x, fit_y, val_x, val_y = [], [], [], []
        for s in series:
            if window_count(len(s), lookback, horizon) < 1:
                continue
            x, y = rolling_windows(np.asarray(s, np.float64), lookback, horizon)
            origin = np.arange(len(x)) + lookback
            late = origin >= cut_fn(len(s))
            early = origin + horizon <= cut_fn(len(s))
            fit_x.append(x[early]), fit_y.append(y[early]), val_x.append(x[late]), val_y.append(y[late])
        return [np.concatenate(a) if a else np.zeros((0, lookback if i % 2 == 0 else horizon))
                for i, a in enumerate((fit_x, fit_y, val_x, val_y))]

    def normalise(x, y=None):
        m, s = x.mean(1, keepdims=True), x.std(1, keepdims=True) + 1e-5
        return (x - m) / s, None if y is None else (y - m) / s, m, s

    def solve(x, y, alpha):
        xb = np.hstack([x, np.ones((len(x), 1))])
        gram = xb.T @ xb
        penalty = alpha * np.trace(gram[:-1, :-1]) / lookback * np.eye(lookback + 1)
        penalty[-1, -1] = 0.0
        return np.linalg.solve(gram + penalty, xb.T @ y)

    def predict(coef, x):
        return np.hstack([x, np.ones((len(x), 1))]) @ coef

    fx, fy, vx, vy = windows(train, validation_cut)
    alpha = 1.0
    if len(vx) and len(fx):
        (fxn, fyn, _, _), (vxn, _, vm, vs) = normalise(fx, fy), normalise(vx, vy)
        errors = {a: np.mean(((predict(solve(fxn, fyn, a), vxn) * vs + vm) - vy) ** 2) for a in RIDGE_ALPHAS}
        alpha = min(errors, key=errors.get)
    ax, ay, _, _ = windows(train, lambda n: n)  # every window
    axn, ayn, _, _ = normalise(ax, ay)
    coef = solve(axn, ayn, alpha)
    h = np.stack([np.asarray(x[-lookback:], np.float64) for x in histories])
    hn, _, m, s = normalise(h)
    return predict(coef, hn) * s + m


def darts_forecasts(method: str, seed: int, train: list[np.ndarray], horizon: int, lookback: int,
                    histories: list[np.ndarray]) -> tuple[np.ndarray, dict]:
    """Arm ``method``'s Darts model: ``TraceModel`` (defaults) or ``NLinearModel`` (paper
    configuration: ``normalize``, ``shared_weights``, 10 epochs, best epoch on the last 20 %
    of each series) fitted on ``train`` (each a ``[T, C]`` or ``[T]`` array), forecasting
    after each of ``histories``."""
    from darts import TimeSeries
    from darts.models import NLinearModel

    from trace_forecast.darts import TraceModel

    kind = DARTS_ARMS[method]
    as_ts = lambda a: TimeSeries.from_values(np.asarray(a, np.float32))  # noqa: E731
    quiet = {"enable_progress_bar": False, "enable_model_summary": False, "accelerator": "cpu"}
    with tempfile.TemporaryDirectory() as work, warnings.catch_warnings(), arm_setting(method):
        warnings.simplefilter("ignore")
        if kind == "TraceModel":
            model = TraceModel(input_chunk_length=lookback, output_chunk_length=horizon, random_state=seed,
                               pl_trainer_kwargs=quiet)
            with timed() as fit_time:
                model.fit([as_ts(s) for s in train], verbose=False)
        else:
            model = NLinearModel(input_chunk_length=lookback, output_chunk_length=horizon, normalize=True,
                                 shared_weights=True, n_epochs=10, batch_size=32, random_state=seed,
                                 optimizer_kwargs={"lr": 1e-3}, save_checkpoints=True, work_dir=work,
                                 model_name="nlinear", force_reset=True, pl_trainer_kwargs=quiet)
            fit, val = [], []
            for s in train:
                cut = validation_cut(len(s))
                tail = s[max(0, cut - lookback):]
                if window_count(len(tail), lookback, horizon) >= 1 and window_count(cut, lookback, horizon) >= 1:
                    fit.append(as_ts(s[:cut])), val.append(as_ts(tail))
                else:
                    fit.append(as_ts(s))
            with timed() as fit_time:
                model.fit(fit, val_series=val or None, verbose=False)
                if val:
                    model = NLinearModel.load_from_checkpoint("nlinear", work_dir=work, best=True)
        preds = model.predict(n=horizon, series=[as_ts(h[-lookback:]) for h in histories], verbose=False)
    pred = np.stack([p.values() for p in preds])  # [n, H, C]
    params = sum(p.numel() for p in model.model.parameters() if p.requires_grad)
    return pred, {"fit_seconds": fit_time(), "trainable_parameters": int(params)}


# ---------------------------------------------------------------------------- data sets
def long_horizon_split(name: str) -> Split:
    from benchmarks.long_horizon import load_split
    from trace_forecast.datasets import ratio_split

    if name == "random walks":
        return ratio_split(random_walks(), SETTINGS[name][2])
    return load_split("ETTh1" if name == "ETTh1" else name)


def random_walks(steps: int = 7588, channels: int = 8, seed: int = 0) -> pd.DataFrame:
    """Geometric random walks shaped like the long-horizon suite's exchange rates (8 daily
    series of 7,588 steps, 0.6 % daily volatility, levels between 0.5 and 2), seeded: their
    best forecast in expectation is the last value, which a fine-tune should match."""
    rng = np.random.default_rng(seed)
    levels = np.exp(np.cumsum(rng.normal(0.0, 0.006, (steps, channels)), axis=0)) * rng.uniform(0.5, 2.0, channels)
    return pd.DataFrame(levels, index=pd.date_range("1990-01-01", periods=steps, freq="D"),
                        columns=[f"rate {k}" for k in range(channels)])


def long_horizon_cell(name: str, fraction: float, horizon: int, stride: int, seeds, methods, done, emit) -> None:
    """Every arm on one data set, fraction and horizon."""
    from trace_forecast.metrics import seasonal_naive

    _, _, lookback, period = SETTINGS[name]
    split = long_horizon_split(name)
    rows = last_windows(split.train, fraction, lookback, horizon)
    hist, fut = channel_windows(split.test, lookback, horizon, stride)
    base = {"dataset": name, "fraction": fraction, "horizon": horizon, "train_rows": len(rows),
            "train_windows": window_count(len(rows), lookback, horizon) * rows.shape[1],
            "test_windows": len(hist), "test_stride": stride}

    def score(method, seed, pred, truth, extra=None):
        emit({**base, "method": method, "seed": seed, "mse": mse(truth, pred), "mae": mae(truth, pred),
              **(extra or {})})

    run = lambda method, seed=None: wanted(method, methods) and (name, fraction, horizon, method, seed) not in done  # noqa: E731
    if run("seasonal naive"):
        score("seasonal naive", None, seasonal_naive(hist, horizon, period), fut)
    if run("RevIN ridge"):
        with timed() as t:
            pred = revin_ridge([rows[c].to_numpy() for c in rows.columns], horizon, lookback, list(hist))
        score("RevIN ridge", None, pred, fut, {"fit_seconds": t()})
    for method in TRACE_ARMS:
        for seed in seeds_for(method, seeds):
            if run(method, seed):
                pred, extra = trace_forecasts(method, seed, rows, horizon, lookback, list(hist))
                score(method, seed, pred, fut, extra)
    m_hist, m_fut = panel_windows(split.test.to_numpy(np.float32), lookback, horizon, stride)
    for method in DARTS_ARMS:
        for seed in seeds:
            if run(method, seed):
                pred, extra = darts_forecasts(method, seed, [rows.to_numpy()], horizon, lookback, list(m_hist))
                score(method, seed, pred, m_fut, extra)


def m4_cell(fraction: float, seeds, methods, done, emit) -> None:
    from benchmarks.m4 import HORIZON, PERIOD, load_m4_hourly, naive2, scores, seasonal_naive

    histories, futures = load_m4_hourly()
    lookback = SETTINGS["M4 Hourly"][2]
    train = [last_windows(h, fraction, lookback, HORIZON) if fraction < 1 else h for h in histories]
    n2 = np.stack([naive2(h) for h in histories])
    s_n2, m_n2 = scores(histories, futures, n2)
    base = {"dataset": "M4 Hourly", "fraction": fraction, "horizon": HORIZON,
            "train_rows": int(sum(map(len, train))), "test_windows": len(histories)}

    def score(method, seed, pred, extra=None):
        s, m = scores(histories, futures, pred)
        emit({**base, "method": method, "seed": seed, "smape": s, "mase": m, "owa": owa(s, m, s_n2, m_n2),
              **(extra or {})})

    run = lambda method, seed=None: wanted(method, methods) and ("M4 Hourly", fraction, HORIZON, method, seed) not in done  # noqa: E731
    if run("seasonal naive"):
        score("seasonal naive", None, np.stack([seasonal_naive(h, HORIZON, PERIOD) for h in histories]))
    if run("RevIN ridge"):
        with timed() as t:
            pred = revin_ridge(train, HORIZON, 2 * HORIZON, histories)  # NLinear's input length: short series
        score("RevIN ridge", None, pred, {"fit_seconds": t(), "lookback": 2 * HORIZON})
    for method in TRACE_ARMS:
        for seed in seeds_for(method, seeds):
            if run(method, seed):
                pred, extra = trace_forecasts(method, seed, train, HORIZON, lookback, histories)
                score(method, seed, pred, extra)
    for seed in seeds:
        for method in (m for m, kind in DARTS_ARMS.items() if kind == "TraceModel"):
            if run(method, seed):
                pred, extra = darts_forecasts(method, seed, train, HORIZON, lookback, histories)
                score(method, seed, pred[..., 0], extra)
        if run("Darts NLinear", seed):
            # per-series min-max scaling, as the M4 suite does (scales differ by orders of magnitude)
            lo = [np.min(s) for s in train]
            span = [max(np.ptp(s), 1e-9) for s in train]
            scaled = [(s - a) / b for s, a, b in zip(train, lo, span, strict=True)]
            pred, extra = darts_forecasts("Darts NLinear", seed, scaled, HORIZON, 2 * HORIZON,
                                          [(h - a) / b for h, a, b in zip(histories, lo, span, strict=True)])
            score("Darts NLinear", seed, pred[..., 0] * np.array(span)[:, None] + np.array(lo)[:, None], extra)


def short_series(seeds, methods, done, emit) -> None:
    """sktime ``evaluate`` with 4 refitting folds (benchmarks.small_data's protocol), MASE."""
    from sktime.forecasting.ets import AutoETS
    from sktime.forecasting.model_evaluation import evaluate
    from sktime.forecasting.naive import NaiveForecaster
    from sktime.forecasting.theta import ThetaForecaster
    from sktime.performance_metrics.forecasting import MeanAbsoluteScaledError
    from sktime.split import ExpandingWindowSplitter

    from benchmarks.small_data import FOLDS, series
    from trace_forecast import TraceForecaster

    for name, (y, sp, horizon) in series().items():
        y = y.astype(float)
        cv = ExpandingWindowSplitter(fh=np.arange(1, horizon + 1), initial_window=len(y) - FOLDS * horizon,
                                     step_length=horizon)
        arms: dict[str, Callable[[int], object]] = {
            **{m: (lambda seed, p=p: TraceForecaster(**p, random_state=seed)) for m, p in TRACE_ARMS.items()},
            "AutoETS": lambda seed: AutoETS(auto=True, sp=sp, n_jobs=1),
            "Theta": lambda seed: ThetaForecaster(sp=sp),
            "seasonal naive": lambda seed: NaiveForecaster(strategy="last", sp=sp),
        }
        for method, make in arms.items():
            for seed in seeds_for(method, seeds):
                if not wanted(method, methods) or ("short series", name, horizon, method, seed) in done:
                    continue
                start = time.perf_counter()
                with warnings.catch_warnings(), arm_setting(method):
                    warnings.simplefilter("ignore")
                    result = evaluate(make(seed), cv=cv, y=y, scoring=MeanAbsoluteScaledError(sp=sp))
                emit({"dataset": "short series", "fraction": name, "horizon": horizon, "method": method,
                      "seed": seed, "series_length": len(y), "mase": float(result.iloc[:, 0].mean()),
                      "folds": len(result), "fit_seconds": (time.perf_counter() - start) / len(result)})


# ---------------------------------------------------------------------------- running
def seeds_for(method: str, seeds) -> tuple:
    if method in DETERMINISTIC:
        return (None,)
    return tuple(seeds)[:1] if method in SIDE_ARMS else tuple(seeds)


def wanted(method: str, methods) -> bool:
    return not methods or method in methods


def key(row: dict) -> tuple:
    return row["dataset"], row["fraction"], row["horizon"], row["method"], row["seed"]


def run(args, record: Record) -> None:
    done = {key(r) for r in record.rows}
    for name in args.datasets:
        if name == "short series":
            short_series(args.seeds, args.methods, done, record.add)
            continue
        fracs, hs, _, _ = SETTINGS[name]
        for fraction in args.fractions or fracs:
            if name == "M4 Hourly":
                m4_cell(fraction, args.seeds, args.methods, done, record.add)
                continue
            for horizon in args.horizons or hs:  # ILI's test split is small: every window
                long_horizon_cell(name, fraction, horizon, args.test_stride if name in STRIDED else 1, args.seeds,
                                  args.methods, done, record.add)


# ---------------------------------------------------------------------------- the page
ORDER = ("TRACE (defaults)", "TRACE, no last-value share", "TRACE, plain fine-tune", "TRACE, sign-symmetric fine-tune, both signs",
         "Darts TraceModel", "Darts TraceModel, plain fine-tune", "Darts TraceModel, sign-symmetric fine-tune, both signs",
         "TRACE zero-shot", "head only", "LoRA (PEFT)", "full fine-tuning",
         "RevIN ridge", "Darts NLinear", "seasonal naive", "AutoETS", "Theta")


def summary(rows: list[dict], metric: str) -> pd.DataFrame:
    """Mean and seed spread (standard deviation) per data set, fraction, horizon and method."""
    frame = pd.DataFrame([r for r in rows if metric in r])
    if frame.empty:
        return frame
    grouped = frame.groupby(["dataset", "fraction", "horizon", "method"], sort=False)[metric]
    out = grouped.agg(["mean", "std", "count"]).reset_index()
    out["std"] = out["std"].fillna(0.0)
    return out


def cell(mean: float, std: float, best: bool) -> str:
    text = f"{mean:.3f}" + (f" ± {std:.3f}" if std > 0 else "")
    return f"**{text}**" if best else text


def table(stats: pd.DataFrame, dataset: str, columns: list[tuple], labels: list[str]) -> list[str]:
    sub = stats[stats["dataset"] == dataset]
    methods = [m for m in ORDER if m in set(sub["method"])]
    lines = ["| method | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    best = {c: sub[(sub["fraction"] == c[0]) & (sub["horizon"] == c[1])]["mean"].min() for c in columns}
    for method in methods:
        cells = []
        for c in columns:
            r = sub[(sub["method"] == method) & (sub["fraction"] == c[0]) & (sub["horizon"] == c[1])]
            cells.append("–" if r.empty else cell(r["mean"].iloc[0], r["std"].iloc[0], r["mean"].iloc[0] == best[c]))
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines


def verdicts(stats: pd.DataFrame, dataset: str, metric_name: str) -> list[str]:
    """Per cell: the default fine-tune against zero-shot (beyond the seed spread?) and the ridge."""
    sub = stats[stats["dataset"] == dataset]
    out = []
    for (fraction, horizon), group in sub.groupby(["fraction", "horizon"], sort=False):
        by = group.set_index("method")
        if "TRACE (defaults)" not in by.index:
            continue
        trace = by.loc["TRACE (defaults)"]
        parts = [f"{fraction if isinstance(fraction, str) else f'{fraction:.0%}'}, H = {horizon}: "
                 f"TRACE {trace['mean']:.3f}"]
        for other in ("TRACE zero-shot", "RevIN ridge", "seasonal naive", "AutoETS", "Theta"):
            if other in by.index:
                o = by.loc[other]["mean"]
                if other == "TRACE zero-shot":
                    spread = max(np.nan_to_num(trace["std"]), 1e-9 * abs(o))  # a mean's float rounding is no spread
                    verdict = "no worse" if trace["mean"] <= o + spread else "worse"
                else:
                    verdict = "better" if trace["mean"] < o else "worse"
                parts.append(f"{verdict} than {other} ({o:.3f})")
        out.append("- " + "; ".join(parts))
    return out


HEADLINE = (  # (data set, fraction, horizon, metric, label): the README's table, copied from this page
    ("ETTh1", 0.05, 96, "mse", "ETTh1 5 %, H = 96"),
    ("ETTh1", 0.05, 336, "mse", "ETTh1 5 %, H = 336"),
    ("ETTh1", 1.0, 96, "mse", "ETTh1 100 %, H = 96"),
    ("ETTh1", 1.0, 336, "mse", "ETTh1 100 %, H = 336"),
    ("ILI (L = 104)", 1.0, 24, "mse", "ILI 100 %, H = 24"),
    ("M4 Hourly", 1.0, 48, "owa", "M4 Hourly 100 %, OWA"),
)
HEADLINE_METHODS = ("TRACE (defaults)", "TRACE zero-shot", "RevIN ridge", "Darts NLinear", "seasonal naive")


def headline(rows: list[dict]) -> list[str]:
    """One table of the cells a newcomer asks about (mean over seeds, the best in bold)."""
    stats = {metric: summary(rows, metric) for metric in ("mse", "owa")}

    def value(method, dataset, fraction, horizon, metric):
        s = stats[metric]
        if s.empty:
            return None
        r = s[(s["method"] == method) & (s["dataset"] == dataset) & (s["fraction"] == fraction)
              & (s["horizon"] == horizon)]
        return None if r.empty else float(r["mean"].iloc[0])

    grid = {m: [value(m, *c[:4]) for c in HEADLINE] for m in HEADLINE_METHODS}
    best = [min((v[i] for v in grid.values() if v[i] is not None), default=None) for i in range(len(HEADLINE))]
    lines = ["| | " + " | ".join(c[4] for c in HEADLINE) + " |", "|---|" + "---|" * len(HEADLINE)]
    for method, values in grid.items():
        cells = ["–" if v is None else (f"**{v:.3f}**" if v == best[i] else f"{v:.3f}") for i, v in enumerate(values)]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines


NOTES = {  # what a data set's section says before its table
    "random walks": ["Synthetic geometric random walks shaped like exchange rates (`random_walks()`); "
                     "`seasonal naive` has period 1 here: it is the last value, a random walk's best forecast "
                     "in expectation (one test stretch can still favour a model that extrapolates "
                     "its drift, as the ridge does with all the data).", ""],
}


def page(result: dict) -> str:
    rows = result["rows"]
    lines = ["# Fine-tuning at every data size",
             "Protocol: the module docstring of "
             "`benchmarks/data_size.py`: every method sees only the **last** fraction of the training windows "
             "(the rows they cover) and selects on the last 20 % of that slice; test on the standard test split. "
             "Mean ± standard deviation over seeds where an arm is stochastic; best of each column in bold.", ""]
    lines += ["## At a glance", "", "Test MSE (M4: OWA) of the cells a newcomer asks about first; the README shows "
              "this table. Lower is better.", ""] + headline(rows) + [""]
    mse_stats = summary(rows, "mse")
    for name in ("ETTh1", "ILI (L = 104)", "random walks"):
        sub = mse_stats[mse_stats["dataset"] == name] if not mse_stats.empty else mse_stats
        if sub.empty:
            continue
        columns = list(dict.fromkeys(zip(sub["fraction"], sub["horizon"], strict=True)))
        labels = [f"{f:.0%}, H = {h}" for f, h in columns]
        lines += [f"## {name}: test MSE", ""] + NOTES.get(name, []) + table(mse_stats, name, columns, labels) + [""]
        lines += ["What the default fine-tune does in each cell:", ""] + verdicts(mse_stats, name, "MSE") + [""]
    owa_stats = summary(rows, "owa")
    if not owa_stats.empty:
        columns = list(dict.fromkeys(zip(owa_stats["fraction"], owa_stats["horizon"], strict=True)))
        lines += ["## M4 Hourly: OWA (lower is better; Naive2 = 1)", ""]
        lines += table(owa_stats, "M4 Hourly", columns, [f"{f:.0%} of each series' windows" for f, _ in columns])
        lines += [""] + verdicts(owa_stats, "M4 Hourly", "OWA") + [""]
    short = summary([r for r in rows if r["dataset"] == "short series"], "mase")
    if not short.empty:
        columns = list(dict.fromkeys(zip(short["fraction"], short["horizon"], strict=True)))
        lines += ["## Short series (sktime `evaluate`, 4 refitting folds): MASE", ""]
        lines += table(short, "short series", columns, [f"{f} (H = {h})" for f, h in columns])
        means = short.groupby("method")["mean"].mean()
        lines += ["", "Mean MASE over the series: " + ", ".join(
            f"{m} {means[m]:.3f}" for m in ORDER if m in means.index) + "."]
        lines += [""] + verdicts(short, "short series", "MASE") + [""]
    return "\n".join(lines)


def options(parser) -> None:
    parser.add_argument("--datasets", nargs="+",
                        default=["ETTh1", "ILI (L = 104)", "M4 Hourly", "short series", "random walks"])
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--fractions", nargs="+", type=float, default=None)
    parser.add_argument("--horizons", nargs="+", type=int, default=None)
    parser.add_argument("--methods", nargs="+", default=None)
    parser.add_argument("--test-stride", type=int, default=5)


if __name__ == "__main__":
    main(__name__)
