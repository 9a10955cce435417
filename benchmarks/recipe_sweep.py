"""Fit time against accuracy over the recipe's cost knobs, to set the defaults at the knee.

ETTh1 (H = 96, lookback 512, standard split, train-standardised): each grid point fits
``TraceForecaster`` on the 8,640 training rows (its default internal validation share)
and is scored on every ``--test-stride``-th test window; Darts ``NLinearModel`` (paper
configuration, 10 epochs, best validation epoch) is fitted in the same process as the
time reference. M4 Hourly (414 series, H = 48): the same grid points fit one global
model and are scored by OWA against Naive2. Then the *default* ``TraceForecaster()``
and the default Darts ``TraceModel`` are fitted on ETTh1's training split and scored on
every test window (stride 1), with their fit-time ratios to NLinear.

``python -m benchmarks.recipe_sweep`` (the grid, about 6 min on 2 CPU cores) writes
``benchmarks/results/recipe_sweep.json`` and ``docs/figures/recipe_sweep.png`` (which
``python -m benchmarks.report`` redraws from the file); ``--part defaults`` (about 3 min)
``recipe_defaults.json``; ``--part ridge`` (about 3 min) the default's spread over 5 seeds
with 4,096 or 8,192 head-start windows, ``recipe_ridge.json``.
"""

from __future__ import annotations

import tempfile

import numpy as np
import pandas as pd

from benchmarks.harness import DOCS, PeakMemory, Record, channel_windows, main, setting, timed
from trace_forecast.datasets import load_etth1, standard_split
from trace_forecast.metrics import mae, mse, owa
from trace_forecast.parameters import default

LOOKBACK, HORIZON = 512, 96
# (max_windows, max_epochs, batch_size); None = every window.
GRID = [
    (256, 1, 32), (512, 1, 32), (1024, 1, 32), (2048, 1, 32), (1024, 2, 32), (2048, 2, 32), (4096, 1, 32),
    (4096, 2, 32), (512, 1, 64), (1024, 1, 64),
]
M4_GRID = [(256, 1, 32), (512, 1, 32), (1024, 1, 32), (2048, 1, 32), (2048, 2, 32)]
REPEATS = 3  # fits of NLinear and of the defaults; the median time is reported
FIGURE = DOCS / "figures" / "recipe_sweep.png"


def fit_trace(rows, fh, **params):
    from trace_forecast import TraceForecaster

    forecaster = TraceForecaster(random_state=0, **params)
    with PeakMemory() as mem, timed() as fit_time:
        forecaster.fit(rows, fh=fh)
    return forecaster, fit_time(), mem.peak_rss / 2**20


def score_etth1(forecaster, hist, fut) -> dict:
    with timed() as predict_time:
        pred = forecaster.predict_histories(list(hist))
    return {"mse": mse(fut, pred), "mae": mae(fut, pred), "predict_windows_per_s": len(hist) / predict_time()}


def nlinear_etth1(split, repeats: int = REPEATS) -> dict:
    from darts import TimeSeries
    from darts.models import NLinearModel

    as_ts = lambda frame: TimeSeries.from_values(frame.to_numpy(np.float32))  # noqa: E731
    times = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as work:
            model = NLinearModel(
                input_chunk_length=LOOKBACK, output_chunk_length=HORIZON, normalize=True, shared_weights=True,
                n_epochs=10, batch_size=32, random_state=0, save_checkpoints=True, work_dir=work,
                model_name="nlinear", force_reset=True, optimizer_kwargs={"lr": 1e-3},
                pl_trainer_kwargs={"enable_progress_bar": False, "enable_model_summary": False, "accelerator": "cpu"},
            )
            with timed() as fit_time:
                model.fit(as_ts(split.train), val_series=as_ts(split.val), load_best=True, verbose=False)
            times.append(fit_time())
            metrics = historical(model, split, stride=1)
    return {"fit_seconds": float(np.median(times)), "fit_seconds_all": times, **metrics}


