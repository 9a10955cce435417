"""Covariates: does TRACE's covariate head use what is known in advance?

``python -m benchmarks.covariates`` runs the arms into ``results/covariates.json`` (one row per
data set, method and seed) and writes ``docs/benchmarks_covariates.md`` (``--report``: from that
file alone).

Protocol:

- **Electricity prices** (``pretraining/epf/EPF_FR_BE.csv``): French and Belgian hourly
  day-ahead prices; covariates: the day-ahead generation and system-load forecasts (known
  for the day being priced). One model per market.
- **Electricity load with temperature** (GEFCom 2012, ``pretraining/converted/``): the load
  of 20 zones as one panel; covariates: the 11 stations' temperatures (observed values
  used as known, GEFCom 2012's ex-post setting). The load has the competition's missing
  weeks, which stay missing (the model masks them; errors count observed targets only).
- **Test**: the last 10 % of each series, which pretraining held out of the embedded
  backbone's corpus (both sources served in pretraining); training on the 90 % before it.
  Day-ahead: one forecast per day, from midnight, H = 24, context L = 512; MAE and MSE in
  the series' units.
- **Arms**: ``TraceForecaster()`` at its defaults without and with ``X``; the same through
  Darts (``TraceModel`` with ``future_covariates``, first seed); Darts TiDE and
  NLinear given the same covariates as future covariates (input 512, output 24, reversible
  instance norm / ``normalize``, 10 epochs, best epoch on the last 20 % of the training
  part, ``--darts-samples`` windows per epoch (default 2,048, split evenly between the
  series: twice what TRACE's default fit trains on once, 20,480 windows over the 10
  epochs; a budget set by this machine's time, not the models' best), the load's missing
  weeks interpolated linearly for them, as they take no gaps); seasonal naive (the
  same hour a week earlier). TRACE runs 3 seeds, the Darts models ``--darts-seeds``. The
  design ablation (a covariate head that reads the covariates alone) runs the first seed.
- **Glitches in the covariates** (first seed): 0.2 % of the covariate values at random (one
  draw, in the training rows and the test windows alike) are multiplied by 1,000, as a unit
  mix-up (kW reported as W) does. ``TraceForecaster()`` with these covariates reads them as
  missing values (:mod:`trace_forecast.heads.covariates`), and the ablation reads them as
  values (``GLITCH_RUN = 0``: the package before covariates' glitches were read as missing).
  A ``-9999`` placeholder is no glitch for covariates in tens of thousands of megawatts: it
  lies within the rule's 20 robust standard deviations, so both arms read it as a value.
"""

from __future__ import annotations

import tempfile
import warnings

import numpy as np
import pandas as pd

import trace_forecast.heads.covariates as covariate_head
from benchmarks.harness import Record, main, mean_std_table, require, timed
from benchmarks.harness import setting as design_constant
from trace_forecast.datasets import shared_data_dir

KEY = ("dataset", "method", "seed")
PAGE = "benchmarks_covariates.md"
LOOKBACK, HORIZON, SEASON = 512, 24, 168
TEST_SHARE = 0.1
DATASETS = ("EPF FR", "EPF BE", "GEFCom 2012 load")
METHODS = ("TRACE", "TRACE + covariates", "Darts TiDE + covariates", "Darts NLinear + covariates", "seasonal naive")
DARTS_TRACE = ("TRACE in Darts", "TRACE in Darts + covariates")  # TraceModel, the same head through Darts
DESIGN_ARM = "TRACE + covariates, head reads the covariates only"
GLITCH_ARMS = ("TRACE + covariates with glitches", "TRACE + covariates with glitches read as values")
GLITCH_FACTOR, GLITCH_SHARE = 1000.0, 0.002


