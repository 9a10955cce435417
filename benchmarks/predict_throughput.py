"""Prediction throughput: univariate windows forecast per second on ETTh1's test split.

Paths timed, each on a model fitted once (embedded backbone, H = 96, lookback 512):
``TraceForecaster.predict_histories`` over every test window; 40 folds of
``update(update_params=False)`` then ``predict()`` (all 7 channels; the per-fold path of
sktime's ``evaluate(strategy="no-update_params")``, without the fit it starts with); Darts ``TraceModel.historical_forecasts(retrain=False)`` over every test
window; and Darts ``NLinearModel`` through the same call as the reference.

The script runs unchanged against older versions of the package (it passes the
training settings explicitly), so ``--label before`` in a checkout of the previous
version (with this ``benchmarks/`` folder copied there) and ``--label after`` here measure both
on the same machine; rows of both are kept in ``benchmarks/results/predict_throughput.json``.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.harness import Record, environment, main

LOOKBACK, HORIZON = 512, 96
QUIET = {"enable_progress_bar": False, "enable_model_summary": False, "accelerator": "cpu"}


def _windows(frame):
    from trace_forecast.datasets import rolling_windows

    hist = [rolling_windows(frame[c].to_numpy(np.float32), LOOKBACK, HORIZON)[0] for c in frame.columns]
    return np.concatenate(hist)


KEY = ("label", "cpu_capability", "method", "path")


def options(parser) -> None:
    parser.add_argument("--label", default="after")


def run(args, record: Record) -> None:
    from darts import TimeSeries
    from darts.models import NLinearModel

    from trace_forecast import TraceForecaster
    from trace_forecast.darts import TraceModel
    from trace_forecast.datasets import load_etth1, standard_split

    split = standard_split(load_etth1(), LOOKBACK)
    env = environment()

    def add(method: str, path: str, windows: int, seconds: float) -> None:
        record.add({"label": args.label, "method": method, "path": path, "windows": windows, "seconds": seconds,
                    "windows_per_s": windows / seconds, "cpu_model": env["cpu_model"],
                    "cpu_capability": env["cpu_capability"]})

    forecaster = TraceForecaster(context_length=LOOKBACK, max_epochs=1, max_windows=1024, random_state=0)
    forecaster.fit(split.train, fh=np.arange(1, HORIZON + 1))
    hist = _windows(split.test)
    forecaster.predict_histories(list(hist[:256]))  # warm-up
    start = time.perf_counter()
    forecaster.predict_histories(list(hist))
    add("TraceForecaster", "predict_histories", len(hist), time.perf_counter() - start)

    # The per-fold path of sktime's evaluate(strategy="no-update_params"), without its first fit:
    # update the data, then predict, 40 folds 24 steps apart, all 7 channels.
    folds, step = 40, 24
    new_rows = split.test.iloc[LOOKBACK:]
    start = time.perf_counter()
    for k in range(folds):
        forecaster.update(new_rows.iloc[k * step : (k + 1) * step], update_params=False)
        forecaster.predict()
    add("TraceForecaster", f"{folds} folds of update(update_params=False) + predict", folds * new_rows.shape[1],
           time.perf_counter() - start)

    as_ts = lambda f: TimeSeries.from_values(f.to_numpy(np.float32))  # noqa: E731
    test = as_ts(split.test)
    for name, model in (
        ("TraceModel", TraceModel(input_chunk_length=LOOKBACK, output_chunk_length=HORIZON, n_epochs=1,
                                  random_state=0, pl_trainer_kwargs=QUIET)),
        ("Darts NLinear", NLinearModel(input_chunk_length=LOOKBACK, output_chunk_length=HORIZON, normalize=True,
                                       shared_weights=True, n_epochs=1, random_state=0, pl_trainer_kwargs=QUIET)),
    ):
        model.fit(as_ts(split.train), max_samples_per_ts=150, verbose=False)
        start = time.perf_counter()
        forecasts = model.historical_forecasts(test, start=LOOKBACK, start_format="position", forecast_horizon=HORIZON,
                                               retrain=False, last_points_only=False, overlap_end=False,
                                               verbose=False)
        add(name, "historical_forecasts(retrain=False)", len(forecasts) * test.width, time.perf_counter() - start)


if __name__ == "__main__":
    main(__name__)