def historical(model, split, stride: int) -> dict:
    """MSE/MAE of ``historical_forecasts(retrain=False)`` over the test split, and windows/s."""
    from darts import TimeSeries

    test = TimeSeries.from_values(split.test.to_numpy(np.float32))
    with timed() as predict_time:
        forecasts = model.historical_forecasts(
            test, start=LOOKBACK, start_format="position", forecast_horizon=HORIZON, stride=stride,
            retrain=False, last_points_only=False, overlap_end=False, verbose=False,
        )
    pred = np.stack([f.values() for f in forecasts])
    values = split.test.to_numpy(np.float32)
    starts = np.arange(LOOKBACK, LOOKBACK + stride * len(forecasts), stride)
    truth = np.stack([values[s : s + HORIZON] for s in starts])
    return {"mse": mse(truth, pred), "mae": mae(truth, pred),
            "predict_windows_per_s": pred.shape[0] * pred.shape[2] / predict_time()}


def trace_model_etth1(split, repeats: int = REPEATS) -> dict:
    from darts import TimeSeries

    from trace_forecast.darts import TraceModel

    as_ts = lambda frame: TimeSeries.from_values(frame.to_numpy(np.float32))  # noqa: E731
    times = []
    for _ in range(repeats):
        model = TraceModel(input_chunk_length=LOOKBACK, output_chunk_length=HORIZON, random_state=0,
                           pl_trainer_kwargs={"enable_progress_bar": False, "enable_model_summary": False,
                                              "accelerator": "cpu"})
        with PeakMemory() as mem, timed() as fit_time:
            model.fit(as_ts(split.train), val_series=as_ts(split.val), verbose=False)
        times.append(fit_time())
    return {"fit_seconds": float(np.median(times)), "fit_seconds_all": times, "peak_rss_mb": mem.peak_rss / 2**20,
            **historical(model, split, stride=1)}


def m4_rows(grid, record: Record) -> None:
    from benchmarks.m4 import HORIZON as M4_H
    from benchmarks.m4 import load_m4_hourly, naive2, scores

    histories, futures = load_m4_hourly()
    s_n2, m_n2 = scores(histories, futures, np.stack([naive2(h) for h in histories]))
    frame = pd.concat({i: pd.DataFrame({"y": h}) for i, h in enumerate(histories)}, names=["series", "t"])
    for max_windows, epochs, batch in grid:
        forecaster, fit_seconds, rss = fit_trace(frame, np.arange(1, M4_H + 1), max_windows=max_windows,
                                                 max_epochs=epochs, batch_size=batch)
        pred = forecaster.predict_histories(histories)
        s, m = scores(histories, futures, pred)
        record.add({"dataset": "M4 Hourly", "max_windows": max_windows, "max_epochs": epochs, "batch_size": batch,
                    "fit_seconds": fit_seconds, "peak_rss_mb": rss, "smape": s, "mase": m,
                    "owa": owa(s, m, s_n2, m_n2)})


def figure(rows: list[dict], nlinear_seconds: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, dataset, metric in ((axes[0], "ETTh1", "mse"), (axes[1], "M4 Hourly", "owa")):
        pts = [r for r in rows if r["dataset"] == dataset and "max_windows" in r]
        for r in pts:
            is_default = (r["max_windows"], r["max_epochs"], r["batch_size"]) == (
                default("max_windows"), default("max_epochs"), default("batch_size"))
            ax.scatter(r["fit_seconds"], r[metric], color="C3" if is_default else "C0", zorder=3)
            ax.annotate(f"{r['max_windows']}w×{r['max_epochs']}ep" + ("" if r["batch_size"] == 32 else f" b{r['batch_size']}"),
                        (r["fit_seconds"], r[metric]), fontsize=7, xytext=(3, 3), textcoords="offset points")
        if dataset == "ETTh1":
            ax.axvline(3 * nlinear_seconds, color="grey", ls="--", lw=1, label="3× NLinear fit time")
            ax.legend(fontsize=8)
        ax.set_xlabel("fit seconds (2 CPU cores)")
        ax.set_ylabel(metric.upper() + (" (test stride 4)" if dataset == "ETTh1" else ""))
        ax.set_title(f"{dataset}: TraceForecaster, red = default")
    fig.tight_layout()
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIGURE, dpi=110)


