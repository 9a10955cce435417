"""Multi-task TRACE against single-task fits, 3 seeds, the defaults' budget
(1,024 windows x 1 epoch per data set) in every arm.

``python -m benchmarks.multitask [--parts tasks anomaly datasets unseen]`` writes
``results/multitask.json`` (parts merge into it) and ``docs/benchmarks_multitask.md``.

- **tasks** -- forecasting, single-task (``multitask=False``) vs joint (``multitask=True``:
  forecast + masked reconstruction, one set of adapters): ETTh1 H = 96 (MSE, every
  ``ETT_STRIDE``-th test window, train-standardised), M4 Hourly (OWA); on ETTh1 also the
  mixture weight ``reconstruction_weight`` at 0.3 and 3 around its default 1.
- **anomaly** -- on part of the anomaly suite (``anomaly_series()``: NAB, one series per
  category, and the UCR series of the suite's tuning split up to ``UCR_MAX_LENGTH``
  values), fitted on each series' prefix: the single-task detector, the joint detector
  (``multitask=True, forecast_horizon=24``), and a single-task forecaster turned into a
  detector (``to_detector``: no second fit). NAB: VUS-ROC; UCR: hit rate and VUS-ROC.
- **datasets** -- one joint fit over ETTh1 + ILI + M4 Hourly (every channel and series an
  instance of one panel, horizon 96, 3 x 1,024 windows) against one fit per data set
  (1,024 windows each, the same total), both ``multitask=True``; each data set is scored
  at its own horizon (96, 24, 48; the joint head's first steps).
- **unseen** -- generalisation: fitted on ILI + M4 Hourly only, how well the model
  forecasts ETTh1 (H = 96) and scores the NAB series (``to_detector``, calibrated on each
  prefix, nothing trained on them), against a single-task fit on M4 Hourly and the
  zero-shot backbone.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from benchmarks.anomaly_suite import metrics
from benchmarks.harness import Record, channel_windows, main, timed
from trace_forecast.metrics import mse

SEEDS = (0, 1, 2)
WINDOWS = 1024
ETT_STRIDE = 4
ANOMALY_HORIZON = 24
UCR_MAX_LENGTH = 10_000
HORIZONS = {"ETTh1": 96, "ILI": 24, "M4 Hourly": 48}
LAMBDAS = (0.3, 3.0)  # the mixture weight's sweep (ETTh1), around the default 1


# ---------------------------------------------------------------------- data
def _instances(frames: dict[str, pd.Series]) -> pd.DataFrame:
    """A panel of univariate instances (column ``y``), one per named series."""
    return pd.concat({k: pd.DataFrame({"y": v.to_numpy(np.float64)}) for k, v in frames.items()},
                     names=["instance", "t"])


def forecasting_data() -> dict[str, dict]:
    """Per data set: training instances, test histories and futures, and how to score."""
    from benchmarks.long_horizon import fit_rows, load_split
    from benchmarks.m4 import load_m4_hourly, naive2, scores

    out = {}
    for name in ("ETTh1", "ILI"):
        split = load_split(name)
        rows, _ = fit_rows(split)
        hist, fut = channel_windows(split.test, 512, HORIZONS[name], ETT_STRIDE if name == "ETTh1" else 1)
        out[name] = {"train": {f"{name} {c}": rows[c] for c in rows.columns}, "hist": hist, "fut": fut,
                     "metric": "MSE", "score": lambda pred, fut=fut: mse(fut, pred)}
    histories, futures = load_m4_hourly()
    s_n2, m_n2 = scores(histories, futures, np.stack([naive2(h) for h in histories]))

    def owa(pred):
        s, m = scores(histories, futures, pred)
        return 0.5 * (s / s_n2 + m / m_n2)

    out["M4 Hourly"] = {"train": {f"M4 {i}": pd.Series(h) for i, h in enumerate(histories)}, "hist": histories,
                        "fut": futures, "metric": "OWA", "score": owa}
    return out


def anomaly_series() -> list[dict]:
    from benchmarks.anomaly_suite import load_suite, nab_suite

    nab = nab_suite()
    first = {}
    for s in nab:
        first.setdefault(s["name"].split("/")[0], s)
    ucr = [s for s in load_suite("tuning") if s["benchmark"] == "UCR" and len(s["values"]) <= UCR_MAX_LENGTH]
    return list(first.values()) + ucr


# ---------------------------------------------------------------------- fits
def fit_forecaster(train: pd.DataFrame, horizon: int, seed: int, windows: int = WINDOWS, **params):
    from trace_forecast import TraceForecaster

    forecaster = TraceForecaster(max_windows=windows, random_state=seed, **params)
    start = time.perf_counter()
    forecaster.fit(train, fh=np.arange(1, horizon + 1))
    return forecaster, time.perf_counter() - start


def _forecast_row(part, data, name, arm, seed, forecaster, seconds):
    pred = forecaster.predict_histories(list(data[name]["hist"]))[:, : HORIZONS[name]]
    return {"part": part, "dataset": name, "arm": arm, "seed": seed, "metric": data[name]["metric"],
            "value": float(data[name]["score"](pred)), "fit_seconds": seconds}


def part_tasks(data, log) -> list[dict]:
    rows = []
    arms = {"single-task": {}, "joint (multitask)": {"multitask": True}}
    sweep = {f"joint, reconstruction_weight={w}": {"multitask": True, "reconstruction_weight": w} for w in LAMBDAS}
    for seed in SEEDS:
        for name in ("ETTh1", "M4 Hourly"):
            for arm, params in {**arms, **(sweep if name == "ETTh1" else {})}.items():
                f, sec = fit_forecaster(_instances(data[name]["train"]), HORIZONS[name], seed, **params)
                rows.append(_forecast_row("tasks", data, name, arm, seed, f, sec))
                log(rows[-1])
    return rows


def part_anomaly(log) -> list[dict]:
    from trace_forecast import TraceAnomalyDetector, TraceForecaster

    rows = []
    for series in anomaly_series():
        x = pd.DataFrame({"x": series["values"]})
        train = x.iloc[: series["train_end"]]
        for seed in SEEDS:
            arms = {
                "detector (single task)": lambda: TraceAnomalyDetector(random_state=seed).fit(train),
                "joint (multitask)": lambda: TraceAnomalyDetector(multitask=True, forecast_horizon=ANOMALY_HORIZON,
                                                                  random_state=seed).fit(train),
                "forecaster.to_detector()": lambda: TraceForecaster(random_state=seed).fit(
                    train, fh=np.arange(1, ANOMALY_HORIZON + 1)).to_detector(),
            }
            for arm, make in arms.items():
                start = time.perf_counter()
                detector = make()
                seconds = time.perf_counter() - start
                scores = detector.transform_scores(x)["scores"].to_numpy()
                rows.append({"part": "anomaly", "dataset": series["name"], "benchmark": series["benchmark"],
                             "arm": arm, "seed": seed, "fit_seconds": seconds, **metrics(series, scores)})
                log(rows[-1])
    return rows


def part_datasets(data, log) -> list[dict]:
    rows = []
    names = list(HORIZONS)
    for seed in SEEDS:
        joint_train = _instances({k: v for n in names for k, v in data[n]["train"].items()})
        joint, sec = fit_forecaster(joint_train, max(HORIZONS.values()), seed, windows=WINDOWS * len(names),
                                    multitask=True)
        for name in names:
            rows.append(_forecast_row("datasets", data, name, "all three at once", seed, joint, sec))
            log(rows[-1])
            single, s_sec = fit_forecaster(_instances(data[name]["train"]), HORIZONS[name], seed, multitask=True)
            rows.append(_forecast_row("datasets", data, name, "one data set", seed, single, s_sec))
            log(rows[-1])
    return rows


def part_unseen(data, log) -> list[dict]:
    """Fitted without ETTh1 and NAB; evaluated on both."""
    nab = [s for s in anomaly_series() if s["benchmark"] == "NAB"]
    rows = []
    seen = ("ILI", "M4 Hourly")
    for seed in SEEDS:
        train_joint = _instances({k: v for n in seen for k, v in data[n]["train"].items()})
        models = {
            "joint (ILI + M4, multitask)": fit_forecaster(train_joint, 96, seed, windows=WINDOWS * 2, multitask=True),
            "single-task (M4)": fit_forecaster(_instances(data["M4 Hourly"]["train"]), 96, seed),
        }
        if seed == SEEDS[0]:
            models["zero-shot backbone"] = fit_forecaster(_instances(data["M4 Hourly"]["train"]), 96, seed,
                                                          fit_strategy="zero-shot")
        for arm, (model, sec) in models.items():
            rows.append(_forecast_row("unseen", data, "ETTh1", arm, seed, model, sec))
            log(rows[-1])
            for series in nab:
                x = pd.DataFrame({"x": series["values"]})
                detector = model.to_detector(X=x.iloc[: series["train_end"]])
                scores = detector.transform_scores(x)["scores"].to_numpy()
                rows.append({"part": "unseen", "dataset": series["name"], "benchmark": "NAB", "arm": arm,
                             "seed": seed, **metrics(series, scores)})
    return rows


PARTS = ("tasks", "anomaly", "datasets", "unseen")
TITLES = {"tasks": "Single-task vs joint (forecasting)", "anomaly": "Single-task vs joint (anomaly detection)",
          "datasets": "Several data sets at once vs one at a time (both multitask)",
          "unseen": "Generalisation to data the fit never saw (ETTh1, NAB)"}


def _cell(values: pd.Series) -> str:
    return f"{values.mean():.3f} ± {values.std(ddof=0):.3f}" if len(values) > 1 else f"{values.mean():.3f}"


def page(result: dict) -> str:
    frame = pd.DataFrame(result["rows"])
    out = ["# Multi-task TRACE",
           f"Do not edit by hand. Mean ± standard deviation over seeds {', '.join(map(str, SEEDS))}; fit seconds "
           "with one torch thread, two benchmark processes sharing the 2 cores.",
           "", __doc__.split("\n\n", 2)[2].strip(), ""]
    for part in PARTS:
        rows = frame[frame.part == part]
        if rows.empty:
            continue
        out += [f"## {TITLES[part]}", ""]
        if "metric" in rows and rows["metric"].notna().any():
            fc = rows[rows["metric"].notna()]
            out += ["| data set | metric | arm | value | fit seconds |", "|---|---|---|---|---|"]
            for (name, metric, arm), g in fc.groupby(["dataset", "metric", "arm"], sort=False):
                out.append(f"| {name} | {metric} | {arm} | {_cell(g['value'])} | {g['fit_seconds'].mean():.1f} |")
            out.append("")
        an = rows[rows.get("benchmark", pd.Series(index=rows.index, dtype=object)).notna()] \
            if "benchmark" in rows else rows.iloc[:0]
        if len(an):
            out += ["| benchmark | arm | VUS-ROC | UCR hit rate | fit seconds | series |", "|---|---|---|---|---|---|"]
            for (bench, arm), g in an.groupby(["benchmark", "arm"], sort=False):
                per_seed = g.groupby("seed")
                roc = per_seed["vus_roc"].mean()
                hit = per_seed["hit"].mean() if bench == "UCR" else None
                fit = f"{g['fit_seconds'].mean():.1f}" if "fit_seconds" in g and g["fit_seconds"].notna().any() else ""
                out.append(f"| {bench} | {arm} | {_cell(roc)} | {'' if hit is None else _cell(hit)} | {fit} | "
                           f"{g['dataset'].nunique()} |")
            out.append("")
    durations = ", ".join(f"{k} {v / 60:.1f} min" for k, v in result["summary"]["durations_s"].items())
    out += [f"Durations: {durations}."]
    return "\n".join(out)


KEY = ("part", "dataset", "benchmark", "arm", "seed", "metric")
PAGE = "benchmarks_multitask.md"


def options(parser) -> None:
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))


def run(args, record: Record) -> None:
    """Each part's rows replace that part's rows in the file (parts run separately)."""
    data = forecasting_data() if set(args.parts) - {"anomaly"} else None
    for part in args.parts:
        with timed() as seconds:
            rows = {"tasks": lambda: part_tasks(data, print), "anomaly": lambda: part_anomaly(print),
                    "datasets": lambda: part_datasets(data, print), "unseen": lambda: part_unseen(data, print)}[part]()
        record.rows = [r for r in record.rows if r["part"] != part] + rows
        record.summary.setdefault("durations_s", {})[part] = seconds()
        record.save()


if __name__ == "__main__":
    main(__name__)