def load(name: str) -> tuple[list[np.ndarray], list[np.ndarray], pd.DatetimeIndex | None]:
    """``(targets [T], covariates [T, K], index)`` per series of data set ``name``."""
    root = shared_data_dir() / "pretraining"
    if name.startswith("EPF"):
        frame = pd.read_csv(require(root / "epf" / "EPF_FR_BE.csv"), parse_dates=["ds"])
        part = frame[frame.unique_id == name.split()[-1]].set_index("ds").asfreq("h")
        return ([part["y"].to_numpy(np.float64)], [part[["gen_forecast", "system_load"]].to_numpy(np.float64)],
                part.index)
    load_ = pd.read_csv(require(root / "converted" / "gefcom2012_load.csv.gz")).pivot(
        index="step", columns="series_id", values="value")
    temp = pd.read_csv(require(root / "converted" / "gefcom2012_temp.csv.gz")).pivot(
        index="step", columns="series_id", values="value").reindex(load_.index)
    temps = temp.to_numpy(np.float64)
    return [load_[c].to_numpy(np.float64) for c in load_.columns], [temps] * load_.shape[1], None


def with_glitches(covariates: list[np.ndarray], seed: int = 0) -> list[np.ndarray]:
    """Copies of ``covariates`` with :data:`GLITCH_SHARE` of their values multiplied by :data:`GLITCH_FACTOR`
    (series sharing one covariate array share its glitches)."""
    rng, out = np.random.default_rng(seed), {}
    for x in covariates:
        if id(x) not in out:
            glitchy = x.copy()
            hit = rng.random(x.shape) < GLITCH_SHARE
            glitchy[hit] *= GLITCH_FACTOR
            out[id(x)] = glitchy
    return [out[id(x)] for x in covariates]


def origins(n: int) -> np.ndarray:
    """Forecast origins in the last ``TEST_SHARE`` of a series of ``n`` hourly steps: one a day,
    at midnight (series start at midnight)."""
    first = int(n * (1 - TEST_SHARE))
    first += (-first) % 24
    return np.arange(first, n - HORIZON + 1, 24)


def to_sktime(targets, covariates, index):
    """A frame (one series) or a panel, and its covariates, for ``TraceForecaster``."""
    if len(targets) == 1:
        idx = index if index is not None else pd.RangeIndex(len(targets[0]))
        return pd.DataFrame({"y": targets[0]}, index=idx), pd.DataFrame(covariates[0], index=idx).add_prefix("x")
    ys, xs = {}, {}
    for i, (t, c) in enumerate(zip(targets, covariates, strict=True)):
        ys[i] = pd.DataFrame({"y": t})
        xs[i] = pd.DataFrame(c).add_prefix("x")
    return pd.concat(ys, names=["series", "t"]), pd.concat(xs, names=["series", "t"])


def trace_arm(targets, covariates, index, seed: int, use_covariates: bool | str) -> tuple[np.ndarray, np.ndarray, dict]:
    """Fit on the first 90 % of each series; forecasts and truths ``[n, H]`` at every origin.
    ``use_covariates="covariates only"``: the design ablation, a covariate head that reads the
    covariate features alone (not the forecast and the recent values)."""
    from trace_forecast import TraceForecaster

    cut = [origins(len(t))[0] for t in targets]
    train_y, train_x = to_sktime([t[:c] for t, c in zip(targets, cut, strict=True)],
                                 [x[:c] for x, c in zip(covariates, cut, strict=True)],
                                 None if index is None else index[: cut[0]])
    forecaster = TraceForecaster(context_length=LOOKBACK, random_state=seed)
    with warnings.catch_warnings(), timed() as fit_time:
        warnings.simplefilter("ignore")
        forecaster.fit(train_y, X=train_x if use_covariates else None, fh=np.arange(1, HORIZON + 1))
    if use_covariates == "covariates only":
        from trace_forecast.estimators._frames import instances
        from trace_forecast.tasks.covariates import fit_covariate_map

        _, series, _ = forecaster._split(forecaster._history)
        covs = forecaster._covariates(train_x, {key: frame.index for key, frame in instances(forecaster._history)})
        forecaster.covariate_map_, _ = fit_covariate_map(forecaster.network_, series, covs, np.zeros(len(series), int),
                                                         1, forecaster.validation_fraction, seed=seed,
                                                         reads_forecast=False)
    hist, cov, fut, truth = [], [], [], []
    for t, x in zip(targets, covariates, strict=True):
        for o in origins(len(t)):
            hist.append(t[o - LOOKBACK : o]), truth.append(t[o : o + HORIZON])
            cov.append(x[o - LOOKBACK : o]), fut.append(x[o : o + HORIZON])
    kwargs = {"covariates": cov, "future_covariates": fut} if use_covariates else {}
    pred = forecaster.predict_histories(hist, **kwargs)
    extra = {"fit_seconds": fit_time()}
    if use_covariates:
        extra["covariate_alpha"] = forecaster.covariate_map_.alphas[0]
    return pred, np.stack(truth), extra