def default_rows(split, fh, nl: dict, record: Record) -> None:
    """The default ``TraceForecaster()`` and ``TraceModel``: median fit time of ``REPEATS``
    fits, every test window (stride 1)."""
    hist, fut = channel_windows(split.test, LOOKBACK, HORIZON, 1)
    times = []
    for _ in range(REPEATS):
        forecaster, fit_seconds, rss = fit_trace(split.train, fh)
        times.append(fit_seconds)
    kept = forecaster.get_fitted_params()["selected_modules"]
    sk = {"dataset": "ETTh1", "method": "TraceForecaster() default", "fit_seconds": float(np.median(times)),
          "fit_seconds_all": times, "peak_rss_mb": rss, "test_stride": 1,
          "kept": kept.loc[kept["kept"], "module"].tolist(), **score_etth1(forecaster, hist, fut)}
    sk["fit_ratio_to_nlinear"] = sk["fit_seconds"] / nl["fit_seconds"]
    record.add(sk)
    tm = {"dataset": "ETTh1", "method": "TraceModel default", **trace_model_etth1(split)}
    tm["fit_ratio_to_nlinear"] = tm["fit_seconds"] / nl["fit_seconds"]
    record.add(tm)


def ridge_rows(split, fh, record: Record, seeds=(0, 1, 2, 3, 4), sizes=(4096, 8192)) -> None:
    """The default ``TraceForecaster()`` with the closed-form head start on ``sizes``
    windows, over ``seeds``: its seed-to-seed spread (every 4th test window)."""
    import trace_forecast.heads.ridge as ridge

    hist, fut = channel_windows(split.test, LOOKBACK, HORIZON, 4)
    for size in sizes:
        with setting(ridge, "RIDGE_WINDOWS", size):
            for seed in seeds:
                from trace_forecast import TraceForecaster

                forecaster = TraceForecaster(random_state=seed)
                with timed() as fit_time:
                    forecaster.fit(split.train, fh=fh)
                record.add({"dataset": "ETTh1", "head_start_windows": size, "seed": seed,
                            "fit_seconds": fit_time(), "test_stride": 4, **score_etth1(forecaster, hist, fut)})


PARTS = {"grid": "recipe_sweep", "defaults": "recipe_defaults", "ridge": "recipe_ridge"}


def options(parser) -> None:
    parser.add_argument("--part", choices=tuple(PARTS), default="grid",
                        help="grid: the sweep (recipe_sweep.json); defaults: the default estimators against NLinear "
                             "(recipe_defaults.json); ridge: the default's seed spread with 4,096 vs 8,192 "
                             "head-start windows (recipe_ridge.json)")
    parser.add_argument("--test-stride", type=int, default=4)
    parser.add_argument("--skip-m4", action="store_true")


def result_name(args) -> str:
    return PARTS[args.part]


def run(args, record: Record) -> None:
    split = standard_split(load_etth1(), LOOKBACK)
    fh = np.arange(1, HORIZON + 1)
    if args.part == "ridge":
        ridge_rows(split, fh, record)
        return
    nl = {"dataset": "ETTh1", "method": "Darts NLinear (10 epochs)", **nlinear_etth1(split)}
    record.add(nl)
    if args.part == "defaults":
        default_rows(split, fh, nl, record)
        return
    hist, fut = channel_windows(split.test, LOOKBACK, HORIZON, args.test_stride)
    fit_trace(split.train, fh, max_windows=32)  # warm-up: the first fit also loads the backbone
    for max_windows, epochs, batch in GRID:
        forecaster, fit_seconds, rss = fit_trace(split.train, fh, max_windows=max_windows, max_epochs=epochs,
                                                 batch_size=batch)
        record.add({"dataset": "ETTh1", "max_windows": max_windows, "max_epochs": epochs, "batch_size": batch,
                    "fit_seconds": fit_seconds, "fit_ratio_to_nlinear": fit_seconds / nl["fit_seconds"],
                    "peak_rss_mb": rss, "test_stride": args.test_stride, **score_etth1(forecaster, hist, fut)})
    if not args.skip_m4:
        m4_rows(M4_GRID, record)
    figure(record.rows, nl["fit_seconds"])


if __name__ == "__main__":
    main(__name__)
