"""Fit and prediction cost of the defaults on this CPU, against Darts NLinear in the same process.

In one process, on ETTh1 (H = 96, lookback 512, standard split, train-standardised):
Darts ``NLinearModel`` (paper configuration, 10 epochs), the default ``TraceForecaster()``
and the default Darts ``TraceModel`` are each fitted ``REPEATS`` times (median fit time,
warm process: the first fit of each also loads the backbone and is timed too, as
``first_fit_seconds``); each is scored on every test window (MSE), and the forecaster's
``predict_histories`` throughput is timed over every test window. The forecaster's test
forecasts can be saved (``--save-forecasts``) and compared with another run's
(``--compare``): the scale-free MSE between the two sets of forecasts.

The script uses the public API only, so it runs unchanged in a checkout of an older
version (copy ``benchmarks/`` there): ``--label before`` there and ``--label after`` here
measure both on the same machine. To measure an AVX2-only CPU on an AVX-512 one, run
with ``--isa avx2``, which restarts the process with ``ATEN_CPU_CAPABILITY=avx2``,
``MKL_ENABLE_INSTRUCTIONS=AVX2`` and ``ONEDNN_MAX_CPU_ISA=AVX2`` (the capability torch
reports is recorded with every row). Rows are kept in ``benchmarks/results/cpu_speed.json``
by (label, capability, method).

``python -m benchmarks.cpu_speed --label after [--isa avx2]``  (about 4 min on 2 AVX-512 cores)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from benchmarks.harness import PeakMemory, Record, channel_windows, environment, main, timed
from benchmarks.recipe_sweep import HORIZON, LOOKBACK, nlinear_etth1, trace_model_etth1

REPEATS = 3
AVX2_ENV = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def _median_fit(make, fit) -> tuple[object, dict]:
    """``REPEATS`` fits of fresh estimators: the last one, its timings and peak memory
    (the same record as :func:`benchmarks.recipe_sweep.trace_model_etth1`'s)."""
    times = []
    for _ in range(REPEATS):
        estimator = make()
        with PeakMemory() as mem, timed() as fit_time:
            fit(estimator)
        times.append(fit_time())
    return estimator, {"fit_seconds": float(np.median(times)), "fit_seconds_all": times,
                       "peak_rss_mb": mem.peak_rss / 2**20}


KEY = ("label", "cpu_capability", "method")


def options(parser) -> None:
    parser.add_argument("--label", default="after")
    parser.add_argument("--isa", choices=("native", "avx2"), default="native",
                        help="avx2: restrict torch, MKL and oneDNN to AVX2 (an AVX2-only CPU)")
    parser.add_argument("--save-forecasts", type=Path, help="save the forecaster's test forecasts (.npy)")
    parser.add_argument("--compare", type=Path, help="forecasts of another run (.npy) to compare with")


def run(args, record: Record) -> None:
    from trace_forecast import TraceForecaster
    from trace_forecast.datasets import load_etth1, standard_split
    from trace_forecast.metrics import mae, mse

    if args.isa == "avx2" and os.environ.get("ATEN_CPU_CAPABILITY") != "avx2":
        os.execvpe(sys.executable, [sys.executable, "-m", "benchmarks.cpu_speed", *sys.argv[1:]],
                   {**os.environ, **AVX2_ENV})
    env = environment()
    split = standard_split(load_etth1(), LOOKBACK)
    fh = np.arange(1, HORIZON + 1)
    hist, fut = channel_windows(split.test, LOOKBACK, HORIZON)

    forecaster, timing = _median_fit(lambda: TraceForecaster(random_state=0), lambda f: f.fit(split.train, fh=fh))
    with timed() as predict_time:
        pred = forecaster.predict_histories(list(hist))
    row = {"method": "TraceForecaster() default", **timing, "mse": mse(fut, pred), "mae": mae(fut, pred),
           "predict_windows_per_s": len(hist) / predict_time()}
    if args.save_forecasts is not None:
        np.save(args.save_forecasts, pred.astype(np.float32))
    if args.compare is not None:  # scale-free: the data are train-standardised
        row["forecast_mse_vs_reference"] = float(np.mean((pred - np.load(args.compare)) ** 2))
    nl = {"method": "Darts NLinear (10 epochs)", **nlinear_etth1(split, REPEATS)}

    tm = {"method": "TraceModel default", **trace_model_etth1(split, REPEATS)}
    for r in (row, tm):
        r["first_fit_seconds"] = r["fit_seconds_all"][0]
        r["fit_ratio_to_nlinear"] = r["fit_seconds"] / nl["fit_seconds"]
        r["predict_ratio_to_nlinear"] = r["predict_windows_per_s"] / nl["predict_windows_per_s"]
    for r in (nl, row, tm):
        record.add({"label": args.label, "cpu_capability": env["cpu_capability"], "cpu_model": env["cpu_model"], **r})


if __name__ == "__main__":
    main(__name__)