def darts_arm(kind: str, targets, covariates, seed: int, samples: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """Darts TiDE or NLinear with the covariates as future covariates (scaled on the training part)."""
    from darts import TimeSeries
    from darts.dataprocessing.transformers import Scaler
    from darts.models import NLinearModel, TiDEModel

    def ts(values, start: int = 0) -> TimeSeries:  # on the series' own time steps, as the covariates are
        values = np.asarray(values, np.float32)
        return TimeSeries.from_times_and_values(pd.RangeIndex(start, start + len(values)), values)

    truths = targets
    targets = [pd.Series(t).interpolate(limit_direction="both").to_numpy() for t in targets]  # Darts needs no gaps
    cut = [origins(len(t))[0] for t in targets]
    scaler = Scaler()
    scaler.fit([ts(x[:c]) for x, c in zip(covariates, cut, strict=True)])
    covs = scaler.transform([ts(np.nan_to_num(x)) for x in covariates])
    quiet = {"enable_progress_bar": False, "enable_model_summary": False, "accelerator": "cpu"}
    fit, val, fit_cov = [], [], []
    for t, c, cv in zip(targets, cut, covs, strict=True):
        inner = int(c * 0.8)
        fit.append(ts(t[:inner])), val.append(ts(t[inner - LOOKBACK : c], inner - LOOKBACK)), fit_cov.append(cv)
    with tempfile.TemporaryDirectory() as work, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        common = dict(input_chunk_length=LOOKBACK, output_chunk_length=HORIZON, n_epochs=10, batch_size=32,
                      random_state=seed, save_checkpoints=True, work_dir=work, model_name=kind, force_reset=True,
                      pl_trainer_kwargs=quiet)
        cls = TiDEModel if kind == "TiDE" else NLinearModel
        model = (TiDEModel(use_reversible_instance_norm=True, **common) if kind == "TiDE"
                 else NLinearModel(normalize=True, **common))
        with timed() as fit_time:
            model.fit(fit, future_covariates=fit_cov, val_series=val, val_future_covariates=fit_cov,
                      max_samples_per_ts=max(64, samples // len(fit)), verbose=False)
            model = cls.load_from_checkpoint(kind, work_dir=work, best=True)
        hist, fcov, truth = [], [], []
        for t, raw, cv in zip(targets, truths, covs, strict=True):
            for o in origins(len(t)):
                hist.append(ts(t[o - LOOKBACK : o], o - LOOKBACK)), truth.append(raw[o : o + HORIZON])
                fcov.append(cv)
        preds = model.predict(n=HORIZON, series=hist, future_covariates=fcov, verbose=False)
    return np.stack([p.values()[:, 0] for p in preds]), np.stack(truth), {"fit_seconds": fit_time()}


def darts_trace_arm(targets, covariates, seed: int, use_covariates: bool) -> tuple[np.ndarray, np.ndarray, dict]:
    """``TraceModel`` at its defaults (input 512, output 24), fitted on the first 90 % of each
    series, with the covariates as ``future_covariates`` or without; forecasts at every origin."""
    from darts import TimeSeries

    from trace_forecast.darts import TraceModel

    def ts(values, start: int = 0) -> TimeSeries:  # on the series' own time steps, as the covariates are
        values = np.asarray(values, np.float32)
        return TimeSeries.from_times_and_values(pd.RangeIndex(start, start + len(values)), values)

    cut = [origins(len(t))[0] for t in targets]
    covs = [ts(x) for x in covariates]
    model = TraceModel(input_chunk_length=LOOKBACK, output_chunk_length=HORIZON, random_state=seed,
                       pl_trainer_kwargs={"enable_progress_bar": False, "enable_model_summary": False,
                                          "accelerator": "cpu"})
    with warnings.catch_warnings(), timed() as fit_time:
        warnings.simplefilter("ignore")
        model.fit([ts(t[:c]) for t, c in zip(targets, cut, strict=True)],
                  future_covariates=covs if use_covariates else None, verbose=False)
    hist, fcov, truth = [], [], []
    for t, cv in zip(targets, covs, strict=True):
        for o in origins(len(t)):
            hist.append(ts(t[o - LOOKBACK : o], o - LOOKBACK)), fcov.append(cv), truth.append(t[o : o + HORIZON])
    preds = model.predict(n=HORIZON, series=hist, future_covariates=fcov if use_covariates else None, verbose=False)
    extra = {"fit_seconds": fit_time()}
    if use_covariates:
        extra["covariate_alpha"] = model.covariate_head.alphas[0]
    return np.stack([p.values()[:, 0] for p in preds]), np.stack(truth), extra


def as_values(arm, *args):
    """``arm(*args)`` with covariates' glitches read as values."""
    with design_constant(covariate_head, "GLITCH_RUN", 0):
        return arm(*args)


def naive_arm(targets) -> tuple[np.ndarray, np.ndarray, dict]:
    pred, truth = [], []
    for t in targets:
        for o in origins(len(t)):
            pred.append(t[o - SEASON : o - SEASON + HORIZON]), truth.append(t[o : o + HORIZON])
    return np.stack(pred), np.stack(truth), {}


def run(args, record: Record) -> None:
    seeds, darts_seeds, samples = args.seeds, args.darts_seeds, args.darts_samples
    for name in args.datasets:
        targets, covariates, index = load(name)
        base = {"dataset": name, "horizon": HORIZON, "series": len(targets),
                "test_windows": int(sum(len(origins(len(t))) for t in targets))}

        def score(method, seed, pred, truth, extra):
            ok = np.isfinite(truth) & np.isfinite(pred)
            err = (pred - truth)[ok]
            record.add({**base, "method": method, "seed": seed, "mae": float(np.mean(np.abs(err))),
                        "mse": float(np.mean(err ** 2)), **extra})

        arms = [("seasonal naive", None, lambda s: naive_arm(targets))]
        for seed in seeds:
            arms += [("TRACE", seed, lambda s: trace_arm(targets, covariates, index, s, False)),
                     ("TRACE + covariates", seed, lambda s: trace_arm(targets, covariates, index, s, True))]
        arms += [(DESIGN_ARM, seeds[0], lambda s: trace_arm(targets, covariates, index, s, "covariates only"))]
        glitchy = with_glitches(covariates)
        arms += [(GLITCH_ARMS[0], seeds[0], lambda s: trace_arm(targets, glitchy, index, s, True)),
                 (GLITCH_ARMS[1], seeds[0], lambda s: as_values(trace_arm, targets, glitchy, index, s, True))]
        arms += [(DARTS_TRACE[0], seeds[0], lambda s: darts_trace_arm(targets, covariates, s, False)),
                 (DARTS_TRACE[1], seeds[0], lambda s: darts_trace_arm(targets, covariates, s, True))]
        for seed in darts_seeds:
            arms += [("Darts TiDE + covariates", seed, lambda s: darts_arm("TiDE", targets, covariates, s, samples)),
                     ("Darts NLinear + covariates", seed,
                      lambda s: darts_arm("NLinear", targets, covariates, s, samples))]
        for method, seed, arm in arms:
            if not record.done({**base, "method": method, "seed": seed}):
                score(method, seed, *arm(seed))


def page(result: dict) -> str:
    frame = pd.DataFrame(result["rows"])
    stats = frame.groupby(["dataset", "method"], sort=False)["mae"].agg(["mean", "std", "count"])
    lines = ["# Covariates: day-ahead electricity prices and load",
             "Protocol: the module docstring of "
             "`benchmarks/covariates.py`; in short, the last 10 % of each series (held out of pretraining), one "
             "24-hour forecast a day from midnight, context 512, MAE in the series' units (mean ± std over seeds).",
             ""] + mean_std_table(stats, "data set", DATASETS, METHODS, 3)
    lines += ["", "## Against the targets", ""]
    for name in DATASETS:
        if (name, "TRACE") not in stats.index or (name, "TRACE + covariates") not in stats.index:
            continue
        plain, cov = stats.loc[(name, "TRACE")], stats.loc[(name, "TRACE + covariates")]
        gain = 100 * (1 - cov["mean"] / plain["mean"])
        others = {m: stats.loc[(name, m), "mean"] for m in METHODS[2:4] if (name, m) in stats.index}
        naive = stats.loc[(name, "seasonal naive"), "mean"] if (name, "seasonal naive") in stats.index else np.inf
        beats = ", ".join(f"{m} {v:.3f} ({'beaten' if cov['mean'] < v else 'ahead'}"
                          f"{'; below seasonal naive, under-trained at this budget' if v > naive else ''})"
                          for m, v in others.items())
        spread = max(plain["std"] if plain["count"] > 1 else 0.0, cov["std"] if cov["count"] > 1 else 0.0)
        lines.append(f"- **{name}**: covariates take TRACE's MAE from {plain['mean']:.3f} to {cov['mean']:.3f} "
                     f"({gain:+.1f} %; the seeds' spread is {spread:.3f}); {beats or 'no Darts arm run'}.")
    if any((name, m) in stats.index for name in DATASETS for m in DARTS_TRACE):
        lines += ["", "## Through Darts", "",
                  "`TraceModel` at its defaults (input 512, output 24), the covariates as `future_covariates`; "
                  "first seed. The same covariate head as the sktime forecaster's, fitted after Darts' fine-tune.",
                  ""] + mean_std_table(stats, "data set", DATASETS, DARTS_TRACE, 3)
        gains = [f"{name} {100 * (1 - stats.loc[(name, DARTS_TRACE[1]), 'mean'] / stats.loc[(name, DARTS_TRACE[0]), 'mean']):+.1f} %"
                 for name in DATASETS if all((name, m) in stats.index for m in DARTS_TRACE)]
        lines += ["", "Gain from the covariates through Darts: " + ", ".join(gains) + "."]
    design = [name for name in DATASETS if (name, DESIGN_ARM) in stats.index and (name, "TRACE") in stats.index]
    if design:
        lines += ["", "## Design: what the covariate head reads", "",
                  "The default head reads the covariate features, the forecast and the target's last 8 values; the "
                  "ablation reads the covariate features alone (first seed).", "",
                  "| data set | TRACE | head reads the covariates only | default head (covariates, forecast, recent values) |",
                  "|---|---|---|---|"]
        for name in design:
            plain = frame[(frame.dataset == name) & (frame.method == "TRACE") & (frame.seed == 0)]["mae"].mean()
            only = stats.loc[(name, DESIGN_ARM), "mean"]
            full = frame[(frame.dataset == name) & (frame.method == "TRACE + covariates") & (frame.seed == 0)]["mae"].mean()
            lines.append(f"| {name} | {plain:.3f} | {only:.3f} ({100 * (1 - only / plain):+.1f} %) | "
                         f"{full:.3f} ({100 * (1 - full / plain):+.1f} %) |")
    glitches = [name for name in DATASETS if all((name, m) in stats.index for m in GLITCH_ARMS)]
    if glitches:
        lines += ["", "## Glitches in the covariates", "",
                  "0.2 % of the covariate values multiplied by 1,000, a unit mix-up (training rows and test windows "
                  "alike); first seed.", "",
                  "| data set | TRACE | TRACE + clean covariates | glitches read as missing values (the default) | "
                  "glitches read as values |", "|---|---|---|---|---|"]
        for name in glitches:
            first = frame[(frame.dataset == name) & (frame.seed == 0)].groupby("method")["mae"].mean()
            lines.append(f"| {name} | {first['TRACE']:.3f} | {first['TRACE + covariates']:.3f} | "
                         f"{first[GLITCH_ARMS[0]]:.3f} | {first[GLITCH_ARMS[1]]:.3f} |")
    return "\n".join(lines)


def options(parser) -> None:
    parser.add_argument("--datasets", nargs="*", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--darts-seeds", type=int, nargs="*", default=[0])
    parser.add_argument("--darts-samples", type=int, default=2048)


if __name__ == "__main__":
    main(__name__)
