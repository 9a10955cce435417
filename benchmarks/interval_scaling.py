"""Which scale makes validation residuals calibrate later months (ETTh1, calibration frozen at fit).

The default forecaster is fitted on ETTh1's training and validation months (seed 0). Its
24-step residuals on the validation windows (every 4th origin, 7 channels) are divided by a
per-window scale, and their quantiles, multiplied by each test window's scale, give
intervals on the test windows (every 8th origin). Scales: the RevIN standard deviation
(what the package uses), none, the mean absolute first or seasonal (24) difference of the
context, the same on its last 96 steps, and the standard deviation of the last 96 steps.

``python -m benchmarks.interval_scaling`` -> ``benchmarks/results/interval_scaling.json``
"""

from __future__ import annotations

import json

import numpy as np

from benchmarks.common import RESULTS, environment
from benchmarks.long_horizon import fit_rows, load_split
from trace_forecast.datasets import rolling_windows

H = 24


def windows(frame, stride: int) -> tuple[np.ndarray, np.ndarray]:
    hist, fut = [], []
    for column in frame.columns:
        h, f = rolling_windows(frame[column].to_numpy(np.float32), 512, H)
        hist.append(h[::stride])
        fut.append(f[::stride])
    return np.concatenate(hist), np.concatenate(fut)


def main() -> dict:
    from trace_forecast import TraceForecaster
    from trace_forecast.tasks.forecast import predict_normalized

    split = load_split("ETTh1")
    rows, val_share = fit_rows(split)
    vh, vf = windows(split.val, 4)
    th, tf = windows(split.test, 8)
    forecaster = TraceForecaster(random_state=0, validation_fraction=val_share).fit(rows, fh=np.arange(1, H + 1))

    def forecast(h):
        p, m, s = predict_normalized(forecaster.network_, list(h))
        return p * s[:, None] + m[:, None], s

    vp, vs = forecast(vh)
    tp, ts = forecast(th)
    scales = {
        "RevIN std (default)": (vs, ts),
        "none": (np.ones(len(vh)), np.ones(len(th))),
        "MAD of first differences": (np.abs(np.diff(vh, axis=1)).mean(1), np.abs(np.diff(th, axis=1)).mean(1)),
        "MAD of seasonal differences (24)": (np.abs(vh[:, 24:] - vh[:, :-24]).mean(1),
                                             np.abs(th[:, 24:] - th[:, :-24]).mean(1)),
        "MAD of first differences, last 96": (np.abs(np.diff(vh[:, -96:], axis=1)).mean(1),
                                              np.abs(np.diff(th[:, -96:], axis=1)).mean(1)),
        "std of the last 96": (vh[:, -96:].std(1), th[:, -96:].std(1)),
    }
    rows_out = []
    for name, (sv, st) in scales.items():
        r = (vf - vp) / sv[:, None]
        row = {"scale": name}
        for cov in (0.5, 0.8, 0.95):
            lo, hi = np.quantile(r, [(1 - cov) / 2, (1 + cov) / 2], axis=0)
            low, high = tp + lo * st[:, None], tp + hi * st[:, None]
            alpha = 1 - cov
            row[f"coverage_{int(cov * 100)}"] = float(np.mean((tf >= low) & (tf <= high)))
            row[f"interval_score_{int(cov * 100)}"] = float(np.mean(
                (high - low) + 2 / alpha * np.maximum(low - tf, 0) + 2 / alpha * np.maximum(tf - high, 0)))
        rows_out.append(row)
        print(row, flush=True)
    result = {"environment": environment(), "validation_windows": len(vh), "test_windows": len(th), "rows": rows_out}
    (RESULTS / "interval_scaling.json").write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
