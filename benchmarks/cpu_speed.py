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
reports is recorded with every row). Rows are merged into
``benchmarks/results/cpu_speed.json`` by (label, capability).

``python -m benchmarks.cpu_speed --label after [--isa avx2]``  (about 4 min on 2 AVX-512 cores)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.common import RESULTS, PeakMemory, environment, timed
from benchmarks.recipe_sweep import HORIZON, LOOKBACK, nlinear_etth1, test_windows, trace_model_etth1

REPEATS = 3
AVX2_ENV = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
OUT = RESULTS / "cpu_speed.json"


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


def run(label: str, save_forecasts: Path | None, compare: Path | None) -> list[dict]:
    from trace_forecast import TraceForecaster
    from trace_forecast.datasets import load_etth1, standard_split
    from trace_forecast.metrics import mae, mse

    env = environment()
    split = standard_split(load_etth1(), LOOKBACK)
    fh = np.arange(1, HORIZON + 1)
    hist, fut = test_windows(split.test, 1)
    rows = []

    def record(row: dict) -> None:
        row = {"label": label, "cpu_capability": env["cpu_capability"], "cpu_model": env["cpu_model"], **row}
        rows.append(row)
        print({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()
               if k != "fit_seconds_all"}, flush=True)

    forecaster, timing = _median_fit(lambda: TraceForecaster(random_state=0), lambda f: f.fit(split.train, fh=fh))
    with timed() as predict_time:
        pred = forecaster.predict_histories(list(hist))
    row = {"method": "TraceForecaster() default", **timing, "mse": mse(fut, pred), "mae": mae(fut, pred),
           "predict_windows_per_s": len(hist) / predict_time()}
    if save_forecasts is not None:
        np.save(save_forecasts, pred.astype(np.float32))
    if compare is not None:  # scale-free: the data are train-standardised
        row["forecast_mse_vs_reference"] = float(np.mean((pred - np.load(compare)) ** 2))
    nl = {"method": "Darts NLinear (10 epochs)", **nlinear_etth1(split, REPEATS)}

    tm = {"method": "TraceModel default", **trace_model_etth1(split, REPEATS)}
    for r in (row, tm):
        r["first_fit_seconds"] = r["fit_seconds_all"][0]
        r["fit_ratio_to_nlinear"] = r["fit_seconds"] / nl["fit_seconds"]
        r["predict_ratio_to_nlinear"] = r["predict_windows_per_s"] / nl["predict_windows_per_s"]
    for r in (nl, row, tm):
        record(r)
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="after")
    parser.add_argument("--isa", choices=("native", "avx2"), default="native",
                        help="avx2: restrict torch, MKL and oneDNN to AVX2 (an AVX2-only CPU)")
    parser.add_argument("--save-forecasts", type=Path, help="save the forecaster's test forecasts (.npy)")
    parser.add_argument("--compare", type=Path, help="forecasts of another run (.npy) to compare with")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if args.isa == "avx2" and os.environ.get("ATEN_CPU_CAPABILITY") != "avx2":
        os.execvpe(sys.executable, [sys.executable, "-m", "benchmarks.cpu_speed", *(argv or sys.argv[1:])],
                   {**os.environ, **AVX2_ENV})
    start = time.perf_counter()
    rows = run(args.label, args.save_forecasts, args.compare)
    keys = {(r["label"], r["cpu_capability"]) for r in rows}
    old = json.loads(args.out.read_text())["rows"] if args.out.exists() else []
    merged = [r for r in old if (r["label"], r["cpu_capability"]) not in keys] + rows
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"environment": environment(), "rows": merged}, indent=1, default=str))
    print(f"{len(rows)} rows in {time.perf_counter() - start:.0f} s -> {args.out}")


if __name__ == "__main__":
    main()
