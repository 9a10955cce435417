"""Global forecasting at scale: prediction time against the number of series.

A panel of ``n`` synthetic series (200 hourly points each: daily seasonality, trend and
noise, each with its own level and amplitude) is fitted once with the default
``TraceForecaster`` (context 64, horizon 24), then ``predict()`` forecasts every series in
one call. ``n`` goes from 100 to 10,000; prediction should grow linearly in ``n`` (it is
one batched pass per 256 series), and fitting should not grow at all beyond the data
conversion (the recipe trains on a fixed number of windows).

``python -m benchmarks.many_series`` (about 3 minutes on 2 CPU cores) writes
``benchmarks/results/many_series.json`` and ``docs/figures/many_series.png``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np
import pandas as pd

from benchmarks.common import RESULTS, environment

SIZES = (100, 300, 1000, 3000, 10000)
FIGURE = RESULTS.parent.parent / "docs" / "figures" / "many_series.png"
LENGTH, CONTEXT, HORIZON = 200, 64, 24


def panel(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` synthetic hourly series as an sktime ``pd-multiindex`` frame."""
    rng = np.random.default_rng(seed)
    t = np.arange(LENGTH)
    level = rng.uniform(5, 50, (n, 1))
    amplitude = rng.uniform(0.5, 5, (n, 1))
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    trend = rng.normal(0, 0.02, (n, 1))
    values = level + amplitude * np.sin(2 * np.pi * t / 24 + phase) + trend * t + rng.normal(0, 0.3, (n, LENGTH))
    index = pd.MultiIndex.from_product([np.arange(n), pd.period_range("2024-01-01", periods=LENGTH, freq="h")],
                                       names=["series", "time"])
    return pd.DataFrame({"y": values.reshape(-1)}, index=index)


def main(sizes=SIZES) -> dict:
    from trace_forecast import TraceForecaster

    rows = []
    for n in sizes:
        y = panel(n)
        forecaster = TraceForecaster(context_length=CONTEXT, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = time.perf_counter()
            forecaster.fit(y, fh=list(range(1, HORIZON + 1)))
            fit_s = time.perf_counter() - start
            start = time.perf_counter()
            pred = forecaster.predict()
            predict_s = time.perf_counter() - start
        assert len(pred) == n * HORIZON and np.isfinite(pred.to_numpy()).all()
        rows.append({"series": n, "fit_seconds": round(fit_s, 2), "predict_seconds": round(predict_s, 3),
                     "predict_ms_per_series": round(1000 * predict_s / n, 3)})
        print(rows[-1], flush=True)
    n = np.array([r["series"] for r in rows], float)
    t = np.array([r["predict_seconds"] for r in rows])
    slope, intercept = np.polyfit(n, t, 1)
    fitted = slope * n + intercept
    r2 = 1 - ((t - fitted) ** 2).sum() / ((t - t.mean()) ** 2).sum()
    exponent = float(np.polyfit(np.log(n), np.log(t), 1)[0])
    out = {"rows": rows, "linear_fit": {"seconds_per_series": slope, "intercept_s": intercept, "r2": r2},
           "log_log_exponent": exponent, "length": LENGTH, "context": CONTEXT, "horizon": HORIZON,
           "environment": environment()}
    print(f"predict time = {slope * 1000:.3f} ms x series + {intercept:.2f} s (R^2 {r2:.4f}); "
          f"log-log slope {exponent:.2f}")
    (RESULTS / "many_series.json").write_text(json.dumps(out, indent=2))
    figure(out)
    return out


def figure(out: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = out["rows"]
    n = [r["series"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.loglog(n, [r["predict_seconds"] for r in rows], "o-", label="predict() for all series")
    ax.loglog(n, [r["fit_seconds"] for r in rows], "s--", label="fit() (fixed window budget)")
    lin = out["linear_fit"]
    ax.loglog(n, [lin["seconds_per_series"] * x + lin["intercept_s"] for x in n], ":", color="0.4",
              label=f"linear fit, R² {lin['r2']:.3f}")
    ax.set_xlabel("series in the panel")
    ax.set_ylabel("seconds (2 CPU cores)")
    ax.set_title(f"Global TraceForecaster: {out['horizon']}-step forecasts, context {out['context']}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(FIGURE, dpi=120)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    main(parser.parse_args().sizes)
